"""Automatic replies (RFC 3834): out-of-office and the like. They come back to the return
path too, but say nothing about whether the mailbox exists: they are not bounces."""

from __future__ import annotations

import re
from email.message import Message

from distributor.bounces.kinds import BounceKind
from distributor.bounces.message_parts import header
from distributor.bounces.report import Finding

# What auto-responders that ignore RFC 3834 still tend to set.
MARKER_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autoresponder")
AUTO_PRECEDENCE = frozenset({"auto_reply", "auto-reply"})
AUTO_SUBJECT = re.compile(
    r"^\s*(out of (the )?office|automatic reply|auto(matic)?[ -]?(reply|response)|auto:|"
    r"abwesenheitsnotiz|r[ée]ponse automatique|respuesta autom[áa]tica|risposta automatica)",
    re.IGNORECASE,
)


def read_auto_reply(message: Message) -> Finding | None:
    submitted = header(message, "Auto-Submitted").lower()
    if submitted and not submitted.startswith("no"):
        return Finding(BounceKind.AUTO_REPLY, f"an automatic reply (Auto-Submitted: {submitted})")
    if any(header(message, name) for name in MARKER_HEADERS):
        return Finding(BounceKind.AUTO_REPLY, "an automatic reply (auto-responder header)")
    if header(message, "Precedence").lower() in AUTO_PRECEDENCE:
        return Finding(BounceKind.AUTO_REPLY, "an automatic reply (Precedence: auto_reply)")
    if AUTO_SUBJECT.search(header(message, "Subject")):
        return Finding(BounceKind.AUTO_REPLY, "an automatic reply (by its subject)")
    return None
