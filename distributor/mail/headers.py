"""Header values that cannot inject headers, encoded as RFC 5322 and RFC 2047 require.

Values from data (names, headlines, file names) lose their line breaks and other control
characters: a name pasted with a line break still gets its release, on one line. Values
that must be exact (addresses, domains, URLs) are refused instead if they carry any.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import idna

from distributor.errors import DistributorError

MAX_LINE = 78  # RFC 5322 asks for 78, allows 998
ENCODED_WORD_MAX = 75  # RFC 2047 section 2
# Characters that may stand in an RFC 5322 atom (a display name word without quotes).
ATOM = re.compile(r"^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+$")
# What a Q-encoded word may leave unencoded when it stands in a phrase (RFC 2047 5(3)).
Q_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]+$|^\"[\x20-\x7e]*\"$")
BREAKING = frozenset({"Cc", "Zl", "Zp"})


class HeaderValueError(DistributorError, ValueError):
    """A value that would have to be changed to fit a header, where changing it is wrong."""


def one_line(text: str) -> str:
    """Text made safe for a header: line breaks and other control characters become spaces.

    A name or headline that came with a line break (a quoted CSV field, a pasted title) must
    not be able to start a header of its own, and the journalist should still get the release.
    """
    if text.isascii() and text.isprintable() and "  " not in text:
        return text.strip()
    cleaned = "".join(" " if unicodedata.category(c) in BREAKING else c for c in text)
    return " ".join(cleaned.split())


def require_one_line(value: str, *, what: str) -> str:
    """`value` unchanged, or HeaderValueError if it has spaces or control characters."""
    if value and value.isascii() and value.isprintable() and " " not in value:
        return value
    for character in value:
        if character.isspace() or unicodedata.category(character) in BREAKING:
            raise HeaderValueError(
                f"the {what} {value!r} contains {character!r}; it cannot go into a mail header"
            )
    if not value:
        raise HeaderValueError(f"the {what} is empty")
    return value


@lru_cache(maxsize=4096)
def ascii_domain(domain: str) -> str:
    """The domain as it goes into headers and SMTP: IDNA (punycode), lower case."""
    require_one_line(domain, what="domain")
    if domain.isascii():
        return domain.lower()
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise HeaderValueError(f"the domain {domain!r} is not a valid domain name: {exc}") from None


def ascii_address(address: str) -> str:
    """`local@domain` with the domain in IDNA; refused if it cannot be written in ASCII."""
    require_one_line(address, what="address")
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise HeaderValueError(f"{address!r} is not an address of the form name@domain")
    if not LOCAL_PART.match(local):
        raise HeaderValueError(
            f"the address {address!r} has characters before the @ that need SMTPUTF8, "
            "which this sender does not use; ask the journalist for another address"
        )
    return f"{local}@{ascii_domain(domain)}"


def _q_word(chunk: bytes) -> str:
    return (
        "=?utf-8?q?"
        + "".join(chr(b) if b in Q_SAFE else ("_" if b == 0x20 else f"={b:02X}") for b in chunk)
        + "?="
    )


def encoded_words(text: str) -> list[str]:
    """RFC 2047 Q-encoded words for `text`, each at most 75 characters, never splitting a
    character's UTF-8 bytes between two words."""
    words: list[str] = []
    current = bytearray()
    length = len("=?utf-8?q??=")
    for character in text:
        encoded = character.encode("utf-8")
        cost = sum(1 if b in Q_SAFE or b == 0x20 else 3 for b in encoded)
        if current and length + cost > ENCODED_WORD_MAX:
            words.append(_q_word(bytes(current)))
            current.clear()
            length = len("=?utf-8?q??=")
        current += encoded
        length += cost
    if current:
        words.append(_q_word(bytes(current)))
    return words


def phrase(text: str) -> list[str]:
    """A display name as words: atoms, one quoted string, or encoded words."""
    text = one_line(text)
    if not text:
        return []
    if text.isascii():
        words = text.split(" ")
        if all(ATOM.match(word) for word in words) and len(text) <= MAX_LINE - 10:
            return words
        quoted = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if len(quoted) <= MAX_LINE - 10:
            return [quoted]
    return encoded_words(text)


def unstructured(text: str) -> list[str]:
    """Words of an unstructured value such as Subject: plain if it can be, else encoded."""
    text = one_line(text)
    words = text.split(" ")
    # A word that looks like an encoded word would be decoded by the reader: encode all.
    if (
        text.isascii()
        and all(len(word) <= MAX_LINE - 12 for word in words)
        and not any(word.startswith("=?") for word in words)
    ):
        return words
    return encoded_words(text)


def fold(name: str, words: list[str], *, separator: str = " ") -> bytes:
    """`Name: words` on lines of at most 78 characters where the words allow, CRLF-ended.

    Lines are only broken where whitespace already separates two words, so unfolding gives
    the value back exactly.
    """
    line = f"{name}:"
    lines: list[str] = []
    for number, word in enumerate(words):
        piece = (separator if number else " ") + word
        if number and len(line) + len(piece) > MAX_LINE:
            lines.append(line + separator.rstrip(" "))
            line = " " + word
        else:
            line += piece
    lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def address_header(name: str, display_name: str, address: str) -> bytes:
    """`Name: Display Name <local@domain>` with the name encoded as needed."""
    words = phrase(display_name)
    return fold(name, [*words, f"<{ascii_address(address)}>"])


def filename_parameter(filename: str) -> str:
    """`filename="..."`, or RFC 2231 `filename*=utf-8''...` for names beyond plain ASCII."""
    filename = one_line(filename)
    if filename.isascii() and '"' not in filename and "\\" not in filename:
        return f'filename="{filename}"'
    encoded = "".join(
        chr(b) if (b < 0x80 and chr(b).isalnum()) or chr(b) in "-._~" else f"%{b:02X}"
        for b in filename.encode("utf-8")
    )
    return f"filename*=utf-8''{encoded}"
