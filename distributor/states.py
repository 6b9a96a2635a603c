"""The state machines of a send and of each delivery."""

from __future__ import annotations

import enum


class SendState(enum.StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"  # nothing is armed until a second person approves
    SCHEDULED = "scheduled"  # waiting for the embargo to come within the arming window
    ARMED = "armed"  # batches handed to workers, who send at the embargo instant
    PAUSED = "paused"  # an admin stopped further claims; resuming carries on
    HELD = "held"  # nothing went out within the allowed lateness; waits for an admin
    COMPLETED = "completed"  # every delivery reached a final state
    CANCELLED = "cancelled"  # withdrawn before the embargo; pending deliveries were cancelled


class SendKind(enum.StrEnum):
    """Which message a send carries; every delivery of a send is that message."""

    PUBLIC = "public"  # the release, to the whole audience, at the lift
    PREBRIEF = "prebrief"  # the embargoed copy, before the lift, to vetted journalists
    LIFT_NOTICE = "lift_notice"  # "the embargo has now lifted", at the lift, to the pre-briefed
    MOVE_NOTICE = "move_notice"  # "the embargo has moved to ...", at once, to the pre-briefed
    WITHDRAW_NOTICE = "withdraw_notice"  # "release withdrawn: do not publish", at once
    CORRECTION = "correction"  # the corrected text, to everyone who received the release

    @property
    def is_notice(self) -> bool:
        """Short messages that must not wait behind a bulk send."""
        return self in NOTICE_KINDS


NOTICE_KINDS = frozenset({SendKind.LIFT_NOTICE, SendKind.MOVE_NOTICE, SendKind.WITHDRAW_NOTICE})


class DeliveryState(enum.StrEnum):
    PENDING = "pending"  # waiting for the embargo and a worker
    SENDING = "sending"  # claimed by one worker, being transmitted now
    SENT = "sent"  # accepted by the mail relay
    DEFERRED = "deferred"  # temporary failure (4xx, timeout, relay down); retried later
    FAILED = "failed"  # permanent failure, or the outcome could not be known
    BOUNCED = "bounced"  # accepted, then bounced back by the recipient's server
    SUPPRESSED = "suppressed"  # not sent: the address is on the suppression list
    CANCELLED = "cancelled"  # not sent: the send was cancelled first


# A send in one of these states may still send something, and may still be cancelled.
ACTIVE_SEND_STATES = frozenset(
    {
        SendState.AWAITING_APPROVAL,
        SendState.SCHEDULED,
        SendState.ARMED,
        SendState.PAUSED,
        SendState.HELD,
    }
)

# A delivery in one of these states will not change again without a human.
FINAL_DELIVERY_STATES = frozenset(
    {
        DeliveryState.SENT,
        DeliveryState.FAILED,
        DeliveryState.BOUNCED,
        DeliveryState.SUPPRESSED,
        DeliveryState.CANCELLED,
    }
)
UNFINISHED_DELIVERY_STATES = frozenset(set(DeliveryState) - FINAL_DELIVERY_STATES)
