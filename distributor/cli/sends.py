"""`distributor send …`: pause and resume a send in flight."""

from __future__ import annotations

from datetime import timedelta

import typer

from distributor.actors import Role
from distributor.cli.actor import ACTOR_OPTION, ROLE_OPTION, actor_from
from distributor.cli.arguments import id_argument
from distributor.cli.context import runtime
from distributor.engine.dbclock import read_database_time
from distributor.send_control import pause_send, resume_send

app = typer.Typer(help="Pause or resume a send in flight.", no_args_is_help=True)


@app.command()
def pause(
    send_id: int = id_argument("send"),
    actor_name: str | None = ACTOR_OPTION,
    role: Role = ROLE_OPTION,
) -> None:
    """Stop further claims; workers finish the message in hand and claim nothing more."""
    with runtime(actor_from(actor_name, role)) as rt, rt.sessions.begin() as session:
        pause_send(session, send_id=send_id, now=read_database_time(session, rt.database_clock))
    typer.echo(f"send {send_id} paused; `distributor send resume {send_id}` carries on")


@app.command()
def resume(
    send_id: int = id_argument("send"),
    actor_name: str | None = ACTOR_OPTION,
    role: Role = ROLE_OPTION,
) -> None:
    """Carry on with a paused send, or send a held one however late it is."""
    with runtime(actor_from(actor_name, role)) as rt, rt.sessions.begin() as session:
        state = resume_send(
            session,
            send_id=send_id,
            now=read_database_time(session, rt.database_clock),
            arm_lead=timedelta(seconds=rt.settings.arm_lead_seconds),
        )
    typer.echo(f"send {send_id} resumed ({state.value})")
