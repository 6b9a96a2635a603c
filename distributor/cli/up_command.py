"""`distributor up`: everything one machine needs, started together and stopped together.

The web app, the scheduler, the workers (one more for notices, which bulk sends must not
hold up) and, when mail goes to a relay on this machine, the local mail catcher: each is
its own `distributor` process, in a session of its own, its output in DATA_DIR/logs. Ctrl-C
(SIGINT) or SIGTERM stops them all and exits 0; if one of them dies, the others are stopped
and the command fails naming it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

import typer
from sqlalchemy import func, select

from distributor.cli.arguments import count_option
from distributor.cli.context import load_settings
from distributor.cli.operate import MAX_WORKER_PROCESSES
from distributor.errors import DistributorError
from distributor.migrate import database_heads, upgrade
from distributor.models import User
from distributor.processes import ManagedProcess, start_process
from distributor.runtime import Runtime
from distributor.settings import Environment, Settings
from distributor.transport.smtp import relay_address_from_url

MAX_PORT = 65_535
# Celery workers import the whole app and open their pools: a minute on a slow machine.
READY_WITHIN_SECONDS = 90.0
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
ANY_ADDRESS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - recognised, not bound
LOG_TAIL_CHARS = 2000


ReadinessOf = Callable[[ManagedProcess], Callable[[], bool]]


@dataclass
class Child:
    """One process `up` runs, and how to tell that it is ready."""

    process: ManagedProcess
    is_ready: Callable[[], bool]

    @property
    def name(self) -> str:
        return self.process.name

    def exit_status(self) -> int | None:
        return self.process.process.poll()


def _log_says(process: ManagedProcess, marker: str) -> Callable[[], bool]:
    return lambda: marker in process.log_text()


def _answers(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - our own URL
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    return check


def _stop_requested() -> threading.Event:
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    return stop


def _url_host(host: str) -> str:
    """The host to put in an address for this machine's own browser."""
    shown = "127.0.0.1" if host in ANY_ADDRESS else host
    return f"[{shown}]" if ":" in shown else shown


def _check_port_free(host: str, port: int, what: str, option: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise DistributorError(
                f"cannot start the {what} on {host}:{port}: {exc.strerror or exc}; stop what "
                f"uses that port (another `distributor up`?), or choose another with {option}"
            ) from None


def _catcher_address(settings: Settings) -> tuple[str, int] | None:
    """Where the local catcher must listen: the relay's address, when it is on this machine."""
    relay = relay_address_from_url(settings.smtp_url)
    if relay.host not in LOOPBACK_HOSTS or relay.implicit_tls or relay.starttls:
        return None
    return relay.host, relay.port


def _migrate(settings: Settings) -> str:
    url = settings.effective_database_url
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    before = _revisions(url)
    upgrade(url)
    after = _revisions(url)
    if before == after:
        return "the database schema is up to date"
    return f"the database schema was migrated to {', '.join(sorted(after))}"


def _revisions(url: str) -> frozenset[str]:
    from distributor.database import make_engine

    engine = make_engine(url)
    try:
        return database_heads(engine)
    finally:
        engine.dispose()


def _has_accounts(settings: Settings) -> bool:
    runtime = Runtime(settings)
    try:
        with runtime.sessions() as session:
            return bool(session.scalar(select(func.count()).select_from(User)))
    finally:
        runtime.close()


def _start_children(
    settings: Settings, *, host: str, port: int, workers: int, catcher: tuple[str, int] | None
) -> list[Child]:
    log_dir = settings.data_dir / "logs"
    children: list[Child] = []

    def start(name: str, args: list[str], ready: ReadinessOf) -> None:
        process = start_process(name, args, settings=settings, log_dir=log_dir)
        children.append(Child(process, ready(process)))

    try:
        if catcher is not None:
            catcher_host, catcher_port = catcher
            start(
                "mailcatcher",
                ["mailcatcher", f"--host={catcher_host}", f"--port={catcher_port}"],
                lambda p: _log_says(p, "catching mail on"),
            )
        start("scheduler", ["scheduler"], lambda p: _log_says(p, "scheduler ticking"))
        start("worker", ["worker", f"--concurrency={workers}"], lambda p: _log_says(p, " ready."))
        start(
            "notices-worker",
            ["worker", "--concurrency=1", "--notices-only"],
            lambda p: _log_says(p, " ready."),
        )
        health = f"http://{_url_host(host)}:{port}/healthz"
        start("web", ["web", f"--host={host}", f"--port={port}"], lambda _: _answers(health))
    except BaseException:
        _stop_all(children)
        raise
    return children


def _stop_all(children: list[Child]) -> None:
    """Ask every child to stop at once, then wait for each; whatever a child left behind in
    its session (a worker's pool processes) goes with it."""
    for child in children:
        if child.exit_status() is None:
            child.process.process.send_signal(signal.SIGTERM)
    for child in reversed(children):
        child.process.stop()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.process.pid, signal.SIGKILL)


