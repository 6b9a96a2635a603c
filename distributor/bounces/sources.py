"""Messages to process from a file or folder a relay or provider fills: one .eml file, an
mbox, a Maildir, a folder of .eml files, or standard input (one message)."""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from distributor.errors import DistributorError

# Larger than any bounce of ours: a release with its attachments, returned whole.
LARGEST_MESSAGE = 64 * 1024 * 1024
MBOX_START = b"From "
MAILDIR_FOLDERS = ("cur", "new", "tmp")


@dataclass(frozen=True, slots=True)
class SourceMessage:
    # Where it came from, for the record and the output: "bounces.mbox#3".
    label: str
    data: bytes


def read_messages(path: str, *, stdin: BinaryIO | None = None) -> Iterator[SourceMessage]:
    """Every message at `path` ("-": standard input), one at a time, in the order stored."""
    if path == "-":
        if stdin is None:
            raise DistributorError("no standard input to read a message from")
        yield SourceMessage("stdin", _without_envelope_line(_read_limited(stdin, "stdin")))
        return
    where = Path(path)
    if not where.exists():
        raise DistributorError(
            f"{path!r} does not exist: give an .eml file, an mbox, a Maildir, or - for "
            "standard input"
        )
    if where.is_dir():
        if all((where / name).is_dir() for name in MAILDIR_FOLDERS):
            yield from _maildir(where)
        else:
            yield from _eml_folder(where)
        return
    with where.open("rb") as file:
        start = file.read(len(MBOX_START))
    if start == MBOX_START:
        yield from _mbox(where)
    else:
        with where.open("rb") as file:
            yield SourceMessage(where.name, _read_limited(file, where.name))


def _read_limited(stream: BinaryIO, label: str) -> bytes:
    data = stream.read(LARGEST_MESSAGE + 1)
    if not data:
        raise DistributorError(f"{label} is empty: there is no message to process")
    if len(data) > LARGEST_MESSAGE:
        raise DistributorError(
            f"{label} is larger than {LARGEST_MESSAGE // (1024 * 1024)} MB: not a bounce"
        )
    return data


def _without_envelope_line(data: bytes) -> bytes:
    """A message piped in by a local delivery agent may start with the mbox "From " line."""
    if data.startswith(MBOX_START):
        return data.partition(b"\n")[2]
    return data


def _mbox(path: Path) -> Iterator[SourceMessage]:
    box = mailbox.mbox(path, create=False)
    try:
        for number, key in enumerate(box.iterkeys(), start=1):
            yield SourceMessage(f"{path.name}#{number}", box.get_bytes(key))
    finally:
        box.close()


def _maildir(path: Path) -> Iterator[SourceMessage]:
    box = mailbox.Maildir(path, factory=None, create=False)
    for key in sorted(box.iterkeys()):
        yield SourceMessage(f"{path.name}/{key}", box.get_bytes(key))


def _eml_folder(path: Path) -> Iterator[SourceMessage]:
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() == ".eml")
    if not files:
        raise DistributorError(
            f"{path} is neither a Maildir (cur, new, tmp) nor a folder of .eml files"
        )
    for file in files:
        with file.open("rb") as stream:
            yield SourceMessage(file.name, _read_limited(stream, file.name))
