"""Quoted-printable that can be joined: a shared part encoded once, personal values per message.

Each piece is encoded on its own and ends with a soft line break (`=` CRLF), which a
decoder removes; so the pieces, encoded separately and joined in order, decode to the
joined text. Every line stays within the 76 characters RFC 2045 allows.
"""

from __future__ import annotations

import binascii

LINE = 76
SOFT_BREAK = b"=\r\n"


def _split(line: bytes, limit: int) -> list[bytes]:
    """A line cut into pieces of at most `limit` characters, never inside an =XX escape."""
    pieces = []
    while len(line) > limit:
        cut = limit - 1  # room for the '=' of the soft break
        while cut > 0 and b"=" in line[max(cut - 2, 0) : cut]:
            cut -= 1
        pieces.append(line[:cut] + b"=")
        line = line[cut:]
    pieces.append(line)
    return pieces


def _tidy(encoded: bytes, *, open_end: bool) -> bytes:
    """CRLF line ends and lines of at most 76 characters; with `open_end`, room on the last
    line for the soft break that lets another piece follow.

    binascii writes soft breaks with a bare LF when its input has no CRLF to copy, and can
    overrun the limit by one when it escapes a space at the end of a line.
    """
    lines = encoded.replace(b"\r\n", b"\n").split(b"\n")
    out: list[bytes] = []
    for number, line in enumerate(lines):
        last = number == len(lines) - 1
        out.extend(_split(line, LINE - 1 if last and open_end else LINE))
    return b"\r\n".join(out)


def encode_piece(text: str) -> bytes:
    """`text` (with CRLF line ends) as quoted-printable that can be followed by another piece."""
    if not text:
        return b""
    data = text.encode("utf-8")
    encoded = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
    if data.endswith(b"\r\n"):
        return _tidy(encoded, open_end=False)  # a hard line break ends the piece already
    return _tidy(encoded, open_end=True) + SOFT_BREAK


def encode_value(text: str) -> bytes:
    """A short personal value on lines of its own, ended by a soft break.

    Personal values have no line breaks (they were made one line), so everything that is
    not printable ASCII, and '=' itself, is escaped.
    """
    if not text:
        return b""
    if text.isascii() and text.isprintable() and "=" not in text and text[-1] != " ":
        # The common case, nothing to escape: only lines to keep short.
        data = text.encode("ascii")
        if len(data) < LINE:
            return data + SOFT_BREAK
        step = LINE - 1
        return SOFT_BREAK.join(data[i : i + step] for i in range(0, len(data), step)) + SOFT_BREAK
    data = text.encode("utf-8")
    encoded = binascii.b2a_qp(data, quotetabs=False, istext=False, header=False)
    return _tidy(encoded, open_end=True) + SOFT_BREAK
