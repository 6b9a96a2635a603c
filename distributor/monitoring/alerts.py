"""What an admin must be told at once, judged from the database alone.

Every process leaves its facts in the database (heartbeats, the relay's outages, each
delivery's state), so any process that can read it can tell when one of them stopped: the
web app shows the alerts on its admin pages, `status` prints them, and the webhook posts
their starts and ends. Each alert has a stable `code` for machines and a sentence for people
that names the sends concerned and what to do.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from distributor.bounces.reputation import ReputationLimits
from distributor.engine.heartbeats import ProcessHealth, recent_heartbeats
from distributor.engine.relay_health import ROW_ID
from distributor.models import Delivery, RelayHealth, Send
from distributor.monitoring.send_counts import send_reputations
from distributor.states import ACTIVE_SEND_STATES, DeliveryState, SendState

if TYPE_CHECKING:  # only an annotation: settings.py may import this package without a cycle
    from distributor.settings import Settings

# Sends named in one message at most; the rest are counted.
NAMED_SENDS = 5
# A silent scheduler is critical when a send is due within this long; a warning otherwise.
SCHEDULER_LOOKAHEAD = timedelta(days=1)


class Severity(enum.StrEnum):
    CRITICAL = "critical"  # sends are late, or will be, until someone acts
    WARNING = "warning"  # worth a look soon; nothing is late because of it yet


class AlertCode(enum.StrEnum):
    SCHEDULER_SILENT = "scheduler_silent"  # no scheduler heartbeat for longer than allowed
    NO_WORKER_ALIVE = "no_worker_alive"  # work is due and no worker has been seen
    SEND_BEHIND_EMBARGO = "send_behind_embargo"  # past its embargo with deliveries waiting
    RELAY_REFUSING = "relay_refusing"  # the relay refused connections or could not be reached
    BOUNCE_RATE_HIGH = "bounce_rate_high"  # a send's hard bounces passed their limit
    COMPLAINT_RATE_HIGH = "complaint_rate_high"  # a send's spam complaints passed their limit


# Alerts about one send: each send has its own, which starts and ends on its own.
ONE_SEND_CODES = frozenset(
    {AlertCode.SEND_BEHIND_EMBARGO, AlertCode.BOUNCE_RATE_HIGH, AlertCode.COMPLAINT_RATE_HIGH}
)
_SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1}


@dataclass(frozen=True, slots=True)
class Alert:
    code: AlertCode
    severity: Severity
    message: str
    send_ids: tuple[int, ...] = ()
    # When the condition began, where the database says (None: not known).
    since: datetime | None = None

    @property
    def key(self) -> str:
        """The same from the alert's start to its end: its code, and its send if it is
        about one send."""
        if self.code in ONE_SEND_CODES and self.send_ids:
            return f"{self.code.value}:{self.send_ids[0]}"
        return self.code.value


@dataclass(frozen=True, slots=True)
class AlertThresholds:
    scheduler_silent_after: timedelta = timedelta(seconds=10)
    # A worker's main process beats every third of a lease, idle or not; its pool's
    # processes when they take a batch and each time they renew its lease.
    worker_silent_after: timedelta = timedelta(seconds=30)
    # Due work that no worker has been seen for this long after it fell due: the scheduler
    # hands batches on two seconds before the embargo, so a live worker has beaten by then.
    worker_grace: timedelta = timedelta(seconds=5)
    behind_embargo_after: timedelta = timedelta(seconds=60)
    reputation: ReputationLimits = field(default_factory=ReputationLimits)
    # Bounces and complaints keep coming back after a send completes.
    reputation_watch: timedelta = timedelta(hours=24)
    # An outage nobody has tried the relay since is old news after this.
    relay_outage_forgotten_after: timedelta = timedelta(hours=1)


def thresholds_from(settings: Settings) -> AlertThresholds:
    """The thresholds an installation's settings imply: a scheduler ticking more slowly
    than usual gets three ticks, and a worker, which renews its lease every third of it,
    is gone after two leases without a heartbeat (as `distributor health` judges them)."""
    return AlertThresholds(
        scheduler_silent_after=max(
            timedelta(seconds=10), timedelta(seconds=3 * settings.scheduler_interval_seconds)
        ),
        worker_silent_after=timedelta(seconds=2 * settings.lease_seconds),
        reputation=ReputationLimits(
            bounce_rate=settings.bounce_rate_limit,
            complaint_rate=settings.complaint_rate_limit,
            minimum_delivered=settings.reputation_minimum_delivered,
        ),
    )


def evaluate_alerts(session: Session, *, now: datetime, thresholds: AlertThresholds) -> list[Alert]:
    """Every alert that holds at `now` (the database's time), the most urgent first."""
    processes = recent_heartbeats(session, now=now)
    # Sends a silent scheduler will make late: armed, or due to be armed within a day.
    waiting_sends = session.scalars(
        select(Send.id)
        .where(
            Send.state.in_([SendState.SCHEDULED, SendState.ARMED]),
            Send.embargo_at <= now + SCHEDULER_LOOKAHEAD,
        )
        .order_by(Send.id)
    ).all()
    relay = session.get(RelayHealth, ROW_ID)
    resting = relay is not None and relay.retry_after is not None and relay.retry_after > now
    alerts = [
        *_scheduler_alert(processes, now=now, thresholds=thresholds, waiting=waiting_sends),
        *_relay_alert(relay, now=now, thresholds=thresholds),
        # While the relay rests, the scheduler hands no batch on and workers stay quiet.
        *([] if resting else _worker_alert(session, processes, now=now, thresholds=thresholds)),
        *_behind_embargo_alerts(session, now=now, thresholds=thresholds),
        *_reputation_alerts(session, now=now, thresholds=thresholds),
    ]
    return sorted(alerts, key=lambda a: (_SEVERITY_ORDER[a.severity], a.code.value, a.send_ids))


def _scheduler_alert(
    processes: Sequence[ProcessHealth],
    *,
    now: datetime,
    thresholds: AlertThresholds,
    waiting: Sequence[int],
) -> list[Alert]:
    seen = [p.seen_at for p in processes if p.kind == "scheduler"]
    last = max(seen, default=None)
    if last is not None and now - last <= thresholds.scheduler_silent_after:
        return []
    silence = (
        "no scheduler has ticked in the last hour"
        if last is None
        else f"the scheduler has not ticked for {duration(now - last)} "
        f"(last tick {last:%H:%M:%S} UTC)"
    )
    consequence = (
        f": {sends_named(waiting)} will not be armed, handed to workers or completed"
        if waiting
        else ""
    )
    return [
        Alert(
            AlertCode.SCHEDULER_SILENT,
            Severity.CRITICAL if waiting else Severity.WARNING,
            f"{silence}{consequence}; is `distributor scheduler` running?",
            tuple(waiting),
            last,
        )
    ]


def _worker_alert(
    session: Session,
    processes: Sequence[ProcessHealth],
    *,
    now: datetime,
    thresholds: AlertThresholds,
) -> list[Alert]:
    seen = [p.seen_at for p in processes if p.kind == "worker"]
    last = max(seen, default=None)
    if last is not None and now - last <= thresholds.worker_silent_after:
        return []
    due_since = now - thresholds.worker_grace
    waiting = session.scalars(
        select(Delivery.send_id)
        .join(Send, Send.id == Delivery.send_id)
        .where(
            Send.state == SendState.ARMED,
            Send.embargo_at <= due_since,
            or_(
                Delivery.state == DeliveryState.SENDING,
                and_(
                    Delivery.state.in_([DeliveryState.PENDING, DeliveryState.DEFERRED]),
                    or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= due_since),
                ),
            ),
        )
        .group_by(Delivery.send_id)
        .order_by(Delivery.send_id)
    ).all()
    if not waiting:
        return []
    silence = (
        "no worker has been seen in the last hour"
        if last is None
        else f"no worker has been seen for {duration(now - last)}"
    )
    return [
        Alert(
            AlertCode.NO_WORKER_ALIVE,
            Severity.CRITICAL,
            f"{silence} while {sends_named(waiting)} "
            f"{'has' if len(waiting) == 1 else 'have'} deliveries due; "
            "is `distributor worker` running?",
            tuple(waiting),
            last,
        )
    ]


