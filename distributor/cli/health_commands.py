"""`distributor health scheduler|worker`: whether that kind of process really works.

Exit status 0 with one line saying why, or 1 with one line saying what is wrong: made for
docker-compose health checks, where "the process exists" proves little. A scheduler is
healthy when its heartbeat in the database is recent; a worker too (its main process beats
every third of a lease, sending or idle, and its pool's processes while they send), or else
when it answers through the broker.
"""

from __future__ import annotations

import socket
from datetime import timedelta
from typing import NoReturn

import typer

from distributor.actors import SYSTEM_ACTOR
from distributor.cli.arguments import seconds_option
from distributor.cli.context import runtime
from distributor.engine.dbclock import read_database_time
from distributor.monitoring.health_broker import BrokerUnreachableError, installation_queues
from distributor.monitoring.health_checks import (
    SCHEDULER,
    WORKER,
    Liveness,
    liveness,
    scheduler_window,
    worker_window,
)
from distributor.monitoring.health_ping import PING_TIMEOUT_SECONDS, answering_workers
from distributor.runtime import Runtime

app = typer.Typer(
    help="Check that the scheduler or a worker really works (exit 0), or say what is wrong "
    "(exit 1): for health checks.",
    no_args_is_help=True,
)

MAX_AGE_LIMIT = 3600.0
THIS_HOST_HELP = "Only the processes of this machine (in a container's own health check)."


def register(parent: typer.Typer) -> None:
    """Add this module's commands to the app."""
    parent.add_typer(app, name="health")


def _unhealthy(reason: str) -> NoReturn:
    typer.secho(f"unhealthy: {reason}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def _heartbeats(
    rt: Runtime, *, kind: str, max_age: float, default: timedelta, this_host: bool
) -> Liveness:
    within = timedelta(seconds=max_age) if max_age else default
    host = socket.gethostname() if this_host else None
    with rt.sessions() as session:
        now = read_database_time(session, rt.database_clock)
        return liveness(session, kind=kind, now=now, within=within, host=host)


@app.command()
def scheduler(
    max_age: float = seconds_option(
        0.0,
        "--max-age",
        minimum=0,
        maximum=MAX_AGE_LIMIT,
        help="Oldest heartbeat that counts; 0: 10 s, or three ticks when they are slower.",
    ),
    this_host: bool = typer.Option(False, "--this-host", help=THIS_HOST_HELP),
) -> None:
    """Healthy when a scheduler ticked recently, by the database's clock."""
    with runtime(SYSTEM_ACTOR) as rt:
        seen = _heartbeats(
            rt,
            kind=SCHEDULER,
            max_age=max_age,
            default=scheduler_window(rt.settings),
            this_host=this_host,
        )
    latest = seen.latest
    if not seen.alive or latest is None:
        _unhealthy(f"{seen.describe_silence()}; is `distributor scheduler` running?")
    typer.echo(f"healthy: {latest.name} ticked {seen.age_seconds:.1f} s ago")


@app.command()
def worker(
    max_age: float = seconds_option(
        0.0,
        "--max-age",
        minimum=0,
        maximum=MAX_AGE_LIMIT,
        help="Oldest heartbeat that counts; 0: two leases (DISTRIBUTOR_LEASE_SECONDS).",
    ),
    this_host: bool = typer.Option(False, "--this-host", help=THIS_HOST_HELP),
    ping: bool = typer.Option(
        True,
        "--ping/--no-ping",
        help="Without a recent heartbeat, ask the workers through the broker which queues "
        "they consume (not on the embedded broker).",
    ),
    ping_timeout: float = seconds_option(
        PING_TIMEOUT_SECONDS,
        "--ping-timeout",
        minimum=0.1,
        maximum=30,
        help="How long to wait for the workers' answers.",
    ),
) -> None:
    """Healthy when a worker left a heartbeat recently, or answers through the broker."""
    with runtime(SYSTEM_ACTOR) as rt:
        seen = _heartbeats(
            rt,
            kind=WORKER,
            max_age=max_age,
            default=worker_window(rt.settings),
            this_host=this_host,
        )
        settings = rt.settings
    youngest = seen.latest
    if seen.alive and youngest is not None:
        typer.echo(f"healthy: {youngest.name} left a heartbeat {seen.age_seconds:.1f} s ago")
        return
    queues = ", ".join(installation_queues(settings))
    reason = seen.describe_silence()
    if ping:
        host = socket.gethostname() if this_host else None
        try:
            answered = answering_workers(settings, timeout=ping_timeout, host=host)
        except BrokerUnreachableError as exc:
            _unhealthy(f"{reason}, and the broker could not be asked: {exc}")
        if answered:
            typer.echo(f"healthy: {', '.join(answered)} consume(s) {queues}")
            return
        if answered is None:
            reason += ", and the embedded broker cannot ask idle workers"
        else:
            where = " on this machine" if this_host else ""
            reason += f", and no worker{where} consuming {queues} answered in {ping_timeout:g} s"
    _unhealthy(f"{reason}; is `distributor worker` running?")
