"""`distributor suppressions`: addresses never to be mailed again."""

from __future__ import annotations

import typer

from distributor.actors import Role
from distributor.cli.actor import ACTOR_OPTION, ROLE_OPTION, actor_from
from distributor.cli.context import runtime
from distributor.cli.output import JSON_HELP, emit_json
from distributor.suppression import (
    SuppressionReason,
    is_suppressed,
    lift_suppression,
    list_suppressions,
    suppress,
)

app = typer.Typer(
    help="The suppression list: anyone may add an address, only an admin may remove one.",
    no_args_is_help=True,
)


@app.command()
def add(
    email: str,
    reason: SuppressionReason = typer.Option(SuppressionReason.DO_NOT_CONTACT),
    note: str = typer.Option("", help="Why, in a few words."),
    actor_name: str | None = ACTOR_OPTION,
    role: Role = ROLE_OPTION,
) -> None:
    """Never mail this address again."""
    actor = actor_from(actor_name, role)
    with runtime(actor) as rt, rt.sessions.begin() as session:
        added = suppress(
            session,
            email=email,
            reason=reason,
            source=f"added by {actor.label}",
            note=note,
            now=rt.clock.now(),
        )
    typer.echo(f"suppressed {email}" if added else f"{email} was suppressed already")


@app.command()
def remove(
    email: str,
    actor_name: str | None = ACTOR_OPTION,
    role: Role = ROLE_OPTION,
) -> None:
    """Allow this address to be mailed again (admins only)."""
    actor = actor_from(actor_name, role)
    with runtime(actor) as rt, rt.sessions.begin() as session:
        removed = lift_suppression(session, email=email, actor=actor)
    typer.echo(f"{email} may be mailed again" if removed else f"{email} was not suppressed")


@app.command()
def check(
    email: str,
    actor_name: str | None = ACTOR_OPTION,
    role: Role = ROLE_OPTION,
) -> None:
    """Whether an address is suppressed (exit status 0 if it is, 1 if not)."""
    with runtime(actor_from(actor_name, role)) as rt, rt.sessions.begin() as session:
        suppressed = is_suppressed(session, email)
    typer.echo(f"{email} is {'suppressed' if suppressed else 'not suppressed'}")
    if not suppressed:
        raise typer.Exit(1)


@app.command()
def show(
    reason: SuppressionReason | None = typer.Option(None, help="Only this reason."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Every suppressed address, newest first; forgotten people show as a hash only."""
    with runtime() as rt, rt.sessions() as session:
        entries = list_suppressions(session, reason=reason)
    if as_json:
        # A forgotten person's entry has "email": null: only the hash of it is left.
        emit_json(entries)
        return
    for entry in entries:
        who = entry.email or "(forgotten: address erased)"
        typer.echo(
            f"{entry.created_at:%Y-%m-%d %H:%M}  {entry.reason.value:<14}  {who}  "
            f"{entry.source}" + (f"  ({entry.note})" if entry.note else "")
        )
