"""The limits in force and how close the installation runs to them, for `distributor status`.

The limits and the relay's backoff come from the pacing store; the rate sent comes from the
deliveries the relay answered in the last few seconds, by the database's clock, whatever
the store (so it is known even with no limit set).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from distributor.engine.daily_quota import next_day_starts
from distributor.engine.pacing import LimiterWaits, Limits, PacingStore, WaitKind
from distributor.engine.relay_backoff import allowed_connections, allowed_rate
from distributor.models import Delivery, Send
from distributor.states import SendState

RECENT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class PacingStatus:
    limits: Limits
    recent_rate: float  # messages a second the relay answered, over the last RECENT_SECONDS
    rate_in_force: float | None  # after any backoff; None: no limit
    connections_in_force: int | None
    connections_held: int | None  # relay connection slots held now (None: store not read)
    backing_off: bool  # the relay pushed back lately and the installation is slowed down
    quota_used_today: int | None
    quota_renews_at: datetime | None
    problem: str | None = None  # why the store could not be read
    # Every wait for a limit the store recorded; None when there is no store or it was not read.
    waits: Mapping[WaitKind, LimiterWaits] | None = None


def recent_rate(session: Session, *, now: datetime, seconds: float = RECENT_SECONDS) -> float:
    """Messages a second that reached a final reply over the last `seconds`, installation-wide
    (deliveries of armed sends only, so the count reads few rows)."""
    since = now - timedelta(seconds=seconds)
    count = session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(
            Delivery.send_id.in_(select(Send.id).where(Send.state == SendState.ARMED)),
            Delivery.finished_at > since,
        )
    )
    return (count or 0) / seconds


def pacing_status(
    session: Session, *, limits: Limits, store: PacingStore | None, now: datetime
) -> PacingStatus:
    rate = recent_rate(session, now=now)
    if store is None:
        return PacingStatus(
            limits=limits,
            recent_rate=rate,
            rate_in_force=limits.rate_per_second,
            connections_in_force=limits.max_connections,
            connections_held=None,
            backing_off=False,
            quota_used_today=None,
            quota_renews_at=None,
        )
    try:
        reading = store.read()
    except Exception as exc:
        return PacingStatus(
            limits=limits,
            recent_rate=rate,
            rate_in_force=limits.rate_per_second,
            connections_in_force=limits.max_connections,
            connections_held=None,
            backing_off=False,
            quota_used_today=None,
            quota_renews_at=None,
            problem=f"cannot read the pacing store: {exc}",
        )
    rate_in_force = allowed_rate(limits.rate_per_second, reading.rate_backoff, reading.now)
    connections = allowed_connections(
        limits.max_connections, reading.connection_backoff, reading.now
    )
    return PacingStatus(
        limits=limits,
        recent_rate=rate,
        rate_in_force=rate_in_force,
        connections_in_force=connections,
        connections_held=reading.connections_held,
        backing_off=rate_in_force != limits.rate_per_second
        or connections != limits.max_connections,
        quota_used_today=reading.quota_used_today if limits.daily_quota is not None else None,
        quota_renews_at=next_day_starts(reading.now) if limits.daily_quota is not None else None,
        waits=reading.waits,
    )


def pacing_lines(status: PacingStatus) -> list[str]:
    """The lines `distributor status` prints about the limits (none when nothing is set or
    learned, and nothing is sending)."""
    limits = status.limits
    lines = []
    if status.problem:
        lines.append(f"limits: {status.problem}")
    if status.rate_in_force is not None:
        share = status.recent_rate / status.rate_in_force
        text = (
            f"rate limit: {status.rate_in_force:,.0f} msg/s in force; sending "
            f"{status.recent_rate:,.0f} msg/s ({share:.0%} of it)"
        )
        if limits.rate_per_second is not None and status.rate_in_force < limits.rate_per_second:
            text += f"; slowed down from {limits.rate_per_second:,.0f} after the relay pushed back"
        elif limits.rate_per_second is None:
            text += "; set after the relay pushed back (no limit is configured)"
        lines.append(text)
    elif status.recent_rate > 0:
        lines.append(f"rate limit: none; sending {status.recent_rate:,.0f} msg/s")
    if status.connections_in_force is not None:
        held = "" if status.connections_held is None else f"{status.connections_held} open of "
        text = f"connection limit: {held}{status.connections_in_force} allowed"
        if limits.max_connections is None:
            text += " (learned from the relay's refusals; none is configured)"
        elif status.connections_in_force < limits.max_connections:
            text += f" (down from {limits.max_connections} after the relay refused one)"
        lines.append(text)
    if limits.domains:
        listed = ", ".join(f"{d} {r:g}/s" for d, r in sorted(limits.domains.items()))
        lines.append(f"domain limits: {listed}")
    if limits.daily_quota is not None and status.quota_used_today is not None:
        used, quota = status.quota_used_today, limits.daily_quota
        text = f"daily quota: {used:,} of {quota:,} used today (UTC)"
        if used >= quota and status.quota_renews_at is not None:
            text += (
                f"; SPENT: deliveries are held until {status.quota_renews_at:%Y-%m-%d %H:%M} UTC"
            )
        lines.append(text)
    return lines
