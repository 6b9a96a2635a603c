"""`distributor status --watch`: the admin page in a terminal, drawn again every second.

The same figures as /admin (monitoring.admin_overview): the alerts first, then the sends in
flight with their progress and pace, the workers, the queues, the scheduler and the relay.
Ctrl-C ends it; a database out of reach is shown and tried again, not a reason to stop.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from rich import box
from rich.console import (
    Console,
    ConsoleOptions,
    Group,
    JustifyMethod,
    RenderableType,
    RenderResult,
)
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from sqlalchemy.exc import SQLAlchemyError

from distributor.cli.status_view import until
from distributor.engine.dbclock import read_database_time
from distributor.monitoring.admin_overview import AdminOverview, admin_overview
from distributor.monitoring.alerts import Severity, duration, thresholds_from
from distributor.monitoring.queue_depths import QUICK_TIMEOUT_SECONDS, QueueDepth, queue_depths
from distributor.runtime import Runtime

REFRESH_SECONDS = 1.0
PROGRESS_WIDTH = 16
# Narrower than this, the sends' table leaves out the counts and the sent column.
WIDE_TERMINAL = 110
SEVERITY_STYLE = {Severity.CRITICAL: "bold red", Severity.WARNING: "yellow"}
STATE_STYLE = {
    "armed": "yellow",
    "completed": "green",
    "held": "red",
    "paused": "red",
    "scheduled": "blue",
}


@dataclass(frozen=True, slots=True)
class WatchFrame:
    """What one drawing shows; `problem` when the figures could not be read."""

    overview: AdminOverview | None
    queues: list[QueueDepth]
    problem: str | None = None


def read_frame(rt: Runtime, *, only_send: int | None = None) -> WatchFrame:
    try:
        with rt.sessions() as session:
            now = read_database_time(session, rt.database_clock)
            overview = admin_overview(session, now=now, thresholds=thresholds_from(rt.settings))
    except SQLAlchemyError as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return WatchFrame(None, [], f"cannot read the database: {reason}; trying again")
    if only_send is not None:
        overview = replace(overview, sends=[s for s in overview.sends if s.send_id == only_send])
    return WatchFrame(overview, queue_depths(rt.settings, timeout=QUICK_TIMEOUT_SECONDS))


def render_frame(frame: WatchFrame) -> RenderableType:
    if frame.overview is None:
        return Group(_header(datetime.now(UTC)), Text(frame.problem or "", style="bold red"))
    o = frame.overview
    return Group(
        _header(o.now),
        _alerts(o),
        _vitals(o),
        _sends(o),
        _workers(o),
        _queues(frame.queues),
    )


def watch_status(
    rt: Runtime,
    *,
    console: Console | None = None,
    period: float = REFRESH_SECONDS,
    stop: threading.Event | None = None,
    only_send: int | None = None,
) -> None:
    """Draw the view every `period` seconds until Ctrl-C (or `stop`)."""
    stop = stop or threading.Event()

    def draw() -> RenderableType:
        return render_frame(read_frame(rt, only_send=only_send))

    try:
        with Live(draw(), console=console, auto_refresh=False, transient=False) as live:
            while not stop.wait(period):
                live.update(draw(), refresh=True)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how it ends: the last drawing stays on the screen


def _header(now: datetime) -> Text:
    text = Text()
    text.append("distributor", style="bold")
    text.append(f"  {now:%Y-%m-%d %H:%M:%S} UTC by the database's clock", style="dim")
    text.append("  ·  Ctrl-C to stop", style="dim")
    return text


def _alerts(o: AdminOverview) -> RenderableType:
    if not o.alerts:
        return Text("alerts: none", style="green")
    lines = Text()
    for i, alert in enumerate(o.alerts):
        if i:
            lines.append("\n")
        lines.append(
            f"{alert.code.value.replace('_', ' ').upper()}: ", SEVERITY_STYLE[alert.severity]
        )
        lines.append(alert.message)
    return lines


def _vitals(o: AdminOverview) -> Text:
    text = Text()
    tick = o.last_tick
    if tick is None:
        text.append("scheduler: no heartbeat in the last hour", "bold red")
    else:
        style = "green" if tick.alive else "bold red"
        state = "ticking" if tick.alive else "SILENT"
        text.append(f"scheduler: {state}, last tick {duration_of(tick.seconds_ago)} ago", style)
        text.append(f" (clock {tick.clock_offset_ms / 1000:+.3f} s)", "dim")
    text.append("\nworkers: ")
    text.append(f"{o.workers_alive} alive", "green" if o.workers_alive else "dim")
    text.append(f", {len(o.workers)} seen in the last hour", "dim")
    text.append("\nrelay: ")
    if o.relay.is_resting(o.now) and o.relay.retry_after is not None:
        text.append(f"REFUSING, next try {o.relay.retry_after:%H:%M:%S} UTC", "bold red")
    elif o.relay.consecutive_outages:
        text.append(f"recovering after {o.relay.consecutive_outages} outage(s)", "yellow")
    else:
        text.append("answering", "green")
    if o.oldest_waiting is not None:
        waited = (o.now - o.oldest_waiting.due_since).total_seconds()
        text.append(
            f"\noldest waiting delivery: due {duration_of(waited)} ago "
            f"(delivery {o.oldest_waiting.delivery_id} of send {o.oldest_waiting.send_id})",
            "yellow",
        )
    return text


def _sends(o: AdminOverview) -> RenderableType:
    if not o.sends:
        return Text(
            "no send in flight, due within the hour, held, paused or just finished", style="dim"
        )
    return _SendsTable(o)


@dataclass(frozen=True, slots=True)
class _SendsTable:
    """The sends' table, with fewer columns in a terminal too narrow for them all; the
    headline gets what the figures leave, and the figures are never cut."""

    overview: AdminOverview

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        o = self.overview
        wide = options.max_width >= WIDE_TERMINAL
        bar = PROGRESS_WIDTH if wide else PROGRESS_WIDTH // 2
        rows = [
            {
                "send": str(s.send_id),
                "state": s.state.value,
                "done": f"{s.done:,}/{s.total:,} ({s.percent:.0f} %)"
                if wide
                else f"{s.percent:.0f} %",
                **({"sent": f"{s.sent:,}"} if wide else {}),
                "msg/s": f"{s.per_second:.1f}",
                "embargo": until(s.embargo_at, o.now),
            }
            for s in o.sends
        ]
        widths = {name: max(len(name), *(len(r[name]) for r in rows)) for name in rows[0]}
        # Each column is padded by a space on either side and parted by one more.
        taken = sum(widths.values()) + bar + 3 * (len(widths) + 2) + 1
        table = Table(title="Sends in flight", title_justify="left", box=box.SIMPLE_HEAD)
        for name in ("send", "release", "state", "progress", *list(widths)[2:]):
            if name == "release":
                width = max(options.max_width - taken, 8)
                table.add_column(name, width=width, no_wrap=True, overflow="ellipsis")
            elif name == "progress":
                table.add_column(name, width=bar, no_wrap=True)
            else:
                justify: JustifyMethod = "left" if name in ("state", "embargo") else "right"
                table.add_column(name, justify=justify, min_width=widths[name], no_wrap=True)
        for s, row in zip(o.sends, rows, strict=True):
            table.add_row(
                row["send"],
                s.headline,
                Text(row["state"], STATE_STYLE.get(row["state"], "")),
                ProgressBar(total=max(s.total, 1), completed=s.done, width=bar),
                *[row[name] for name in list(widths)[2:]],
            )
        yield table


def _workers(o: AdminOverview) -> RenderableType:
    if not o.workers:
        return Text("workers: none has sent anything in the last hour", style="dim")
    table = Table(title="Workers", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("process")
    table.add_column("doing")
    table.add_column("last seen", justify="right")
    table.add_column("clock", justify="right")
    for p in o.workers:
        style = "" if p.alive else "dim"
        table.add_row(
            p.name,
            p.doing,
            f"{duration_of(p.seconds_ago)} ago",
            f"{p.clock_offset_ms / 1000:+.3f} s",
            style=style,
        )
    return table


def _queues(queues: list[QueueDepth]) -> RenderableType:
    table = Table(title="Queues", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("queue")
    table.add_column("messages", justify="right")
    for q in queues:
        table.add_row(
            q.name + (f" ({q.note})" if q.note else ""),
            "unknown" if q.messages is None else f"{q.messages:,}",
        )
    return table


def duration_of(seconds: float) -> str:
    return duration(timedelta(seconds=seconds))
