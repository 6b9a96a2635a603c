"""`release approve` and `release diff`: the second person's look before anything is armed."""

from __future__ import annotations

import typer

from distributor.actors import Role
from distributor.approvals import approve_release, release_diff
from distributor.cli.actor import ACTOR_OPTION, actor_from
from distributor.cli.arguments import id_argument, id_option
from distributor.cli.context import runtime

APPROVER_ROLE_OPTION = typer.Option(
    Role.APPROVER,
    "--role",
    envvar="DISTRIBUTOR_ROLE",
    help="Your role: approver or admin may approve.",
)


def approve(
    release_id: int = id_argument("release"),
    note: str = typer.Option("", help="A word for the record, e.g. what you checked."),
    actor_name: str | None = ACTOR_OPTION,
    role: Role = APPROVER_ROLE_OPTION,
) -> None:
    """Approve the release's text and every send of it awaiting approval; they are armed
    as usual before the embargo. You must not be the one who scheduled or last edited it."""
    with runtime(actor_from(actor_name, role)) as rt, rt.sessions.begin() as session:
        approval = approve_release(
            session, release_id=release_id, now=rt.clock.now(), note=" ".join(note.split())
        )
    sends = ", ".join(map(str, approval.send_ids))
    typer.echo(
        f"approved version {approval.version} of release {release_id}: send(s) {sends} scheduled"
    )


def diff(
    release_id: int = id_argument("release"),
    since: int | None = id_option(
        "version", "--since", help="Compare with this version (default: the one last approved)."
    ),
) -> None:
    """What changed in the release's text since the version last approved."""
    with runtime() as rt, rt.sessions() as session:
        found = release_diff(session, release_id, since_version=since)
    typer.echo(
        f"release {release_id}: version {found.to_version} {found.basis}"
        if found.from_version != found.to_version
        else f"release {release_id}: version {found.to_version} is the only one to compare "
        f"({found.basis.removeprefix('since ')})"
    )
    if found.from_version != found.to_version and not found.lines:
        typer.echo("no change in the text")
    for line in found.lines:
        colour = (
            typer.colors.GREEN
            if line.startswith("+") and not line.startswith("+++")
            else typer.colors.RED
            if line.startswith("-") and not line.startswith("---")
            else None
        )
        typer.secho(line, fg=colour)


def register(app: typer.Typer) -> None:
    app.command("approve")(approve)
    app.command("diff")(diff)
