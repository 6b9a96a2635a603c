"""Abuse reports (ARF, RFC 5965): a recipient pressed "this is spam" and their provider
tells the sender, in a multipart/report with a message/feedback-report part."""

from __future__ import annotations

from email.message import Message

from distributor.bounces.kinds import BounceKind
from distributor.bounces.message_parts import address_of, field_blocks, headers, parts_of_type
from distributor.bounces.report import Finding

# Feedback types about the person not wanting the mail. not-spam, virus and auth-failure
# say nothing about the recipient's wishes.
COMPLAINTS = frozenset({"abuse", "fraud", "opt-out", "other"})


def read_arf(message: Message) -> Finding | None:
    """What the feedback report says; None if the message is not one."""
    parts = parts_of_type(message, "message/feedback-report")
    fields = [block for part in parts for block in field_blocks(part)]
    if not fields:
        return None
    report = fields[0]
    feedback = (headers(report, "Feedback-Type") or [""])[0].lower() or "missing"
    recipients = [address_of(v) for v in headers(report, "Original-Rcpt-To")]
    return_paths = [address_of(v) for v in headers(report, "Original-Mail-From")]
    complaint = feedback in COMPLAINTS
    return Finding(
        kind=BounceKind.COMPLAINT if complaint else BounceKind.UNKNOWN,
        summary=f"RFC 5965 feedback report: Feedback-Type {feedback}"
        + ("" if complaint else ": not a complaint, nothing to do"),
        recipients=tuple(r for r in recipients if r),
        return_paths=tuple(r for r in return_paths if r),
    )
