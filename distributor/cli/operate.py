"""Long-running processes and monitoring: worker, scheduler, mail catcher, status, demo."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import typer

from distributor.cli.context import load_settings, runtime
from distributor.cli.status_view import health_lines, status_lines
from distributor.engine.dbclock import read_database_time
from distributor.engine.heartbeats import recent_heartbeats
from distributor.engine.relay_health import relay_state
from distributor.engine.scheduler_loop import SchedulerParts, run_scheduler
from distributor.errors import NotFoundError
from distributor.logs import configure_logging
from distributor.mailcatcher import start_catcher
from distributor.status import send_statuses


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
    concurrency: int = typer.Option(0, help="Worker processes; 0 takes the setting or CPUs."),
    loglevel: str = typer.Option("INFO"),
) -> None:
    """Run a Celery worker that sends batches."""
    settings = load_settings()  # before the Celery app reads them, for a readable error
    configure_logging(log_format=settings.log_format, level=loglevel)
    from workers.app import app as celery_app

    processes = concurrency or settings.effective_worker_concurrency
    argv = [
        "worker",
        f"--loglevel={loglevel}",
        f"--queues={settings.queue_name}",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    if processes:
        argv.append(f"--concurrency={processes}")
    celery_app.worker_main(argv)


def scheduler(
    interval: float = typer.Option(0.0, help="Seconds between ticks; 0 takes the setting."),
) -> None:
    """Tick: arm sends near their embargo, hand batches to workers, take over dead workers'
    batches, close finished sends. Survives database and broker outages."""
    settings = load_settings()  # before the Celery app reads them, for a readable error
    configure_logging(log_format=settings.log_format)
    from workers.app import app as celery_app
    from workers.dispatch import CeleryDispatcher

    stop = _stop_event()
    with runtime() as rt:
        parts = SchedulerParts(
            sessions=rt.sessions,
            dispatcher=CeleryDispatcher(celery_app),
            database_clock=rt.database_clock,
            local_clock=rt.clock,
            policy=rt.scheduler_policy,
            period=interval or rt.settings.scheduler_interval_seconds,
        )
        run_scheduler(parts, stop=stop)


def mailcatcher(
    port: int = typer.Option(2525),
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
    send_id: int | None = typer.Argument(None, min=1),
) -> None:
    """Deliveries by state for every send, or for one, with the health of the processes."""
    with runtime() as rt, rt.sessions() as session:
        statuses = send_statuses(session, send_id)
        now = read_database_time(session, rt.database_clock)
        processes = recent_heartbeats(session, now=now)
        relay = relay_state(session)
    if not statuses and send_id is not None:
        raise NotFoundError(f"no send with id {send_id}; see `distributor status`")
    for line in health_lines(processes, relay, now=now):
        typer.echo(line)
    if not statuses:
        typer.echo("no sends yet")
    for s in statuses:
        typer.echo("\n".join(status_lines(s, now=now, detailed=send_id is not None)))


def demo(
    contacts: int = typer.Option(500, min=1),
    lead: float = typer.Option(15.0, min=3, help="Seconds from now to the embargo."),
    workers: int = typer.Option(2, min=1, help="Worker processes."),
) -> None:
    """Run the whole flow on this machine with embedded defaults, then stop everything."""
    from distributor.demo import run_demo

    ok = run_demo(contacts=contacts, lead_seconds=lead, workers=workers, echo=typer.echo)
    raise typer.Exit(0 if ok else 1)
