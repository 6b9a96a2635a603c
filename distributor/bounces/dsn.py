"""Delivery status notifications (RFC 3464): multipart/report with a message/delivery-status
part, one block of fields per recipient. Postfix, Exim, Microsoft 365 and Gmail send these."""

from __future__ import annotations

from email.message import Message

from distributor.bounces.kinds import BounceKind
from distributor.bounces.message_parts import address_of, field_blocks, header, parts_of_type
from distributor.bounces.report import Finding
from distributor.bounces.status_codes import best_status, failure_kind, one_line

# Which block speaks for the report when it has several: the worst news first.
SEVERITY = {"failed": 3, "delayed": 2}


def read_dsn(message: Message) -> Finding | None:
    """What the report says about the (first, worst-off) recipient; None if not a DSN."""
    blocks = [
        b for part in parts_of_type(message, "message/delivery-status") for b in field_blocks(part)
    ]
    per_message = blocks[0] if blocks else None
    per_recipient = [b for b in blocks if header(b, "Action") or header(b, "Final-Recipient")]
    if not per_recipient:
        return None
    block = max(per_recipient, key=lambda b: SEVERITY.get(_action(b), 0))
    action = _action(block)
    diagnostic = one_line(_after_type(header(block, "Diagnostic-Code")))
    status = best_status(header(block, "Status"), diagnostic)
    recipients = [
        address_of(header(block, name)) for name in ("Original-Recipient", "Final-Recipient")
    ]
    message_id = header(per_message, "X-Original-Message-ID") if per_message else ""
    described = f"RFC 3464 report: Action {action or 'missing'}, Status {status or 'missing'}"
    if action == "failed":
        kind = failure_kind(status, diagnostic)
    elif action == "delayed":
        kind = BounceKind.WARNING
    else:
        # delivered, relayed, expanded: news that needs nothing done.
        kind = BounceKind.UNKNOWN
        described += ": not a failure, nothing to do"
    return Finding(
        kind=kind,
        summary=described,
        status=status,
        diagnostic=diagnostic,
        recipients=tuple(dict.fromkeys(r for r in recipients if r)),
        message_id=message_id or None,
    )


def _action(block: Message) -> str:
    # Some servers comment the action ("failed (bad destination mailbox)"); opensmtpd
    # writes "error".
    words = header(block, "Action").lower().split()
    action = words[0] if words else ""
    return "failed" if action.startswith(("fail", "error")) else action


def _after_type(value: str) -> str:
    """`smtp; 550 5.1.1 ...` without its diagnostic type."""
    kind, separator, rest = value.partition(";")
    return rest.strip() if separator and " " not in kind.strip() else value
