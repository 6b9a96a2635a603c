"""A message that came back, read into a BounceReport: pure, and never raising.

The readers are tried from the most to the least authoritative: an abuse report (RFC 5965),
a delivery status notification (RFC 3464), a bounce in no standard format (flufl.bounce),
an automatic reply (RFC 3834). Bounces often carry Auto-Submitted too, so a message is
taken for an automatic reply only when no bounce reader recognised it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from email import message_from_bytes
from email.message import Message
from email.policy import compat32

from distributor.bounces.arf import read_arf
from distributor.bounces.autoreply import read_auto_reply
from distributor.bounces.dsn import read_dsn
from distributor.bounces.kinds import BounceKind
from distributor.bounces.message_parts import addresses, header, returned_message
from distributor.bounces.nonstandard import read_nonstandard
from distributor.bounces.report import BounceReport, Finding
from distributor.bounces.status_codes import blank_addresses, one_line

log = logging.getLogger(__name__)

READERS: tuple[Callable[[Message], Finding | None], ...] = (
    read_arf,
    read_dsn,
    read_nonstandard,
    read_auto_reply,
)
# Where a mail system writes the address it delivered the report to.
DELIVERED_TO = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To", "Cc")
# The headers kept of a report that cannot be matched: enough to tell what it is.
KEPT_HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "Content-Type", "Auto-Submitted")
KEPT_HEADER_LENGTH = 200
KEPT_HEADERS_TOTAL = 1024
# How much of a message is read. A report comes first and is small; what may follow is the
# original message, a release with its attachments, whose bytes say nothing about the
# bounce, and which the non-standard detectors would scan at about a second per megabyte.
READ_BYTES = 256 * 1024


def classify(data: bytes) -> BounceReport:
    try:
        message = message_from_bytes(data[:READ_BYTES], policy=compat32)
    except Exception as exc:  # the parser is lenient; this is for what it still cannot take
        return _unreadable(data, exc)
    try:
        return _classify(message, data)
    except Exception as exc:
        log.warning("a message that came back could not be read: %s", exc, exc_info=True)
        return _unreadable(data, exc, message)


def _classify(message: Message, data: bytes) -> BounceReport:
    finding = next((f for f in (read(message) for read in READERS) if f is not None), None)
    if finding is None:
        finding = Finding(BounceKind.UNKNOWN, _unknown_summary(message))
    returned = returned_message(message)
    recipients = (*finding.recipients, *returned.recipients)
    return BounceReport(
        kind=finding.kind,
        summary=finding.summary,
        status=finding.status,
        diagnostic=blank_addresses(finding.diagnostic),
        recipients=tuple(dict.fromkeys(recipients)),
        addressed_to=tuple(dict.fromkeys(addresses(message, *DELIVERED_TO))),
        return_paths=tuple(dict.fromkeys((*finding.return_paths, *returned.return_paths))),
        original_message_id=finding.message_id or returned.message_id,
        identity=_identity(message, data),
        headers=_kept_headers(message),
        size=len(data),
    )


def _unknown_summary(message: Message) -> str:
    if not message.keys():
        return "not a mail message: no headers could be read"
    return "not a bounce, complaint or automatic reply that could be recognised"


def _unreadable(data: bytes, exc: Exception, message: Message | None = None) -> BounceReport:
    return BounceReport(
        kind=BounceKind.UNKNOWN,
        summary=f"could not be read ({type(exc).__name__})",
        status=None,
        diagnostic=None,
        recipients=(),
        addressed_to=(),
        return_paths=(),
        original_message_id=None,
        identity=_identity(message, data),
        headers=_kept_headers(message) if message is not None else "",
        size=len(data),
    )


def _identity(message: Message | None, data: bytes) -> str:
    """What tells this report from another: its Message-ID, else a digest of its body (the
    headers may differ between two copies, each with the Received lines of its route)."""
    message_id = header(message, "Message-ID") if message is not None else ""
    if message_id:
        return f"message-id:{message_id}"
    _, separator, body = data.partition(b"\r\n\r\n")
    if not separator:
        _, separator, body = data.partition(b"\n\n")
    return "body:" + hashlib.sha256(body if separator else data).hexdigest()


def _kept_headers(message: Message) -> str:
    lines = []
    for name in KEPT_HEADERS:
        value = one_line(header(message, name), limit=KEPT_HEADER_LENGTH)
        if value:
            lines.append(f"{name}: {value}")
    return "\n".join(lines)[:KEPT_HEADERS_TOTAL]
