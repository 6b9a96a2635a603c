"""Long-running processes and monitoring: worker, scheduler, mail catcher, status, demo."""

from __future__ import annotations

import signal
import threading
from dataclasses import asdict
from pathlib import Path
from types import FrameType

import typer

from distributor.actors import SYSTEM_ACTOR
from distributor.cli.arguments import count_option, id_argument, seconds_option
from distributor.cli.context import load_settings, runtime
from distributor.cli.output import JSON_HELP, emit_json
from distributor.cli.status_view import alerts_line, health_lines, status_lines
from distributor.engine.dbclock import read_database_time
from distributor.engine.dispatch import notice_queue_name
from distributor.engine.heartbeats import recent_heartbeats
from distributor.engine.pacing_status import pacing_status
from distributor.engine.relay_health import relay_state
from distributor.engine.scheduler_loop import SchedulerParts, run_scheduler
from distributor.errors import DistributorError, NotFoundError
from distributor.logs import configure_logging
from distributor.mailcatcher import start_catcher
from distributor.monitoring.alerts import evaluate_alerts, thresholds_from
from distributor.status import send_statuses

# Upper bounds of what the commands are asked to start: beyond them is a typing mistake.
MAX_WORKER_PROCESSES = 256
MAX_TICK_SECONDS = 60
MAX_DEMO_CONTACTS = 100_000
MAX_DEMO_LEAD_SECONDS = 3600


def register(app: typer.Typer) -> None:
    app.command()(worker)
    app.command()(scheduler)
    app.command()(mailcatcher)
    app.command()(status)
    app.command()(demo)


def _stop_event() -> threading.Event:
    stop = threading.Event()

    def _handle(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _handle)
    signal.signal(signal.SIGINT, _handle)
    return stop


def worker(
    concurrency: int = count_option(
        0,
        maximum=MAX_WORKER_PROCESSES,
        help="Worker processes; 0 takes the setting or CPUs.",
    ),
    loglevel: str = typer.Option("INFO"),
    notices_only: bool = typer.Option(
        False,
        "--notices-only",
        help="Send only notices (embargo lifted, moved, withdrawn), so that a bulk send can "
        "never hold them up; run one such worker beside the others.",
    ),
) -> None:
    """Run a Celery worker that sends batches (and notices, unless another worker has them)."""
    settings = load_settings()  # before the Celery app reads them, for a readable error
    try:
        configure_logging(log_format=settings.log_format, level=loglevel)
    except ValueError as exc:
        raise DistributorError(f"--loglevel: {exc}") from None
    from workers.app import app as celery_app

    processes = concurrency or settings.effective_worker_concurrency
    argv = [
        "worker",
        f"--loglevel={loglevel}",
        "--queues="
        + (
            notice_queue_name(settings.queue_name)
            if notices_only
            else f"{notice_queue_name(settings.queue_name)},{settings.queue_name}"
        ),
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    if processes:
        argv.append(f"--concurrency={processes}")
    celery_app.worker_main(argv)


def scheduler(
    interval: float = seconds_option(
        0.0,
        minimum=0,
        maximum=MAX_TICK_SECONDS,
        help="Seconds between ticks; 0 takes the setting.",
    ),
) -> None:
    """Tick: arm sends near their embargo, hand batches to workers, take over dead workers'
    batches, close finished sends. Survives database and broker outages."""
    settings = load_settings()  # before the Celery app reads them, for a readable error
    configure_logging(log_format=settings.log_format)
    from workers.app import app as celery_app
    from workers.dispatch import CeleryDispatcher

    stop = _stop_event()
    with runtime(SYSTEM_ACTOR) as rt:
        parts = SchedulerParts(
            sessions=rt.sessions,
            dispatcher=CeleryDispatcher(
                celery_app, notice_queue=notice_queue_name(settings.queue_name)
            ),
            database_clock=rt.database_clock,
            local_clock=rt.clock,
            policy=rt.scheduler_policy,
            period=interval or rt.settings.scheduler_interval_seconds,
        )
        run_scheduler(parts, stop=stop)


def mailcatcher(
    port: int = count_option(2525, minimum=1, maximum=65535),
    host: str = typer.Option("127.0.0.1"),
    outbox: Path | None = typer.Option(None, help="Folder for .eml files."),
) -> None:
    """Run the local SMTP catcher that writes every message to an outbox folder."""
    folder = outbox or load_settings().effective_outbox_dir
    stop = _stop_event()
    controller = start_catcher(folder, host=host, port=port)
    typer.echo(f"catching mail on {host}:{port}, writing to {folder}", err=True)
    try:
        stop.wait()
    finally:
        controller.stop()


def status(
    send_id: int | None = id_argument("send", optional=True, help="Only this send, in detail."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    watch: bool = typer.Option(
        False,
        "--watch",
        help="A live view, drawn every second until Ctrl-C: alerts, sends in flight with "
        "their progress, workers and queues.",
    ),
) -> None:
    """Deliveries by state for every send, or for one, with the health of the processes."""
    if watch:
        if as_json:
            raise DistributorError("--watch draws a live view for people; leave out --json")
        from distributor.cli.status_watch import watch_status

        with runtime() as rt:
            watch_status(rt, only_send=send_id)
        return
    with runtime() as rt, rt.sessions() as session:
        statuses = send_statuses(session, send_id, with_phases=send_id is not None)
        now = read_database_time(session, rt.database_clock)
        processes = recent_heartbeats(session, now=now)
        relay = relay_state(session)
        alerts = evaluate_alerts(session, now=now, thresholds=thresholds_from(rt.settings))
        store = rt.pacing_store()
        try:
            pacing = pacing_status(session, limits=rt.pacing_limits, store=store, now=now)
        finally:
            if store is not None:
                store.close()
    if send_id is not None and not any(s.send_id == send_id for s in statuses):
        raise NotFoundError(f"no send with id {send_id}; see `distributor status`")
    if as_json:
        emit_json(
            {
                "now": now,
                "processes": processes,
                "relay": {**asdict(relay), "resting": relay.is_resting(now)},
                "limits": asdict(pacing),
                "sends": [
                    {
                        **asdict(s),
                        "total": s.total,
                        "time_to_lift_seconds": (s.embargo_at - now).total_seconds(),
                    }
                    for s in statuses
                ],
            }
        )
        return
    for line in health_lines(processes, relay, now=now, pacing=pacing):
        typer.echo(line)
    typer.echo(alerts_line(alerts))
    if not statuses:
        typer.echo("no sends yet")
    for s in statuses:
        typer.echo("\n".join(status_lines(s, now=now, detailed=s.send_id == send_id)))


def demo(
    contacts: int = count_option(
        500, minimum=1, maximum=MAX_DEMO_CONTACTS, help="Journalists to make up."
    ),
    lead: float = seconds_option(
        15.0, minimum=3, maximum=MAX_DEMO_LEAD_SECONDS, help="Seconds from now to the embargo."
    ),
    workers: int = count_option(
        2, minimum=1, maximum=MAX_WORKER_PROCESSES, help="Worker processes."
    ),
) -> None:
    """Run the whole flow on this machine with embedded defaults, then stop everything."""
    from distributor.demo import run_demo

    ok = run_demo(contacts=contacts, lead_seconds=lead, workers=workers, echo=typer.echo)
    raise typer.Exit(0 if ok else 1)
