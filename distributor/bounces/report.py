"""What one message that came back says, once read: the result of `classify`."""

from __future__ import annotations

from dataclasses import dataclass, field

from distributor.bounces.kinds import BounceKind


@dataclass(frozen=True, slots=True)
class Finding:
    """What one reader (DSN, ARF, a non-standard bounce, an automatic reply) made of it."""

    kind: BounceKind
    # In words, for the record and the log: "RFC 3464 report: Action failed, Status 5.1.1".
    summary: str
    status: str | None = None
    diagnostic: str | None = None
    # The addresses the report says the original message was sent to.
    recipients: tuple[str, ...] = ()
    # The original message's envelope sender as the report gives it (ARF's
    # Original-Mail-From): one of our VERP addresses, for a message of ours.
    return_paths: tuple[str, ...] = ()
    # The Message-ID of the original message, where the report names it in its own fields.
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class Returned:
    """The headers of the original message, as a report returns them (all, some or none)."""

    message_id: str | None = None
    recipients: tuple[str, ...] = ()
    return_paths: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BounceReport:
    kind: BounceKind
    summary: str
    status: str | None
    # The remote server's words, one line, with any address in them blanked.
    diagnostic: str | None
    # Every address the report names as the original recipient, the most specific first.
    recipients: tuple[str, ...]
    # Where the report itself was addressed (Delivered-To, X-Original-To, To, ...): the
    # VERP address it was sent back to, when read from a mailbox rather than over SMTP.
    addressed_to: tuple[str, ...]
    # The original message's envelope sender (its Return-Path, ARF's Original-Mail-From).
    return_paths: tuple[str, ...]
    # The Message-ID of the original message, if the report returns it.
    original_message_id: str | None
    # Tells one report from another for idempotence: its own Message-ID, else its body.
    identity: str
    # A few of its headers, at most a kilobyte: kept only when it cannot be matched.
    headers: str
    size: int
    notes: tuple[str, ...] = field(default=())

    @property
    def recipient(self) -> str | None:
        return self.recipients[0] if self.recipients else None
