"""`release move`, `release lift` and `release cancel`: the embargo changed up to the last
second, with notices to the journalists who hold the embargoed copy; `release correct`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import typer

from distributor.actors import Role
from distributor.cli.actor import ACTOR_OPTION, ROLE_OPTION, actor_from
from distributor.cli.arguments import id_argument
from distributor.cli.context import runtime
from distributor.cli.release_files import read_release
from distributor.corrections import correct_release
from distributor.embargo import resolve_embargo
from distributor.embargo_changes import (
    EmbargoChange,
    lift_embargo,
    move_embargo,
    withdraw_release,
)
from distributor.rendering.embargo_notice import EmbargoNotice


def _report_notices(change: EmbargoChange, what: str) -> None:
    if change.notice_send_id is not None:
        typer.echo(
            f"  {what} notice (send {change.notice_send_id}) going now to {change.notified} "
            "journalist(s) who hold the embargoed copy"
        )
    for send_id in change.cancelled_prebriefs:
        typer.echo(f"  pre-brief send {send_id} cancelled: it could not go out before the lift")


def move(
    release_id: int = id_argument("release"),
    embargo: str = typer.Option(..., help='New local time, "YYYY-MM-DD HH:MM".'),
    tz: str = typer.Option("", help="IANA time zone of that local time, e.g. Europe/London."),
    actor_name: str | None = ACTOR_OPTION,
    role: Role = ROLE_OPTION,
) -> None:
    """Move the embargo, earlier or later, while nothing of the public send has gone out."""
    with runtime(actor_from(actor_name, role)) as rt, rt.sessions.begin() as session:
        now = rt.clock.now()
        embargo_at = resolve_embargo(embargo, tz, now=now, max_ahead=rt.settings.max_embargo_ahead)
        change = move_embargo(
            session,
            release_id=release_id,
            embargo_at=embargo_at,
            embargo_zone=tz,
            now=now,
            arm_lead=timedelta(seconds=rt.settings.arm_lead_seconds),
            batch_size=rt.settings.batch_size,
        )
    shown = EmbargoNotice(at=change.embargo_at, zone_name=change.embargo_zone)
    typer.echo(f"release {release_id}: embargo moved to {shown.in_release_zone}")
    _report_notices(change, "embargo moved")


def lift(
    release_id: int = id_argument("release"),
    actor_name: str | None = ACTOR_OPTION,
    role: Role = ROLE_OPTION,
) -> None:
    """Lift the embargo now: the release goes to everyone at once."""
    with runtime(actor_from(actor_name, role)) as rt, rt.sessions.begin() as session:
        change = lift_embargo(
            session,
            release_id=release_id,
            now=rt.clock.now(),
            arm_lead=timedelta(seconds=rt.settings.arm_lead_seconds),
        )
    sends = ", ".join(map(str, change.moved_sends))
    typer.echo(f"release {release_id}: embargo lifted now; send(s) {sends} go out within seconds")
    _report_notices(change, "embargo lifted")


def cancel(
    release_id: int = id_argument("release"),
    actor_name: str | None = ACTOR_OPTION,
    role: Role = ROLE_OPTION,
) -> None:
    """Withdraw a release: cancel every send that has not gone out, and tell journalists who
    hold the embargoed copy not to publish."""
    with runtime(actor_from(actor_name, role)) as rt, rt.sessions.begin() as session:
        stopped, change = withdraw_release(
            session,
            release_id=release_id,
            now=rt.clock.now(),
            batch_size=rt.settings.batch_size,
        )
    for send_id, count in stopped.items():
        typer.echo(f"cancelled send {send_id}: {count} delivery(ies) will not be sent")
    _report_notices(change, "withdrawal")


def correct(
    release_id: int = id_argument("release"),
    from_file: Path = typer.Option(..., "--from", help="The corrected release, as for create."),
    note: str = typer.Option(
        ..., help="A short note shown at the top: what was wrong and what changed."
    ),
    allow_outside_folder: bool = typer.Option(
        False,
        "--allow-outside-folder",
        help="Let the front matter attach files outside the release file's folder.",
    ),
    actor_name: str | None = ACTOR_OPTION,
    role: Role = ROLE_OPTION,
) -> None:
    """Send a correction at once to everyone who received the release; the original stays."""
    draft = read_release(from_file, allow_outside_folder=allow_outside_folder)
    with runtime(actor_from(actor_name, role)) as rt, rt.sessions.begin() as session:
        sent = correct_release(
            session,
            release_id=release_id,
            draft=draft,
            note=note,
            now=rt.clock.now(),
            batch_size=rt.settings.batch_size,
            max_asset_bytes=rt.settings.max_attachment_bytes,
            on_warning=lambda warning: typer.secho(f"warning: {warning}", err=True),
        )
    if sent.awaiting_approval:
        typer.echo(
            f"correction {sent.release_id} of release {release_id}: send {sent.send_id} to "
            f"{sent.recipients} journalist(s) who received it awaits approval: an approver "
            f"other than you runs `distributor release approve {sent.release_id}`"
        )
        return
    typer.echo(
        f"correction {sent.release_id} of release {release_id}: send {sent.send_id} going now "
        f"to {sent.recipients} journalist(s) who received it"
    )


def register(app: typer.Typer) -> None:
    app.command("correct")(correct)
    app.command("move")(move)
    app.command("lift")(lift)
    app.command("cancel")(cancel)
