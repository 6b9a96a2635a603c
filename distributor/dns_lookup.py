"""DNS questions the deliverability checks ask: TXT and MX records.

`DnsResolver` asks real servers (the system's, or one named); `StaticDns` answers from a
table, for tests and for records given in a file. A lookup that finds nothing returns an
empty list; one that could not be made (no network, no answer in time) raises
DnsUnavailable, so a check can say it was not made rather than that a record is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import dns.exception
import dns.resolver

DEFAULT_TIMEOUT_SECONDS = 5.0
DNS_PORT = 53


class DnsUnavailable(Exception):
    """The question could not be answered: says why."""


class Dns(Protocol):
    def txt(self, name: str) -> list[str]:
        """Each TXT record's text (its strings joined), [] when there is none."""

    def mx(self, name: str) -> list[str]:
        """The mail exchangers' host names, best first, [] when there is none."""


def nameserver_address(text: str) -> tuple[str, int]:
    """`IP` or `IP:PORT` (`[IPv6]:PORT`) of a nameserver to ask."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    if not port.isdigit() and port:
        raise ValueError(f"the nameserver {text!r} has no usable port; give IP or IP:PORT")
    return host, int(port) if port else DNS_PORT


class DnsResolver:
    """dnspython's stub resolver; with `nameserver`, asks that server only (an
    authoritative one answers before caches expire)."""

    def __init__(
        self, *, nameserver: str | None = None, timeout: float = DEFAULT_TIMEOUT_SECONDS
    ) -> None:
        self._timeout = timeout
        self._nameserver = nameserver
        self._resolver: dns.resolver.Resolver | None = None

    def _ready(self) -> dns.resolver.Resolver:
        if self._resolver is None:
            try:
                resolver = dns.resolver.Resolver(configure=self._nameserver is None)
            except dns.resolver.NoResolverConfiguration:
                raise DnsUnavailable("this machine has no DNS servers configured") from None
            if self._nameserver is not None:
                host, port = nameserver_address(self._nameserver)
                resolver.nameservers = [host]
                resolver.port = port
            self._resolver = resolver
        return self._resolver

    def _answer(self, name: str, kind: str) -> dns.resolver.Answer | None:
        try:
            return self._ready().resolve(
                name, kind, lifetime=self._timeout, search=False, raise_on_no_answer=True
            )
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        except dns.resolver.NoNameservers as exc:
            raise DnsUnavailable(f"no DNS server answered for {name} ({exc})") from None
        except dns.exception.Timeout:
            raise DnsUnavailable(
                f"no DNS answer for {name} within {self._timeout:g} s (offline?)"
            ) from None
        except (dns.exception.DNSException, OSError, ValueError) as exc:
            raise DnsUnavailable(f"could not ask DNS about {name}: {exc}") from None

    def txt(self, name: str) -> list[str]:
        answer = self._answer(name, "TXT")
        if answer is None:
            return []
        return [b"".join(record.strings).decode("utf-8", "replace") for record in answer]

    def mx(self, name: str) -> list[str]:
        answer = self._answer(name, "MX")
        if answer is None:
            return []
        ordered = sorted(answer, key=lambda record: record.preference)
        return [record.exchange.to_text(omit_final_dot=True) for record in ordered]


class StaticDns:
    """Answers from a table of {(name, "TXT" or "MX"): [values]}; with `unavailable`, every
    question fails as it does offline."""

    def __init__(
        self,
        records: Mapping[tuple[str, str], list[str]] | None = None,
        *,
        unavailable: str | None = None,
    ) -> None:
        self._records = {(n.lower().rstrip("."), k): v for (n, k), v in (records or {}).items()}
        self._unavailable = unavailable

    def _lookup(self, name: str, kind: str) -> list[str]:
        if self._unavailable is not None:
            raise DnsUnavailable(self._unavailable)
        return list(self._records.get((name.lower().rstrip("."), kind), []))

    def txt(self, name: str) -> list[str]:
        return self._lookup(name, "TXT")

    def mx(self, name: str) -> list[str]:
        return self._lookup(name, "MX")
