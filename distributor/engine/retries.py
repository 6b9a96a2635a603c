"""What an SMTP failure means for a delivery: try again later, give up, or a hard bounce.

A temporary failure (a 4xx reply, a connection dropped or timed out mid-transaction) is
retried on exponential backoff with jitter, for as long as the retry window lasts: a press
release is news, and a copy that arrives hours late is worth less than a clear "failed"
that a press officer can act on. A permanent failure (5xx) is final; a 5.1.x enhanced status
says the mailbox does not exist, which is a hard bounce.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from distributor.errors import TransportError
from distributor.states import DeliveryState

# RFC 3463 enhanced status codes: class.subject.detail; 5.1.x is a bad destination address.
ENHANCED_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
LONGEST_WAIT = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    initial: timedelta  # the wait after the first temporary failure
    window: timedelta  # how long after the first attempt a delivery may still be retried
    jitter: float = 0.2  # each wait is spread by ±20% so retries of a batch do not bunch

    def wait_after(self, attempt: int, *, rng: random.Random | None = None) -> timedelta:
        """The wait after the given (1-based) failed attempt."""
        base = min(self.initial * (2 ** max(attempt - 1, 0)), LONGEST_WAIT)
        spread = (rng or random).uniform(1 - self.jitter, 1 + self.jitter)
        return timedelta(seconds=base.total_seconds() * spread)


@dataclass(frozen=True, slots=True)
class Verdict:
    state: DeliveryState
    reason: str
    next_attempt_at: datetime | None = None
    # A mailbox that does not exist: its address goes on the suppression list.
    hard_bounce: bool = False


def enhanced_status(text: str) -> str | None:
    match = ENHANCED_STATUS.search(text)
    return ".".join(match.groups()) if match else None


def judge_failure(
    error: TransportError,
    *,
    attempt: int,
    first_claimed_at: datetime,
    now: datetime,
    policy: RetryPolicy,
) -> Verdict:
    reason = str(error)
    if error.temporary:
        next_attempt = now + policy.wait_after(attempt)
        if next_attempt > first_claimed_at + policy.window:
            hours = policy.window.total_seconds() / 3600
            return Verdict(
                DeliveryState.FAILED,
                f"expired: still failing temporarily after {hours:g} h; last: {reason}",
            )
        return Verdict(DeliveryState.DEFERRED, reason, next_attempt_at=next_attempt)
    status = enhanced_status(reason)
    if error.code is not None and 500 <= error.code < 600 and status and status.startswith("5.1."):
        return Verdict(DeliveryState.BOUNCED, reason, hard_bounce=True)
    return Verdict(DeliveryState.FAILED, reason)
