"""What the admin pages and `status --watch` show, read in one go: the scheduler's and the
workers' heartbeats, the sends in flight with their progress and pace, the relay's recent
replies, work that waits (deferred, held, failed), the oldest delivery waiting, each send's
bounce and complaint rates, and the alerts.

Plain queries on the database (the broker's queues are read apart, in queue_depths.py), so
that the same figures serve the page, the live updates it polls for and the terminal; the
counts of each send's deliveries are those the alerts and the metrics read (send_counts.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from distributor.bounces.reputation import ReputationLimits, SendReputation
from distributor.bounces.status_codes import blank_addresses
from distributor.engine.heartbeats import ProcessHealth, recent_heartbeats
from distributor.engine.relay_health import RelayState, relay_state
from distributor.models import Delivery, Release, Send, SendBatch
from distributor.monitoring.alerts import Alert, AlertThresholds, evaluate_alerts, watched_send_ids
from distributor.monitoring.send_counts import deliveries_by_state, replies_since, send_reputations
from distributor.states import FINAL_DELIVERY_STATES, DeliveryState, SendKind, SendState

# Messages a second are counted over this last stretch.
RATE_WINDOW = timedelta(seconds=10)
# Scheduled sends this close to their embargo are shown with those in flight, and
# completed ones stay there this long, so that the end of a send is seen.
UPCOMING_WITHIN = timedelta(hours=1)
COMPLETED_SHOWN_FOR = timedelta(minutes=10)
RECENT_REPLIES = 10
REPLY_CLASSES_WINDOW = timedelta(minutes=15)
_BATCH_DETAIL = re.compile(r"'send_id': (\d+), 'batch_no': (\d+)")


@dataclass(frozen=True, slots=True)
class SendProgress:
    send_id: int
    release_id: int
    headline: str
    kind: SendKind
    state: SendState
    embargo_at: datetime
    counts: dict[DeliveryState, int]
    per_second: float

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def done(self) -> int:
        """Deliveries that reached a final state, sent or not."""
        return sum(n for state, n in self.counts.items() if state in FINAL_DELIVERY_STATES)

    @property
    def sent(self) -> int:
        return self.counts.get(DeliveryState.SENT, 0)

    @property
    def percent(self) -> float:
        return 100.0 * self.done / self.total if self.total else 0.0


@dataclass(frozen=True, slots=True)
class ProcessView:
    name: str
    kind: str
    seen_at: datetime
    seconds_ago: float
    clock_offset_ms: int
    alive: bool
    # What it is doing now: the batches it holds the lease of, else what it said last.
    doing: str


@dataclass(frozen=True, slots=True)
class RelayReply:
    finished_at: datetime
    send_id: int
    delivery_id: int
    state: DeliveryState
    code: int | None
    # The relay's words, without the recipient's address.
    reply: str


@dataclass(frozen=True, slots=True)
class WaitingWork:
    """A send with work that waits for time or for a person."""

    send_id: int
    headline: str
    state: SendState
    hold_reason: str | None
    deferred: int
    failed: int
    bounced: int
    next_retry_at: datetime | None


@dataclass(frozen=True, slots=True)
class OldestWaiting:
    delivery_id: int
    send_id: int
    due_since: datetime
    state: DeliveryState


@dataclass(frozen=True, slots=True)
class AdminOverview:
    now: datetime
    schedulers: list[ProcessView]
    workers: list[ProcessView]
    sends: list[SendProgress]
    relay: RelayState
    replies: list[RelayReply]
    reply_classes: dict[str, int]
    waiting: list[WaitingWork]
    oldest_waiting: OldestWaiting | None
    reputations: list[SendReputation]
    reputation_limits: ReputationLimits
    alerts: list[Alert]

    @property
    def workers_alive(self) -> int:
        return sum(1 for w in self.workers if w.alive)

    @property
    def last_tick(self) -> ProcessView | None:
        return max(self.schedulers, key=lambda p: p.seen_at, default=None)


def admin_overview(
    session: Session, *, now: datetime, thresholds: AlertThresholds
) -> AdminOverview:
    """Everything the admin page shows, at `now` (the database's time)."""
    processes = recent_heartbeats(session, now=now)
    watched = watched_send_ids(session, now=now, watch=thresholds.reputation_watch)
    return AdminOverview(
        now=now,
        schedulers=_processes(
            session, processes, "scheduler", now=now, within=thresholds.scheduler_silent_after
        ),
        workers=_processes(
            session, processes, "worker", now=now, within=thresholds.worker_silent_after
        ),
        sends=sends_in_flight(session, now=now),
        relay=relay_state(session),
        replies=recent_replies(session, watched),
        reply_classes=replies_since(session, watched, since=now - REPLY_CLASSES_WINDOW),
        waiting=waiting_work(session, watched),
        oldest_waiting=oldest_waiting(session, now=now),
        reputations=[r for r in send_reputations(session, watched) if r.delivered],
        reputation_limits=thresholds.reputation,
        alerts=evaluate_alerts(session, now=now, thresholds=thresholds),
    )


def sends_in_flight(session: Session, *, now: datetime) -> list[SendProgress]:
    """Sends going out, about to, held or paused midway, or just finished; soonest first."""
    rows = session.execute(
        select(Send, Release.headline)
        .join(Release, Release.id == Send.release_id)
        .where(
            or_(
                Send.state.in_([SendState.ARMED, SendState.PAUSED, SendState.HELD]),
                (Send.state == SendState.SCHEDULED) & (Send.embargo_at <= now + UPCOMING_WITHIN),
                (Send.state == SendState.COMPLETED)
                & (Send.completed_at >= now - COMPLETED_SHOWN_FOR),
            )
        )
        .order_by(Send.embargo_at, Send.id)
    ).all()
    ids = [send.id for send, _ in rows]
    counts = deliveries_by_state(session, ids)
    recent: dict[int, int] = {}
    if ids:
        for send_id, n in session.execute(
            select(Delivery.send_id, func.count())
            .where(
                Delivery.send_id.in_(ids),
                Delivery.state == DeliveryState.SENT,
                Delivery.finished_at > now - RATE_WINDOW,
            )
            .group_by(Delivery.send_id)
        ):
            recent[send_id] = n
    return [
        SendProgress(
            send_id=send.id,
            release_id=send.release_id,
            headline=headline,
            kind=send.kind,
            state=send.state,
            embargo_at=send.embargo_at,
            counts=counts[send.id],
            per_second=recent.get(send.id, 0) / RATE_WINDOW.total_seconds(),
        )
        for send, headline in rows
    ]


def _processes(
    session: Session,
    processes: list[ProcessHealth],
    kind: str,
    *,
    now: datetime,
    within: timedelta,
) -> list[ProcessView]:
    leases: dict[str, list[tuple[int, int]]] = {}
    if kind == "worker":
        for owner, send_id, batch_no in session.execute(
            select(SendBatch.lease_owner, SendBatch.send_id, SendBatch.batch_no)
            .where(SendBatch.lease_owner.is_not(None), SendBatch.lease_expires_at > now)
            .order_by(SendBatch.send_id, SendBatch.batch_no)
        ):
            if owner is not None:
                leases.setdefault(owner, []).append((send_id, batch_no))
    views = []
    for p in processes:
        if p.kind != kind:
            continue
        alive = now - p.seen_at <= within
        views.append(
            ProcessView(
                name=p.name,
                kind=p.kind,
                seen_at=p.seen_at,
                seconds_ago=max((now - p.seen_at).total_seconds(), 0.0),
                clock_offset_ms=p.clock_offset_ms,
                alive=alive,
                doing=_doing(kind, leases.get(p.name, []), p.detail, alive=alive),
            )
        )
    return sorted(views, key=lambda v: (not v.alive, v.seconds_ago, v.name))


def _doing(kind: str, held: list[tuple[int, int]], detail: str | None, *, alive: bool) -> str:
    if kind == "scheduler":
        return "ticking" if alive else "silent"
    if held:
        by_send: dict[int, list[int]] = {}
        for send_id, batch_no in held:
            by_send.setdefault(send_id, []).append(batch_no)
        return "; ".join(
            f"sending send {send_id}, batch{'es' if len(nos) > 1 else ''} "
            + ", ".join(map(str, nos))
            for send_id, nos in by_send.items()
        )
    last = _BATCH_DETAIL.search(detail or "")
    said = f" (last: send {last.group(1)}, batch {last.group(2)})" if last else ""
    return ("idle" if alive else "not seen lately") + said


def recent_replies(session: Session, send_ids: list[int]) -> list[RelayReply]:
    """The relay's last replies to the watched sends' messages, newest first."""
    if not send_ids:
        return []
    rows = session.execute(
        select(
            Delivery.finished_at,
            Delivery.send_id,
            Delivery.id,
            Delivery.state,
            Delivery.smtp_code,
            Delivery.smtp_reply,
            Delivery.error,
        )
        .where(
            Delivery.send_id.in_(send_ids),
            Delivery.finished_at.is_not(None),
            or_(Delivery.smtp_reply.is_not(None), Delivery.error.is_not(None)),
        )
        .order_by(Delivery.finished_at.desc(), Delivery.id.desc())
        .limit(RECENT_REPLIES)
    ).all()
    return [
        RelayReply(
            finished_at=finished_at or datetime.min.replace(tzinfo=UTC),
            send_id=send_id,
            delivery_id=delivery_id,
            state=state,
            code=code,
            reply=blank_addresses(" ".join((reply or error or "").split())) or "",
        )
        for finished_at, send_id, delivery_id, state, code, reply, error in rows
    ]


def waiting_work(session: Session, send_ids: list[int]) -> list[WaitingWork]:
    """Watched sends that are held or paused, or have deferred, failed or bounced
    deliveries: what an admin may retry, resume or cancel."""
    if not send_ids:
        return []
    counted = (DeliveryState.DEFERRED, DeliveryState.FAILED, DeliveryState.BOUNCED)
    counts: dict[int, dict[DeliveryState, int]] = {i: {} for i in send_ids}
    for send_id, state, n in session.execute(
        select(Delivery.send_id, Delivery.state, func.count())
        .where(Delivery.send_id.in_(send_ids), Delivery.state.in_(counted))
        .group_by(Delivery.send_id, Delivery.state)
    ):
        counts[send_id][state] = n
    next_retry: dict[int, datetime | None] = {}
    for send_id, at in session.execute(
        select(Delivery.send_id, func.min(Delivery.next_attempt_at))
        .where(Delivery.send_id.in_(send_ids), Delivery.state == DeliveryState.DEFERRED)
        .group_by(Delivery.send_id)
    ):
        next_retry[send_id] = at
    rows = session.execute(
        select(Send.id, Release.headline, Send.state, Send.hold_reason)
        .join(Release, Release.id == Send.release_id)
        .where(Send.id.in_(send_ids))
        .order_by(Send.id)
    ).all()
    return [
        WaitingWork(
            send_id=send_id,
            headline=headline,
            state=state,
            hold_reason=reason if state in (SendState.HELD, SendState.PAUSED) else None,
            deferred=counts[send_id].get(DeliveryState.DEFERRED, 0),
            failed=counts[send_id].get(DeliveryState.FAILED, 0),
            bounced=counts[send_id].get(DeliveryState.BOUNCED, 0),
            next_retry_at=next_retry.get(send_id),
        )
        for send_id, headline, state, reason in rows
        if counts[send_id] or state in (SendState.HELD, SendState.PAUSED)
    ]


def oldest_waiting(session: Session, *, now: datetime) -> OldestWaiting | None:
    """The delivery of an armed send that has been due the longest and is still not sent."""
    due_since = func.coalesce(Delivery.next_attempt_at, Send.embargo_at)
    row = session.execute(
        select(Delivery.id, Delivery.send_id, due_since, Delivery.state)
        .join(Send, Send.id == Delivery.send_id)
        .where(
            Send.state == SendState.ARMED,
            Send.embargo_at <= now,
            Delivery.state.in_([DeliveryState.PENDING, DeliveryState.DEFERRED]),
            due_since <= now,
        )
        .order_by(due_since, Delivery.id)
        .limit(1)
    ).first()
    if row is None:
        return None
    delivery_id, send_id, since, state = row
    return OldestWaiting(delivery_id=delivery_id, send_id=send_id, due_since=since, state=state)


@dataclass(frozen=True, slots=True)
class LiveFigures:
    """The part of the overview that moves from second to second, for the page to poll."""

    now: datetime
    sends: list[SendProgress]
    alerts: list[Alert]
    last_tick: datetime | None
    workers_alive: int


def live_figures(session: Session, *, now: datetime, thresholds: AlertThresholds) -> LiveFigures:
    processes = recent_heartbeats(session, now=now)
    return LiveFigures(
        now=now,
        sends=sends_in_flight(session, now=now),
        alerts=evaluate_alerts(session, now=now, thresholds=thresholds),
        last_tick=max((p.seen_at for p in processes if p.kind == "scheduler"), default=None),
        workers_alive=sum(
            1
            for p in processes
            if p.kind == "worker" and now - p.seen_at <= thresholds.worker_silent_after
        ),
    )
