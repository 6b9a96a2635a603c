"""Reading the parts of a report safely: headers as text, the report's own parts, the
original message it returns. Mail from strangers: nothing here may raise on odd input."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from email.utils import getaddresses, parseaddr

from distributor.bounces.report import Returned

# The returned original message: whole, or its headers only.
RETURNED_TYPES = ("message/rfc822", "text/rfc822-headers")
# How much of a text part is read for the words of a non-standard bounce.
TEXT_LIMIT = 64 * 1024


def header(message: Message, name: str) -> str:
    """The header's value as one line of text; empty when absent or unreadable."""
    try:
        value = message.get(name)
        return " ".join(str(value).split()) if value is not None else ""
    except Exception:  # a header that cannot even be turned into text
        return ""


def headers(message: Message, name: str) -> list[str]:
    try:
        return [" ".join(str(v).split()) for v in message.get_all(name) or []]
    except Exception:
        return []


def address_of(value: str) -> str:
    """The bare address of a header value or a DSN field (`rfc822; ann@example.com`)."""
    if ";" in value:  # the address type comes first: "rfc822; ann@example.com"
        value = value.split(";", 1)[1]
    return parseaddr(value.strip())[1].strip("<> ")


def addresses(message: Message, *names: str) -> list[str]:
    found = []
    for name in names:
        values = headers(message, name)
        try:
            pairs = getaddresses(values)
        except Exception:
            pairs = [("", v) for v in values]
        found += [a.strip("<> ") for _, a in pairs if "@" in a]
    return found


def own_parts(message: Message) -> Iterator[Message]:
    """Every part of the report itself, not descending into a message it carries (the
    original message, whose words are ours and must not be read as the report's)."""
    yield message
    payload = message.get_payload()
    if message.get_content_maintype() == "multipart" and isinstance(payload, list):
        for part in payload:
            if isinstance(part, Message):
                yield from own_parts(part)


def parts_of_type(message: Message, content_type: str) -> list[Message]:
    return [p for p in own_parts(message) if p.get_content_type() == content_type]


def field_blocks(part: Message) -> list[Message]:
    """The header blocks of a message/delivery-status or message/feedback-report part.

    The email package parses them into a list of header blocks; a part it could not parse
    so (a generator that wrote it oddly) is parsed here from its text.
    """
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    text = payload if isinstance(payload, str) else ""
    blocks = [b for b in text.replace("\r\n", "\n").split("\n\n") if b.strip()]
    parser = HeaderParser(policy=compat32)
    return [parser.parsestr(block.strip("\n") + "\n") for block in blocks]


def returned_message(message: Message) -> Returned:
    """The headers of the original message the report returns, if it returns one."""
    for part in own_parts(message):
        if part.get_content_type() not in RETURNED_TYPES:
            continue
        original = _as_message(part)
        if original is None:
            continue
        return Returned(
            message_id=header(original, "Message-ID") or None,
            recipients=tuple(addresses(original, "To", "Cc")),
            return_paths=tuple(addresses(original, "Return-Path")),
        )
    return Returned()


def _as_message(part: Message) -> Message | None:
    payload = part.get_payload()
    if isinstance(payload, list):
        first = payload[0] if payload else None
        return first if isinstance(first, Message) else None
    if isinstance(payload, str):
        return HeaderParser(policy=compat32).parsestr(payload)
    return None


def text_of(message: Message) -> str:
    """The report's own plain text (not the returned message's), at most TEXT_LIMIT."""
    pieces = []
    for part in own_parts(message):
        if part.get_content_type() != "text/plain":
            continue
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            continue
        charset = part.get_content_charset() or "utf-8"
        try:
            pieces.append(data[:TEXT_LIMIT].decode(charset, errors="replace"))
        except LookupError:  # a charset Python does not know
            pieces.append(data[:TEXT_LIMIT].decode("latin-1"))
        if sum(map(len, pieces)) >= TEXT_LIMIT:
            break
    return "\n".join(pieces)[:TEXT_LIMIT]
