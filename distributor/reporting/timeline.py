"""Deliveries per second around the embargo: each outcome's instant, counted in buckets.

The window starts a little before the embargo and ends with the last outcome, so that the
burst at the lift fills the chart; stragglers retried minutes later would squash it into a
sliver, so outcomes past `MAX_SPAN_SECONDS` are counted apart and named under the chart.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from distributor.models import Delivery, Send
from distributor.states import DeliveryState

# The chart always shows a few seconds before the lift: an empty stretch there is the
# evidence that nothing went early.
LEAD_SECONDS = 5
MAX_SPAN_SECONDS = 600
MAX_BUCKETS = 90
# Outcomes past this share of them may be left out of the window as stragglers.
STRAGGLER_QUANTILE = 0.99
BUCKET_CHOICES = (1, 2, 5, 10, 15, 30, 60)
REFUSED_STATES = (DeliveryState.FAILED, DeliveryState.BOUNCED)
CHARTED_STATES = (DeliveryState.SENT, *REFUSED_STATES)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One delivery's outcome: seconds from the embargo (negative: before it), and whether
    the relay accepted the message."""

    offset: float
    accepted: bool


@dataclass(frozen=True, slots=True)
class Timeline:
    """Outcomes counted per bucket from `start` seconds after the embargo (negative: before)."""

    start: int
    bucket_seconds: int
    accepted: list[int]
    refused: list[int]
    # Outcomes outside the window: before its start, after its end.
    earlier: int
    later: int

    @property
    def end(self) -> int:
        return self.start + self.bucket_seconds * len(self.accepted)

    @property
    def total(self) -> int:
        return sum(self.accepted) + sum(self.refused) + self.earlier + self.later

    @property
    def shown(self) -> int:
        return sum(self.accepted) + sum(self.refused)

    def per_second(self, index: int) -> float:
        return (self.accepted[index] + self.refused[index]) / self.bucket_seconds

    @property
    def peak_index(self) -> int | None:
        """The bucket with the most outcomes (the first of equals); None when all are empty."""
        if not self.shown:
            return None
        totals = [a + r for a, r in zip(self.accepted, self.refused, strict=True)]
        return totals.index(max(totals))

    def bucket_start(self, index: int) -> int:
        return self.start + index * self.bucket_seconds


def build_timeline(outcomes: Iterable[Outcome]) -> Timeline:
    """Count outcomes into buckets of 1, 2, 5 ... 60 seconds, at most about MAX_BUCKETS."""
    offsets = list(outcomes)
    start = _window_start([o.offset for o in offsets])
    last = _window_last(sorted(o.offset for o in offsets if o.offset >= start), start)
    span = max(math.floor(last) + 1 - start, LEAD_SECONDS * 2)
    bucket = next((b for b in BUCKET_CHOICES if span / b <= MAX_BUCKETS), BUCKET_CHOICES[-1])
    # The embargo falls on a bucket's edge, so that no bucket mixes before and after.
    start = bucket * math.floor(start / bucket)
    count = max(math.ceil((math.floor(last) + 1 - start) / bucket), 1)
    end = start + count * bucket
    accepted, refused = [0] * count, [0] * count
    earlier = later = 0
    for outcome in offsets:
        if outcome.offset < start:
            earlier += 1
        elif outcome.offset >= end:
            later += 1
        else:
            index = int((outcome.offset - start) // bucket)
            (accepted if outcome.accepted else refused)[index] += 1
    return Timeline(
        start=start,
        bucket_seconds=bucket,
        accepted=accepted,
        refused=refused,
        earlier=earlier,
        later=later,
    )


def _window_start(offsets: list[float]) -> int:
    """A few seconds before the embargo, or before the first outcome if that was earlier;
    for a send that went out long after its embargo (held, then resumed), a few seconds
    before its first outcome."""
    if not offsets:
        return -LEAD_SECONDS
    first = math.floor(min(offsets))
    if first > MAX_SPAN_SECONDS // 2:
        return first - LEAD_SECONDS
    return max(min(-LEAD_SECONDS, first), -MAX_SPAN_SECONDS)


def _window_last(ordered: list[float], start: int) -> float:
    """The last outcome the chart shows: the last within MAX_SPAN_SECONDS, unless the last
    hundredth lie far beyond the rest (retries minutes later), which are then left out."""
    within = [offset for offset in ordered if offset < start + MAX_SPAN_SECONDS]
    if not within:
        return float(start + LEAD_SECONDS * 2)
    most = within[math.ceil(len(within) * STRAGGLER_QUANTILE) - 1]
    if within[-1] - start > 2 * (most - start) + LEAD_SECONDS * 2:
        return most
    return within[-1]


def send_outcomes(session: Session, send_id: int, embargo_at: datetime) -> Iterator[Outcome]:
    """The finished deliveries of a send (accepted, failed or bounced), read in chunks."""
    rows = session.execute(
        select(Delivery.finished_at, Delivery.state)
        .where(
            Delivery.send_id == send_id,
            Delivery.state.in_(CHARTED_STATES),
            Delivery.finished_at.is_not(None),
        )
        .execution_options(yield_per=5_000)
    )
    for finished_at, state in rows:
        assert finished_at is not None  # the query asks for finished deliveries only
        yield Outcome(
            offset=(finished_at - embargo_at).total_seconds(),
            accepted=state is DeliveryState.SENT,
        )


def send_timeline(session: Session, send_id: int) -> tuple[datetime | None, Timeline]:
    """The send's embargo and its outcomes per bucket."""
    embargo_at = session.scalar(select(Send.embargo_at).where(Send.id == send_id))
    if embargo_at is None:
        return None, build_timeline(())
    return embargo_at, build_timeline(send_outcomes(session, send_id, embargo_at))
