"""Long-running processes and monitoring: worker, scheduler, mail catcher, status, demo."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import typer

from distributor.cli.context import load_settings, runtime
from distributor.mailcatcher import start_catcher
from distributor.scheduler import tick
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
    """Tick: arm sends near their embargo, hand batches to workers, close finished sends."""
    load_settings()  # before the Celery app reads them, for a readable error
    from workers.app import app as celery_app
    from workers.dispatch import CeleryDispatcher

    stop = _stop_event()
    dispatcher = CeleryDispatcher(celery_app)
    with runtime() as rt:
        period = interval or rt.settings.scheduler_interval_seconds
        typer.echo(f"scheduler ticking every {period:g} s", err=True)
        while not stop.is_set():
            report = tick(rt.sessions, dispatcher, now=rt.clock.now(), policy=rt.scheduler_policy)
            for send_id in report.armed:
                typer.echo(f"armed send {send_id}", err=True)
            if report.dispatched:
                typer.echo(f"dispatched {len(report.dispatched)} batch(es)", err=True)
            for send_id in report.completed:
                typer.echo(f"completed send {send_id}", err=True)
            stop.wait(period)


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


def status(send_id: int | None = typer.Argument(None)) -> None:
    """Deliveries by state for every send, or for one."""
    with runtime() as rt, rt.sessions() as session:
        statuses = send_statuses(session, send_id)
    if not statuses:
        typer.echo("no sends yet" if send_id is None else f"no send with id {send_id}")
        return
    for s in statuses:
        counts = ", ".join(f"{state.value} {n}" for state, n in sorted(s.counts.items()))
        typer.echo(
            f"send {s.send_id} (release {s.release_id}, {s.state.value}) embargo "
            f"{s.embargo_at:%Y-%m-%d %H:%M:%S} UTC: {counts or 'no deliveries'}"
        )


def demo(
    contacts: int = typer.Option(500, min=1),
    lead: float = typer.Option(15.0, min=3, help="Seconds from now to the embargo."),
    workers: int = typer.Option(2, min=1, help="Worker processes."),
) -> None:
    """Run the whole flow on this machine with embedded defaults, then stop everything."""
    from distributor.demo import run_demo

    ok = run_demo(contacts=contacts, lead_seconds=lead, workers=workers, echo=typer.echo)
    raise typer.Exit(0 if ok else 1)
