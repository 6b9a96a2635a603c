"""`contacts breach` and `contacts clear-breach`: embargo breaches on the record."""

from __future__ import annotations

from datetime import timedelta

import typer

from distributor.actors import Role
from distributor.breaches import clear_breaker, record_breach
from distributor.cli.actor import ACTOR_OPTION, ROLE_OPTION, actor_from
from distributor.cli.arguments import id_option
from distributor.cli.context import runtime
from distributor.embargo_changes import lift_embargo


def breach(
    email: str,
    release_id: int = id_option(
        "release", "--release", required=True, help="The release whose embargo broke."
    ),
    outlet: bool = typer.Option(False, "--outlet", help="Mark the journalist's outlet too."),
    note: str = typer.Option("", help="What happened, for the record."),
    lift_now: bool = typer.Option(
        False, "--lift-now", help="The breach made it public: lift the embargo for everyone now."
    ),
    actor_name: str | None = ACTOR_OPTION,
    role: Role = ROLE_OPTION,
) -> None:
    """Record an embargo breach: the journalist (and with --outlet, the outlet) gets no
    embargoed copies again until an admin clears the flag."""
    actor = actor_from(actor_name, role)
    with runtime(actor) as rt, rt.sessions.begin() as session:
        now = rt.clock.now()
        recorded = record_breach(
            session,
            email=email,
            release_id=release_id,
            actor=actor,
            now=now,
            outlet_too=outlet,
            note=note,
        )
        lifted = (
            lift_embargo(
                session,
                release_id=release_id,
                now=now,
                arm_lead=timedelta(seconds=rt.settings.arm_lead_seconds),
            )
            if lift_now
            else None
        )
    marked = f" and {recorded.outlet}" if recorded.outlet else ""
    typer.echo(
        f"breach {recorded.record_id} recorded: {recorded.email}{marked} marked an embargo "
        "breaker; no embargoed copy reaches them until an admin clears it"
    )
    if lifted is not None:
        typer.echo(f"release {release_id}: embargo lifted now for everyone")


def clear_breach(
    email: str = typer.Argument("", help="The journalist's address (or give --outlet)."),
    outlet: str = typer.Option("", help="Clear the outlet's flag instead."),
    note: str = typer.Option("", help="Why, for the record."),
    actor_name: str | None = ACTOR_OPTION,
    role: Role = ROLE_OPTION,
) -> None:
    """Clear an embargo breaker flag (admins only); the clearing is recorded."""
    actor = actor_from(actor_name, role)
    with runtime(actor) as rt, rt.sessions.begin() as session:
        record = clear_breaker(
            session,
            actor=actor,
            now=rt.clock.now(),
            email=email or None,
            outlet_name=outlet or None,
            note=note,
        )
        record_id = record.id
    typer.echo(f"breaker flag of {email or outlet} cleared (record {record_id})")


def register(app: typer.Typer) -> None:
    app.command("breach")(breach)
    app.command("clear-breach")(clear_breach)
