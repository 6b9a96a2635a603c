"""How `distributor status` puts a send and the processes' health into words."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from distributor.engine.dbclock import SKEW_WARNING
from distributor.engine.heartbeats import ProcessHealth
from distributor.engine.pacing_status import PacingStatus, pacing_lines
from distributor.engine.relay_health import RelayState
from distributor.monitoring.alerts import Alert
from distributor.states import DeliveryState, SendKind, SendState
from distributor.status import SendStatus

# A scheduler that has not ticked for this long is reported as silent.
SILENT_AFTER = timedelta(seconds=10)
STATE_ORDER = list(DeliveryState)
PHASES = {
    SendKind.PUBLIC: "public",
    SendKind.PREBRIEF: "  pre-brief",
    SendKind.LIFT_NOTICE: "  lift notice",
    SendKind.MOVE_NOTICE: "  embargo-moved notice",
    SendKind.WITHDRAW_NOTICE: "  withdrawal notice",
    SendKind.CORRECTION: "  correction",
}


def _ago(then: datetime, now: datetime) -> str:
    seconds = (now - then).total_seconds()
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def health_lines(
    processes: list[ProcessHealth],
    relay: RelayState,
    *,
    now: datetime,
    pacing: PacingStatus | None = None,
) -> list[str]:
    lines = []
    schedulers = [p for p in processes if p.kind == "scheduler"]
    live = [p for p in schedulers if now - p.seen_at <= SILENT_AFTER]
    if not schedulers:
        lines.append(
            "scheduler: no heartbeat in the last hour; is `distributor scheduler` running?"
        )
    elif not live:
        newest = max(p.seen_at for p in schedulers)
        lines.append(f"scheduler: SILENT, last tick {_ago(newest, now)}")
    else:
        lines.append(
            f"scheduler: {len(live)} ticking, last tick {_ago(max(p.seen_at for p in live), now)}"
        )
    workers = [p for p in processes if p.kind == "worker"]
    if workers:
        newest = max(p.seen_at for p in workers)
        lines.append(f"workers: {len(workers)} seen in the last hour, last {_ago(newest, now)}")
    skew_ms = SKEW_WARNING / timedelta(milliseconds=1)
    for p in processes:
        if abs(p.clock_offset_ms) > skew_ms:
            lines.append(
                f"CLOCK SKEW: {p.name} runs {p.clock_offset_ms / 1000:+.3f} s off the "
                "database's clock (the database decides embargoes; fix the machine's time sync)"
            )
    if relay.is_resting(now) and relay.retry_after is not None:
        lines.append(
            f"relay: DOWN ({relay.consecutive_outages} outage(s) in a row: {relay.last_error}); "
            f"next try {relay.retry_after:%H:%M:%S} UTC"
        )
    elif relay.consecutive_outages:
        lines.append(f"relay: recovering after {relay.consecutive_outages} outage(s)")
    if pacing is not None:
        lines.extend(pacing_lines(pacing))
    return lines


def alerts_line(alerts: Sequence[Alert]) -> str:
    """One line: 'alerts: none', or each alert's words (the banner of the admin pages)."""
    if not alerts:
        return "alerts: none"
    return f"ALERTS ({len(alerts)}): " + "; ".join(
        f"[{a.severity.value}] {a.message}" for a in alerts
    )


def _embargo(s: SendStatus) -> str:
    local = s.embargo_at.astimezone(ZoneInfo(s.embargo_zone))
    return f"{local:%Y-%m-%d %H:%M:%S} {s.embargo_zone} ({s.embargo_at:%Y-%m-%d %H:%M:%S} UTC)"


def until(then: datetime, now: datetime) -> str:
    """'in 2 d 3 h', 'in 4 min 10 s', or 'lifted 5 min ago'."""
    seconds = (then - now).total_seconds()
    span = abs(seconds)
    days, rest = divmod(int(span), 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        text = f"{days} d {hours} h"
    elif hours:
        text = f"{hours} h {minutes} min"
    elif minutes:
        text = f"{minutes} min {secs} s"
    else:
        text = f"{span:.1f} s"
    return f"in {text}" if seconds > 0 else f"lifted {text} ago"


def _audience(s: SendStatus) -> str | None:
    if s.estimated_recipients is None:
        return None
    text = f"  audience: {s.estimated_recipients} when scheduled (an estimate)"
    if s.armed_recipients is None:
        return text + "; resolved again from the lists when the send is armed"
    return (
        text + f"; {s.armed_recipients} at arming "
        f"({s.joined_at_arming or 0} joined, {s.left_at_arming or 0} left the lists since)"
    )


def status_lines(s: SendStatus, *, now: datetime, detailed: bool) -> list[str]:
    counts = ", ".join(
        f"{state.value} {s.counts[state]}" for state in STATE_ORDER if s.counts.get(state)
    )
    if s.kind is SendKind.PUBLIC:
        lines = [
            f"send {s.send_id} (release {s.release_id}, {s.state.value}) embargo {_embargo(s)}: "
            f"{counts or 'no deliveries'}"
        ]
    else:
        lines = [
            f"{PHASES[s.kind]} send {s.send_id} (of send {s.parent_send_id}, {s.state.value}) "
            f"from {_embargo(s)}: {counts or 'no deliveries'}"
        ]
    if s.hold_reason:
        lines.append(f"  {s.state.value}: {s.hold_reason}")
    if s.state == SendState.AWAITING_APPROVAL:
        lines.append(
            f"  awaiting approval: scheduled by {s.scheduled_by or 'someone'}; nothing is armed "
            f"until another person runs `distributor release approve {s.release_id}`"
        )
    if not detailed:
        return lines
    lines.append(f"  headline: {s.headline}")
    lines.append(f"  embargo: {until(s.embargo_at, now)}")
    audience = _audience(s)
    if audience:
        lines.append(audience)
    if s.first_sent_at and s.last_sent_at:
        first = (s.first_sent_at - s.embargo_at).total_seconds()
        last = (s.last_sent_at - s.embargo_at).total_seconds()
        lines.append(f"  sent from {first:+.3f} s to {last:+.3f} s after the embargo")
    if s.next_retry_at:
        lines.append(f"  next retry: {s.next_retry_at:%Y-%m-%d %H:%M:%S} UTC")
    if s.oldest_waiting_since and s.oldest_waiting_since <= now:
        lines.append(f"  oldest waiting delivery: since {_ago(s.oldest_waiting_since, now)}")
    if s.failures_by_reason:
        lines.append("  not sent yet or not sent, by reason:")
        lines.extend(f"    {n:>6}  {reason}" for reason, n in s.failures_by_reason)
    if s.came_back:
        listed = ", ".join(
            f"{n} {kind.replace('_', ' ')}" for kind, n in sorted(s.came_back.items())
        )
        lines.append(
            f"  came back to the return path: {listed} "
            f"(`distributor bounces list --send {s.send_id}`)"
        )
    return lines
