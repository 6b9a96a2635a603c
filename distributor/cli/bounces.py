"""`distributor bounces`: receive, process and list what came back to the return path."""

from __future__ import annotations

import math
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict
from types import FrameType
from typing import Any

import typer

from distributor.actors import SYSTEM_ACTOR
from distributor.bounces.listing import list_bounces
from distributor.bounces.processing import BounceProcessor, Processed
from distributor.bounces.receiver import start_receiver
from distributor.bounces.reputation import ReputationLimits
from distributor.bounces.sources import read_messages
from distributor.cli.arguments import count_option, id_option
from distributor.cli.context import load_settings, runtime
from distributor.cli.output import JSON_HELP, emit_json
from distributor.logs import configure_logging
from distributor.runtime import Runtime
from distributor.settings import Settings

DEFAULT_PORT = 2526  # beside the mail catcher's 2525; an MX listens on 25
MAX_LISTED = 100_000

app = typer.Typer(
    help="Bounces, complaints and automatic replies that come back to the return path.",
    no_args_is_help=True,
)


def _rate_parser(value: str | float) -> float:
    text = str(value).strip()
    try:
        rate = float(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a rate: give a fraction, 0.05 for 5 %") from None
    if not math.isfinite(rate) or not 0 < rate <= 1:
        raise typer.BadParameter(f"{text} is out of range: give a fraction above 0 up to 1")
    return rate


def _rate_option(default: float | None, name: str, what: str) -> Any:
    return typer.Option(
        default,
        name,
        parser=_rate_parser,
        metavar="FRACTION",
        help=f"Pause a send when more than this fraction of its delivered messages {what} "
        "(default: the setting).",
    )


BOUNCE_RATE_OPTION = _rate_option(None, "--bounce-rate-limit", "bounced hard")
COMPLAINT_RATE_OPTION = _rate_option(None, "--complaint-rate-limit", "were reported as spam")
MINIMUM_DELIVERED_OPTION = count_option(
    None,
    "--minimum-delivered",
    minimum=1,
    maximum=10_000_000,
    help="Judge a send's rates only once this many of its messages were delivered "
    "(default: the setting).",
)


def _limits(
    settings: Settings,
    bounce_rate: float | None,
    complaint_rate: float | None,
    minimum_delivered: int | None,
) -> ReputationLimits:
    """The options given, else the settings'."""
    return ReputationLimits(
        bounce_rate if bounce_rate is not None else settings.bounce_rate_limit,
        complaint_rate if complaint_rate is not None else settings.complaint_rate_limit,
        minimum_delivered
        if minimum_delivered is not None
        else settings.reputation_minimum_delivered,
    )


def _processor(rt: Runtime, limits: ReputationLimits) -> BounceProcessor:
    return BounceProcessor(
        sessions=rt.sessions,
        verp=rt.bounces,
        message_id_domain=rt.settings.message_id_domain,
        clock=rt.clock,
        limits=limits,
    )


def _stop_event() -> threading.Event:
    stop = threading.Event()

    def _handle(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _handle)
    signal.signal(signal.SIGINT, _handle)
    return stop


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on; 0.0.0.0 for an MX."),
    port: int = count_option(DEFAULT_PORT, "--port", minimum=1, maximum=65535),
    bounce_rate_limit: float | None = BOUNCE_RATE_OPTION,
    complaint_rate_limit: float | None = COMPLAINT_RATE_OPTION,
    minimum_delivered: int | None = MINIMUM_DELIVERED_OPTION,
) -> None:
    """Receive bounces over SMTP, as the bounce domain's MX (or behind it)."""
    settings = load_settings()
    configure_logging(log_format=settings.log_format)
    limits = _limits(load_settings(), bounce_rate_limit, complaint_rate_limit, minimum_delivered)
    stop = _stop_event()
    with runtime(SYSTEM_ACTOR) as rt:
        domain = settings.effective_bounce_domain
        controller = start_receiver(
            _processor(rt, limits), rt.bounces, host=host, port=port, server_name=domain
        )
        typer.echo(f"receiving bounces for {domain} on {host}:{port}", err=True)
        try:
            stop.wait()
        finally:
            controller.stop()


@app.command()
def process(
    path: str = typer.Argument(
        ..., metavar="PATH|-", help="An .eml file, an mbox, a Maildir, or - for standard input."
    ),
    bounce_rate_limit: float | None = BOUNCE_RATE_OPTION,
    complaint_rate_limit: float | None = COMPLAINT_RATE_OPTION,
    minimum_delivered: int | None = MINIMUM_DELIVERED_OPTION,
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Process bounces from a mailbox that a relay or provider fills; safe to run again on
    the same messages (each is applied once)."""
    limits = _limits(load_settings(), bounce_rate_limit, complaint_rate_limit, minimum_delivered)
    results: list[tuple[str, Processed]] = []
    show: Callable[[str, Processed], None] = (lambda *_: None) if as_json else _echo_processed
    with runtime(SYSTEM_ACTOR) as rt:
        processor = _processor(rt, limits)
        for message in read_messages(path, stdin=_binary_stdin()):
            processed = processor.process(message.data, source=f"file {message.label}")
            results.append((message.label, processed))
            show(message.label, processed)
    if as_json:
        emit_json([{"source": label, **asdict(p), "matched": p.matched} for label, p in results])
        return
    matched = sum(1 for _, p in results if p.matched and not p.duplicate)
    again = sum(1 for _, p in results if p.duplicate)
    typer.echo(
        f"{len(results)} message(s): {matched} matched, "
        f"{len(results) - matched - again} kept for an admin, {again} processed before"
    )


def _binary_stdin() -> Any:
    if sys.stdin is None:  # started without one
        return None
    # Standard input replaced by a text stream (as under test) has no binary buffer.
    return getattr(sys.stdin, "buffer", None) or _TextAsBytes(sys.stdin)


class _TextAsBytes:
    def __init__(self, text: Any) -> None:
        self._text = text

    def read(self, size: int = -1) -> bytes:
        return str(self._text.read(size)).encode("utf-8", "surrogateescape")


def _echo_processed(label: str, p: Processed) -> None:
    where = f"delivery {p.delivery_id} of send {p.send_id}" if p.matched else "not matched"
    typer.echo(f"{label}: {p.kind.value} ({where}): {p.outcome}")
    if p.paused:
        typer.echo(f"  send {p.send_id} {p.paused}")


@app.command(name="list")
def list_command(
    send: int | None = id_option("send", "--send", help="Only what came back from this send."),
    unmatched: bool = typer.Option(False, "--unmatched", help="Only what could not be matched."),
    limit: int = count_option(100, "--limit", minimum=1, maximum=MAX_LISTED),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """What came back, matched or not, newest first."""
    with runtime() as rt, rt.sessions() as session:
        entries = list_bounces(session, send_id=send, unmatched_only=unmatched, limit=limit)
    if as_json:
        emit_json([{**asdict(e), "matched": e.matched} for e in entries])
        return
    if not entries:
        typer.echo("nothing came back" + (f" from send {send}" if send else ""))
        return
    for e in entries:
        where = f"send {e.send_id} delivery {e.delivery_id}" if e.matched else "unmatched"
        who = f"  {e.email}" if e.email else ""
        status = f"  {e.status}" if e.status else ""
        typer.echo(
            f"{e.received_at:%Y-%m-%d %H:%M}  {e.kind.value:<10}  {where}{who}{status}  {e.outcome}"
        )
