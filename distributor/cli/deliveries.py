"""`distributor deliveries …`: one recipient's history, and putting deliveries back in line."""

from __future__ import annotations

from dataclasses import asdict

import typer

from distributor.actors import Role
from distributor.cli.actor import ACTOR_OPTION, ROLE_OPTION, actor_from
from distributor.cli.arguments import id_option
from distributor.cli.context import runtime
from distributor.cli.output import JSON_HELP, emit_json
from distributor.delivery_history import recipient_history
from distributor.engine.dbclock import read_database_time
from distributor.send_control import RETRYABLE, retry_deliveries
from distributor.states import DeliveryState

app = typer.Typer(help="Per-recipient delivery history and retries.", no_args_is_help=True)


@app.command()
def retry(
    send: int = id_option(
        "send", "--send", required=True, help="The send whose deliveries to retry."
    ),
    state: list[DeliveryState] = typer.Option(
        list(RETRYABLE), "--state", help="failed and/or bounced (default both)."
    ),
    actor_name: str | None = ACTOR_OPTION,
    role: Role = ROLE_OPTION,
) -> None:
    """Put failed or bounced deliveries back in line; suppressed addresses stay suppressed."""
    with runtime(actor_from(actor_name, role)) as rt, rt.sessions.begin() as session:
        count = retry_deliveries(
            session,
            send_id=send,
            states=state,
            now=read_database_time(session, rt.database_clock),
        )
    typer.echo(f"{count} deliveries of send {send} put back in line")


@app.command()
def show(
    email: str = typer.Argument(..., help="The recipient's address."),
    send: int | None = id_option("send", "--send", help="Only this send."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Every delivery to one recipient, with each step and the relay's replies."""
    with runtime() as rt, rt.sessions() as session:
        history = recipient_history(session, email=email, send_id=send)
    if as_json:
        emit_json([asdict(d) for d in history])
        return
    if not history:
        typer.echo("no deliveries to this address" + (f" in send {send}" if send else ""))
        return
    for d in history:
        reply = f"{d.smtp_reply}" if d.smtp_reply else (d.error or "")
        typer.echo(
            f"delivery {d.delivery_id} of send {d.send_id} ({d.headline}): {d.state.value}, "
            f"{d.attempts} attempt(s){': ' + reply if reply else ''}"
        )
        if d.next_attempt_at:
            typer.echo(f"  next attempt {d.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC")
        for e in d.events:
            detail = f"  {e.detail}" if e.detail else ""
            typer.echo(f"  {e.at:%Y-%m-%d %H:%M:%S.%f}"[:-3] + f" UTC  {e.state.value:<10}{detail}")