def _behind_embargo_alerts(
    session: Session, *, now: datetime, thresholds: AlertThresholds
) -> list[Alert]:
    alerts = []
    behind = session.execute(
        select(Send.id, Send.embargo_at, func.count())
        .join(Delivery, Delivery.send_id == Send.id)
        .where(
            Send.state == SendState.ARMED,
            Send.embargo_at < now - thresholds.behind_embargo_after,
            Delivery.state == DeliveryState.PENDING,
        )
        .group_by(Send.id, Send.embargo_at)
        .order_by(Send.id)
    ).all()
    for send_id, embargo_at, pending in behind:
        alerts.append(
            Alert(
                AlertCode.SEND_BEHIND_EMBARGO,
                Severity.CRITICAL,
                f"send {send_id} is {duration(now - embargo_at)} past its embargo with "
                f"{pending} deliver{'y' if pending == 1 else 'ies'} still pending",
                (send_id,),
                embargo_at + thresholds.behind_embargo_after,
            )
        )
    held = session.execute(
        select(Send.id, Send.held_at, Send.hold_reason)
        .where(Send.state == SendState.HELD)
        .order_by(Send.id)
    ).all()
    for send_id, held_at, reason in held:
        alerts.append(
            Alert(
                AlertCode.SEND_BEHIND_EMBARGO,
                Severity.CRITICAL,
                f"send {send_id} is held: {reason or 'nothing went out in time'}; "
                f"`distributor send resume {send_id}` sends it however late",
                (send_id,),
                held_at,
            )
        )
    return alerts


