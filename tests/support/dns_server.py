"""A DNS server on loopback that answers TXT and MX questions from a table, for the tests
of the real resolver: nothing leaves the machine."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

Records = dict[tuple[str, str], list[str]]


def _txt_rdata(text: str) -> str:
    """Zone-file form of a TXT value: strings of at most 255 octets, quoted."""
    parts = [text[i : i + 255] for i in range(0, len(text), 255)] or [""]
    return " ".join('"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in parts)


def _answer(query: dns.message.Message, records: Records) -> dns.message.Message:
    response = dns.message.make_response(query)
    question = query.question[0]
    name = question.name.to_text(omit_final_dot=True).lower()
    kind = dns.rdatatype.to_text(question.rdtype)
    values = records.get((name, kind), [])
    if not values and not any(n == name for n, _ in records):
        response.set_rcode(dns.rcode.NXDOMAIN)
        return response
    if values:
        texts = [_txt_rdata(v) if kind == "TXT" else f"10 {v.rstrip('.')}." for v in values]
        response.answer.append(
            dns.rrset.from_text_list(question.name, 60, dns.rdataclass.IN, question.rdtype, texts)
        )
    return response


@contextmanager
def dns_server(records: Records) -> Iterator[str]:
    """Serve `records` ({(name, "TXT"|"MX"): [texts or mail hosts]}) on a UDP port of
    127.0.0.1; yields the nameserver as `127.0.0.1:PORT`."""
    records = {(n.lower().rstrip("."), k): v for (n, k), v in records.items()}
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            reply = _answer(dns.message.from_wire(data), records)
            sock.sendto(reply.to_wire(max_size=65535), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        sock.close()


def closed_port() -> str:
    """A loopback UDP port where nothing answers: DNS there fails as it does offline."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"