def _died(children: list[Child]) -> Child | None:
    return next((c for c in children if c.exit_status() is not None), None)


def _death_notice(child: Child) -> str:
    status = child.exit_status()
    how = (
        f"was killed by signal {-status}"
        if status is not None and status < 0
        else (f"exited with status {status}")
    )
    tail = child.process.log_text()[-LOG_TAIL_CHARS:].rstrip()
    shown = f"; the end of its log ({child.process.log_path}):\n{tail}" if tail else ""
    return f"the {child.name} process (pid {child.process.pid}) {how}{shown}"


def _wait_until_ready(children: list[Child], stop: threading.Event) -> None:
    waiting = list(children)
    deadline = time.monotonic() + READY_WITHIN_SECONDS
    while waiting and not stop.is_set():
        dead = _died(children)
        if dead is not None:
            raise DistributorError(_death_notice(dead) + "\nstopped the others")
        waiting = [child for child in waiting if not child.is_ready()]
        if waiting and time.monotonic() > deadline:
            names = ", ".join(child.name for child in waiting)
            raise DistributorError(
                f"{names} did not start within {READY_WITHIN_SECONDS:g} s; see their logs in "
                f"{waiting[0].process.log_path.parent}/; stopped everything"
            )
        stop.wait(0.1)


def _announce(
    settings: Settings, children: list[Child], *, base_url: str, catcher: tuple[str, int] | None
) -> None:
    echo = typer.echo
    echo("")
    echo("distributor is up:")
    echo(f"  dashboard   {base_url}/")
    if not _has_accounts(settings):
        echo("              no account yet: create one with")
        echo("              distributor users create you@example.org --role admin")
    echo(f"  newsroom    {base_url}/news")
    if catcher is not None:
        echo(
            f"  mail        caught on {catcher[0]}:{catcher[1]}; every message is a .eml file "
            f"in {settings.effective_outbox_dir}/"
        )
    else:
        echo("  mail        goes to the relay of DISTRIBUTOR_SMTP_URL (no local catcher)")
    echo(f"  logs        {settings.data_dir / 'logs'}/")
    for child in children:
        echo(f"  {child.name:<15} pid {child.process.pid}")
    echo("Press Ctrl-C to stop them all.")


def up(
    host: str = typer.Option("127.0.0.1", help="Address the web app listens on."),
    port: int = count_option(
        8000, "--port", minimum=1, maximum=MAX_PORT, help="Port of the web app."
    ),
    workers: int = count_option(
        2, "--workers", minimum=1, maximum=MAX_WORKER_PROCESSES, help="Worker processes."
    ),
    mailcatcher: bool = typer.Option(
        True,
        "--mailcatcher/--no-mailcatcher",
        help="Run the local mail catcher when DISTRIBUTOR_SMTP_URL points at this machine.",
    ),
) -> None:
    """Run the web app, the scheduler, the workers and the local mail catcher together,
    until Ctrl-C stops them all."""
    settings = load_settings()
    catcher = _catcher_address(settings) if mailcatcher else None
    _check_port_free(host, port, "web app", "--port")
    if catcher is not None:
        _check_port_free(catcher[0], catcher[1], "mail catcher", "DISTRIBUTOR_SMTP_URL")
    base_url = f"http://{_url_host(host)}:{port}"
    if not settings.public_base_url and settings.environment is Environment.DEVELOPMENT:
        # Links in the messages sent meanwhile (unsubscribe) lead to this web app.
        settings = settings.model_copy(update={"public_base_url": base_url})
    typer.echo(_migrate(settings))
    stop = _stop_requested()
    children = _start_children(settings, host=host, port=port, workers=workers, catcher=catcher)
    try:
        _wait_until_ready(children, stop)
        if not stop.is_set():
            _announce(settings, children, base_url=base_url, catcher=catcher)
        while not stop.wait(0.2):
            dead = _died(children)
            if dead is not None:
                raise DistributorError(_death_notice(dead) + "\nstopped the others")
    finally:
        typer.echo("stopping ...")
        _stop_all(children)
    typer.echo("stopped")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command()(up)