def _relay_alert(
    row: RelayHealth | None, *, now: datetime, thresholds: AlertThresholds
) -> list[Alert]:
    if row is None or row.consecutive_outages <= 0:
        return []
    resting = row.retry_after is not None and row.retry_after > now
    recent = row.changed_at is not None and (
        now - row.changed_at <= thresholds.relay_outage_forgotten_after
    )
    if not resting and not recent:
        return []
    outages = row.consecutive_outages
    what = (
        f"the relay refused connections or could not be reached "
        f"({outages} time{'s' if outages != 1 else ''} in a row; last: "
        f"{row.last_error or 'no error recorded'})"
    )
    if resting and row.retry_after is not None:
        then = f"nothing is handed to workers until {row.retry_after:%H:%M:%S} UTC"
    else:
        then = "workers are trying it again"
    return [
        Alert(
            AlertCode.RELAY_REFUSING,
            Severity.CRITICAL,
            f"{what}; {then}; check the relay (DISTRIBUTOR_SMTP_URL)",
            (),
            row.changed_at,
        )
    ]


def _reputation_alerts(
    session: Session, *, now: datetime, thresholds: AlertThresholds
) -> list[Alert]:
    limits = thresholds.reputation
    watched = watched_send_ids(session, now=now, watch=thresholds.reputation_watch)
    alerts = []
    for reputation in send_reputations(session, watched):
        if reputation.delivered < max(limits.minimum_delivered, 1):
            continue
        send_id = reputation.send_id
        if reputation.bounce_rate > limits.bounce_rate:
            alerts.append(
                Alert(
                    AlertCode.BOUNCE_RATE_HIGH,
                    Severity.WARNING,
                    f"send {send_id}: {percent(reputation.bounce_rate)} of delivered messages "
                    f"bounced hard ({reputation.hard_bounced} of {reputation.delivered}; "
                    f"limit {percent(limits.bounce_rate)}); see `distributor bounces list "
                    f"--send {send_id}`",
                    (send_id,),
                )
            )
        if reputation.complaint_rate > limits.complaint_rate:
            alerts.append(
                Alert(
                    AlertCode.COMPLAINT_RATE_HIGH,
                    Severity.WARNING,
                    f"send {send_id}: {percent(reputation.complaint_rate)} of delivered "
                    f"messages were reported as spam ({reputation.complaints} of "
                    f"{reputation.delivered}; limit {percent(limits.complaint_rate)}); see "
                    f"`distributor bounces list --send {send_id}`",
                    (send_id,),
                )
            )
    return alerts


def watched_send_ids(session: Session, *, now: datetime, watch: timedelta) -> list[int]:
    """Sends whose bounces and complaints still matter: not finished, or finished lately."""
    return list(
        session.scalars(
            select(Send.id)
            .where(
                or_(
                    Send.state.in_(ACTIVE_SEND_STATES),
                    and_(Send.state == SendState.COMPLETED, Send.completed_at >= now - watch),
                )
            )
            .order_by(Send.id)
        )
    )


def sends_named(send_ids: Iterable[int]) -> str:
    """'send 3', 'sends 3, 4 and 7', 'sends 1, 2, 3, 4, 5 and 6 more'."""
    ids = list(send_ids)
    if len(ids) == 1:
        return f"send {ids[0]}"
    shown = ", ".join(map(str, ids[:NAMED_SENDS]))
    if len(ids) > NAMED_SENDS:
        return f"sends {shown} and {len(ids) - NAMED_SENDS} more"
    head, _, tail = shown.rpartition(", ")
    return f"sends {head} and {tail}"


def duration(span: timedelta) -> str:
    """'45 s', '2 min 5 s', '3 h 20 min'."""
    seconds = max(int(span.total_seconds()), 0)
    if seconds < 120:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 120:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def percent(rate: float) -> str:
    """'0.35 %' below one per cent (to compare with 0.3 %), '15.8 %' above, '5 %' whole."""
    value = rate * 100
    text = f"{value:.2f}" if value < 1 else f"{value:.1f}"
    return f"{text.rstrip('0').rstrip('.')} %"
