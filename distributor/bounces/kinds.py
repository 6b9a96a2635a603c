"""What a message that came back to a return path turns out to be."""

from __future__ import annotations

import enum


class BounceKind(enum.StrEnum):
    # The mailbox does not exist (5.1.x, or a permanent failure saying so): the delivery
    # is marked bounced and the address suppressed.
    HARD = "hard"
    # Not delivered for a reason that may pass (mailbox full, a policy block, a temporary
    # failure the remote server gave up on): recorded; three within 30 days suppress.
    SOFT = "soft"
    # The message is delayed and still being tried (a DSN with Action: delayed): recorded.
    WARNING = "warning"
    # The recipient reported the message as spam (an ARF report): the address is suppressed.
    COMPLAINT = "complaint"
    # An out-of-office or other automatic reply (RFC 3834): not a bounce; recorded only.
    AUTO_REPLY = "auto_reply"
    # Not a report this program understands (a person's reply, a malformed message).
    UNKNOWN = "unknown"
