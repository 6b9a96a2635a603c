"""What the deliveries table says about one send: how many went, and when, against the embargo.

Times come from `deliveries.finished_at`, the time the relay accepted each message (the
worker commits it before the next message). `claimed_at` (set before any message of a chunk
is sent) gives a lower bound for the first message, and a claim before the embargo would be
an early send.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from distributor.models import Delivery
from distributor.states import UNFINISHED_DELIVERY_STATES, DeliveryState

TIME_COLUMN = "deliveries.finished_at"


@dataclass(frozen=True, slots=True)
class DeliveryFigures:
    recipients: int
    sent: int
    unfinished: int
    first_s: float | None  # embargo to the earliest acceptance, seconds
    last_s: float | None  # embargo to the latest acceptance, seconds
    early: int  # accepted before the embargo
    first_claim_s: float | None = None
    claimed_early: int | None = None

    @property
    def throughput(self) -> float | None:
        """Messages per second from the embargo instant to the last acceptance."""
        if not self.sent or self.last_s is None or self.last_s <= 0:
            return None
        return self.sent / self.last_s

    @property
    def complete(self) -> bool:
        return self.unfinished == 0 and self.sent == self.recipients


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at a measured send, for the record when a send was run more than once."""

    throughput: float | None
    other_cpus: float  # average CPUs kept busy by processes not under test


def seconds_after(instant: datetime | None, embargo_at: datetime) -> float | None:
    return None if instant is None else (instant - embargo_at).total_seconds()


def unfinished_count(session: Session, send_id: int) -> int:
    return int(
        session.scalar(
            select(func.count()).where(
                Delivery.send_id == send_id, Delivery.state.in_(UNFINISHED_DELIVERY_STATES)
            )
        )
        or 0
    )


def send_figures(session: Session, send_id: int, embargo_at: datetime) -> DeliveryFigures:
    sent = Delivery.state == DeliveryState.SENT
    row = session.execute(
        select(
            func.count(),
            func.count().filter(sent),
            func.count().filter(Delivery.state.in_(UNFINISHED_DELIVERY_STATES)),
            func.min(Delivery.finished_at).filter(sent),
            func.max(Delivery.finished_at).filter(sent),
            func.count().filter(Delivery.finished_at < embargo_at),
            func.min(Delivery.claimed_at),
            func.count().filter(Delivery.claimed_at < embargo_at),
        ).where(Delivery.send_id == send_id)
    ).one()
    total, n_sent, unfinished, first, last, early, first_claim, claimed_early = row
    return DeliveryFigures(
        recipients=int(total),
        sent=int(n_sent),
        unfinished=int(unfinished),
        first_s=seconds_after(first, embargo_at),
        last_s=seconds_after(last, embargo_at),
        early=int(early),
        first_claim_s=seconds_after(first_claim, embargo_at),
        claimed_early=int(claimed_early),
    )
