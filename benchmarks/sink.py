"""The SMTP receiver: Postfix's smtp-sink on loopback, so the receiver is never the bottleneck.

Without Postfix an aiosmtpd stand-in runs instead (in its own process, same counters), and
the report says so: it is a single Python process and may then limit the figures.
Only the smtp-sink binary is ever run; the Postfix mail system itself is never started.

Either can also record who each message was for, and its Message-ID, so that copies can be
counted per recipient: smtp-sink dumps every message to a file (`-D`), which costs a disk
write per message, so only a receiver started for that purpose records. The aiosmtpd
stand-in can also keep each message whole, exactly as it arrived, one file each, so that
its content can be checked (its DKIM signatures, say).
"""

from __future__ import annotations

import argparse
import atexit
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.children import BenchmarkError, Child, start_child

SMTP_SINK_PATHS = ("/usr/sbin/smtp-sink", "/usr/lib/postfix/sbin/smtp-sink")
COUNTERS = re.compile(r"sess=(\d+)(?: quit=\d+)? mesg=(\d+)")
# Put before each message in smtp-sink's dump file (its -S option, which unescapes "\\n").
DUMP_MARK = "=== smtp-sink message ==="
MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True, slots=True)
class SinkCounters:
    """Sessions (SMTP connections) and messages accepted since the receiver started."""

    sessions: int
    messages: int

    def __sub__(self, other: SinkCounters) -> SinkCounters:
        return SinkCounters(self.sessions - other.sessions, self.messages - other.messages)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def find_smtp_sink() -> str | None:
    for candidate in (shutil.which("smtp-sink"), *SMTP_SINK_PATHS):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def postfix_version() -> str | None:
    postconf = shutil.which("postconf") or "/usr/sbin/postconf"
    if not os.access(postconf, os.X_OK):
        return None
    try:
        out = subprocess.run(
            [postconf, "-d", "-h", "mail_version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


@dataclass(frozen=True, slots=True)
class Copy:
    """One copy of a message as the receiver accepted it."""

    recipient: str  # lower-cased
    message_id: str | None


@dataclass
class Receiver:
    kind: str  # "smtp-sink" or "aiosmtpd"
    description: str
    port: int
    child: Child
    # Where it records each message's recipients and Message-ID; None: it only counts.
    recording: Path | None = None
    # The folder where it keeps each message whole, one file each; None: it keeps none.
    kept: Path | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def copies(self) -> list[Copy]:
        """Every message accepted so far, one entry per recipient."""
        if self.recording is None:
            raise BenchmarkError(f"{self.description} does not record recipients")
        if not self.recording.exists():
            return []
        if self.kind == "smtp-sink":
            return list(dumped_copies(self.recording))
        found = []
        for line in self.recording.read_text(encoding="utf-8", errors="replace").splitlines():
            recipient, _, message_id = line.partition("\t")
            if recipient:
                found.append(Copy(recipient.lower(), message_id or None))
        return found

    def kept_messages(self) -> list[bytes]:
        """Every message accepted so far, whole and in the order they arrived."""
        if self.kept is None:
            raise BenchmarkError(f"{self.description} does not keep messages")
        return [path.read_bytes() for path in sorted(self.kept.glob("*.eml"))]

    def discard_recording(self) -> None:
        """Delete the recording (smtp-sink's dump holds every message in full)."""
        if self.recording is None:
            return
        self.recording.unlink(missing_ok=True)
        if self.kind == "smtp-sink":
            shutil.rmtree(self.recording.parent, ignore_errors=True)

    def counters(self) -> SinkCounters:
        matches = COUNTERS.findall(_tail(self.child.log_path, 400))
        if not matches:
            return SinkCounters(0, 0)
        sessions, messages = matches[-1]
        return SinkCounters(int(sessions), int(messages))

    def wait_for_messages(self, count: int, *, since: SinkCounters, timeout: float) -> None:
        """Wait until `count` messages arrived after `since`, and their sessions closed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (self.counters() - since).messages >= count:
                time.sleep(0.3)  # let the last sessions say QUIT, so they are counted too
                return
            time.sleep(0.1)

    def stop(self) -> None:
        self.child.stop(timeout=5)


def dumped_copies(path: Path) -> Iterator[Copy]:
    """smtp-sink's dump: per message DUMP_MARK, its X-Rcpt-Args lines, then the message."""
    recipients: list[str] = []
    message_id: bytes | None = None
    in_header = False

    def flush() -> Iterator[Copy]:
        mid = message_id.decode("ascii", "replace") if message_id else None
        for recipient in recipients:
            yield Copy(recipient, mid)

    with path.open("rb") as stream:
        for raw in stream:
            line = raw.rstrip(b"\r\n")
            if line == DUMP_MARK.encode():
                yield from flush()
                recipients, message_id, in_header = [], None, True
                continue
            if not in_header:
                continue
            if not line:
                in_header = False  # the end of the message's header: the body is not read
            elif line.startswith(b"X-Rcpt-Args:"):
                args = line.split(b":", 1)[1].strip().decode("utf-8", "replace")
                recipients.append(args.split(">", 1)[0].lstrip("<").lower())
            elif message_id is None and (found := MESSAGE_ID.match(line)):
                message_id = found.group(1)
    yield from flush()


def _tail(path: Path, size: int) -> str:
    with path.open("rb") as stream:
        stream.seek(0, os.SEEK_END)
        stream.seek(max(0, stream.tell() - size))
        return stream.read().decode("ascii", "replace")


def _wait_until_listening(child: Child, port: int, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as probe:
                probe.recv(512)  # the greeting
                probe.sendall(b"QUIT\r\n")
                probe.recv(512)
            return
        except OSError:
            time.sleep(0.05)
    child.stop(timeout=2)
    raise BenchmarkError(f"{child.name} did not listen on port {port}:\n{child.log_text()[-2000:]}")


def start_receiver(
    log_dir: Path, *, prefer: str = "auto", record: bool = False, keep_messages: bool = False
) -> Receiver:
    """smtp-sink when Postfix is installed (unless `prefer` is "aiosmtpd"), else aiosmtpd.

    With `record`, it also records each message's recipients and Message-ID under `log_dir`.
    With `keep_messages` it is always aiosmtpd, which keeps each message whole under
    `log_dir`/messages (smtp-sink's dump adds lines of its own to each message).
    """
    if keep_messages and prefer == "smtp-sink":
        raise BenchmarkError("only the aiosmtpd receiver keeps messages whole")
    use_sink = prefer in ("auto", "smtp-sink") and not keep_messages
    binary = find_smtp_sink() if use_sink else None
    if prefer == "smtp-sink" and binary is None:
        raise BenchmarkError("smtp-sink was asked for, but Postfix is not installed")
    last_error: BenchmarkError | None = None
    log_dir.mkdir(parents=True, exist_ok=True)
    for _attempt in range(3):  # a free port can be taken between probing and binding
        port = free_port()
        recording: Path | None = None
        kept: Path | None = None
        if binary is not None:
            argv = [binary, "-c"]
            if os.geteuid() == 0:
                argv += ["-u", "nobody"]  # smtp-sink refuses to keep running as root
            if record:
                # It writes the dump after giving up root: a folder of its own that it may
                # write to, outside the log folder (which may not let other users in).
                dump_dir = Path(tempfile.mkdtemp(prefix="smtp-sink-dump-"))
                dump_dir.chmod(0o777)
                recording = dump_dir / "messages"
                argv += ["-D", str(recording), "-S", DUMP_MARK + "\\n"]
            argv += [f"127.0.0.1:{port}", "1024"]
            version = postfix_version()
            description = f"Postfix smtp-sink{f' {version}' if version else ''}"
            kind = "smtp-sink"
        else:
            argv = ["python", "-m", "benchmarks.sink", "--port", str(port)]
            if record:
                recording = log_dir / "recipients.tsv"
                recording.unlink(missing_ok=True)
                argv += ["--record", str(recording)]
            if keep_messages:
                kept = log_dir / "messages"
                shutil.rmtree(kept, ignore_errors=True)
                argv += ["--keep", str(kept)]
            why = (
                "keeping each message"
                if keep_messages
                else "chosen with --receiver"
                if prefer == "aiosmtpd"
                else "smtp-sink not installed"
            )
            description = f"aiosmtpd ({why})"
            kind = "aiosmtpd"
        child = start_child(f"receiver-{kind}", argv, log_dir=log_dir)
        try:
            _wait_until_listening(child, port, timeout=15)
        except BenchmarkError as exc:
            last_error = exc
            if recording is not None and kind == "smtp-sink":
                shutil.rmtree(recording.parent, ignore_errors=True)
            continue
        # Probing opened one session; the counters are read as differences, so it is harmless.
        receiver = Receiver(
            kind, f"{description} on 127.0.0.1:{port}", port, child, recording, kept
        )
        atexit.register(receiver.stop)  # it runs in its own session: never leave it behind
        return receiver
    assert last_error is not None
    raise last_error


def _serve_aiosmtpd(port: int, record: Path | None = None, keep: Path | None = None) -> None:
    """The fallback receiver: accept everything, print smtp-sink-style counters; with
    `record`, append "recipient<TAB>Message-ID" for each recipient of each message; with
    `keep`, write each message into that folder as it arrived, one file each."""
    import threading

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP

    counts = {"sessions": 0, "messages": 0}
    lock = threading.Lock()
    # Line-buffered: each line is written as the message is accepted, so it can be read.
    recording = record.open("a", encoding="utf-8", buffering=1) if record else None
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)

    def show() -> None:
        sys.stdout.write(f"sess={counts['sessions']} mesg={counts['messages']}\r")
        sys.stdout.flush()

    class CountingSMTP(SMTP):
        def connection_made(self, transport: Any) -> None:
            with lock:
                counts["sessions"] += 1
            super().connection_made(transport)

    class Accept:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            with lock:
                counts["messages"] += 1
                if recording is not None:
                    content = _content(envelope)
                    header = content.split(b"\r\n\r\n", 1)[0]
                    found = MESSAGE_ID.search(header)
                    mid = found.group(1).decode("ascii", "replace") if found else ""
                    for recipient in envelope.rcpt_tos:
                        recording.write(f"{recipient}\t{mid}\n")
                if keep is not None:
                    # Named by arrival, written before the reply: counted means readable.
                    (keep / f"{counts['messages']:08d}.eml").write_bytes(_content(envelope))
                show()
            return "250 2.0.0 Ok: queued"

    class CountingController(Controller):
        def factory(self) -> SMTP:
            return CountingSMTP(self.handler, **self.SMTP_kwargs)

    controller = CountingController(Accept(), hostname="127.0.0.1", port=port)
    controller.start()
    print(f"aiosmtpd receiver on 127.0.0.1:{port}", flush=True)
    try:
        threading.Event().wait()
    finally:
        controller.stop()


def _content(envelope: Any) -> bytes:
    content = envelope.content or b""
    return content.encode("utf-8", "replace") if isinstance(content, str) else bytes(content)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="aiosmtpd stand-in for smtp-sink")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", type=Path, default=None, help="recipients and Message-IDs")
    parser.add_argument("--keep", type=Path, default=None, help="folder for whole messages")
    arguments = parser.parse_args()
    _serve_aiosmtpd(arguments.port, arguments.record, arguments.keep)
