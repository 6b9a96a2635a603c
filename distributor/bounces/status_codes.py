"""Enhanced status codes (RFC 3463) and the words servers use: is the mailbox gone?"""

from __future__ import annotations

import re

from distributor.bounces.kinds import BounceKind

ENHANCED_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
# 5.1.7 and 5.1.8 are about the sender's address (ours), not the recipient's mailbox.
ABOUT_THE_SENDER = frozenset({"5.1.7", "5.1.8"})
# Generic codes that servers give when the text says more (Exim: Status 5.0.0, with the
# remote server's "550 5.1.1 ..." in the Diagnostic-Code).
GENERIC = frozenset({"5.0.0", "4.0.0", "2.0.0"})
MAILBOX_UNKNOWN = re.compile(
    r"user unknown|unknown user|no such (user|mailbox|recipient|account)|"
    r"mailbox (not found|does not exist|unknown)|recipient not found|recipientnotfound|"
    r"unknown recipient|recipient unknown|invalid recipient|no mailbox here|"
    r"address (not found|does not exist)|account (that you tried to reach )?does not exist|"
    r"(user|mailbox|address|account|recipient) (does not|doesn't) exist",
    re.IGNORECASE,
)
ADDRESS = re.compile(r"[^\s<>()\[\]\"',;:]+@[^\s<>()\[\]\"',;:]+")
BLANKED = "[address]"
LONGEST_DIAGNOSTIC = 500


def enhanced_status(text: str | None) -> str | None:
    """The first enhanced status code in the text, such as "5.1.1"."""
    match = ENHANCED_STATUS.search(text or "")
    return ".".join(match.groups()) if match else None


def best_status(status: str | None, diagnostic: str | None) -> str | None:
    """The report's Status, or the more specific code the remote server gave in its words."""
    code = enhanced_status(status)
    if code is None or code in GENERIC:
        return enhanced_status(diagnostic) or code
    return code


def failure_kind(status: str | None, text: str | None) -> BounceKind:
    """A permanent failure because the mailbox does not exist is hard; any other failure
    (mailbox full, a policy block, a message too large, a temporary failure the remote
    server gave up on) is soft: it says more about this message than about the address."""
    if status is not None and status.startswith("5.1.") and status not in ABOUT_THE_SENDER:
        return BounceKind.HARD
    if (status is None or status.startswith("5.")) and MAILBOX_UNKNOWN.search(text or ""):
        return BounceKind.HARD
    return BounceKind.SOFT


def one_line(text: str | None, *, limit: int = LONGEST_DIAGNOSTIC) -> str | None:
    """Unfolded to one line and shortened; None when empty."""
    if not text:
        return None
    line = " ".join(text.split())
    return line[:limit] or None


def blank_addresses(text: str | None) -> str | None:
    """The text without the addresses in it: the delivery already says whose it was."""
    return ADDRESS.sub(BLANKED, text) if text else text
