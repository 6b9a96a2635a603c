from __future__ import annotations

from pathlib import Path

import typer

from distributor.actors import Role
from distributor.cli import approval_commands, embargo_commands, release_views
from distributor.cli.actor import ACTOR_OPTION, ROLE_OPTION, actor_from
from distributor.cli.arguments import id_argument
from distributor.cli.context import runtime
from distributor.cli.prebrief_options import prebrief_request
from distributor.cli.release_files import read_release
from distributor.embargo import resolve_embargo
from distributor.errors import DistributorError
from distributor.preview import make_preview, preview_notice, recipient_for, send_test_copies
from distributor.releases import content_of, create_release, get_release
from distributor.scheduling import schedule_send
from distributor.states import SendState

app = typer.Typer(help="Releases and their sends.", no_args_is_help=True)
release_views.register(app)
embargo_commands.register(app)
approval_commands.register(app)


@app.command()
def create(
    from_file: Path = typer.Option(
        ...,
        "--from",
        help="Plain text (headline first) or Markdown with +++ TOML front matter +++.",
    ),
    allow_outside_folder: bool = typer.Option(
        False,
        "--allow-outside-folder",
        help="Let the front matter attach files outside the release file's folder.",
    ),
    actor_name: str | None = ACTOR_OPTION,
    role: Role = ROLE_OPTION,
) -> None:
    """Store a release from a file; it is rendered through its templates first."""
    draft = read_release(from_file, allow_outside_folder=allow_outside_folder)
    with runtime(actor_from(actor_name, role)) as rt, rt.sessions.begin() as session:
        release = create_release(
            session,
            draft,
            now=rt.clock.now(),
            max_asset_bytes=rt.settings.max_attachment_bytes,
            on_warning=lambda warning: typer.secho(f"warning: {warning}", err=True),
        )
    typer.echo(f"created release {release.id}: {release.headline}")


def _embargo_options(embargo: str, tz: str) -> tuple[str | None, str | None]:
    if bool(embargo) != bool(tz):
        raise DistributorError("give --embargo and --tz together, or neither")
    return embargo or None, tz or None


@app.command()
def preview(
    release_id: int = id_argument("release"),
    contact: str = typer.Option("", help="Personalise for this contact (default: a sample)."),
    html: Path | None = typer.Option(None, help="Write the HTML part here, pictures embedded."),
    eml: Path | None = typer.Option(None, help="Write the whole message here (.eml)."),
    embargo: str = typer.Option("", help='Show this embargo, "YYYY-MM-DD HH:MM" (with --tz).'),
    tz: str = typer.Option("", help="Zone of --embargo; default: the next send's embargo."),
) -> None:
    """Build the release exactly as a journalist would get it, marked TEST, into files."""
    if html is None and eml is None:
        raise DistributorError("say where to write the preview: --html FILE and/or --eml FILE")
    embargo_text, zone = _embargo_options(embargo, tz)
    with runtime() as rt, rt.sessions() as session:
        now = rt.clock.now()
        notice = preview_notice(
            session,
            release_id=release_id,
            embargo=embargo_text,
            zone=zone,
            now=now,
            max_ahead=rt.settings.max_embargo_ahead,
        )
        content = content_of(get_release(session, release_id))
        recipient = recipient_for(session, contact or None)
        builder = rt.message_builder(content, send_id=0, notice=notice, test=True)
        result = make_preview(builder, recipient)
    for path, data in ((html, result.html.encode("utf-8")), (eml, result.eml)):
        if path is not None:
            try:
                path.write_bytes(data)
            except OSError as exc:
                raise DistributorError(f"cannot write {path}: {exc.strerror}") from None
            typer.echo(f"wrote {path}")
    for warning in result.warnings:
        typer.secho(f"warning: {warning}", err=True)
    typer.echo(f"subject: {result.subject}")


@app.command("test-send")
def test_send(
    release_id: int = id_argument("release"),
    to: list[str] = typer.Option(..., help="Address to send a test copy to; repeat for several."),
    contact: str = typer.Option("", help="Personalise as this contact (default: a sample)."),
    embargo: str = typer.Option("", help='Show this embargo, "YYYY-MM-DD HH:MM" (with --tz).'),
    tz: str = typer.Option("", help="Zone of --embargo; default: the next send's embargo."),
) -> None:
    """Send test copies, marked TEST in the subject and the body, to the given addresses."""
    embargo_text, zone = _embargo_options(embargo, tz)
    with runtime() as rt:
        with rt.sessions() as session:
            now = rt.clock.now()
            notice = preview_notice(
                session,
                release_id=release_id,
                embargo=embargo_text,
                zone=zone,
                now=now,
                max_ahead=rt.settings.max_embargo_ahead,
            )
            content = content_of(get_release(session, release_id))
            personalise_as = recipient_for(session, contact or None)
        builder = rt.message_builder(content, send_id=0, notice=notice, test=True)
        transport = rt.open_transport()
        try:
            replies = send_test_copies(
                builder, addresses=to, personalise_as=personalise_as, transport=transport
            )
        finally:
            transport.close()
    for address, reply in replies:
        typer.echo(f"test copy sent to {address}: {reply}")


@app.command()
def schedule(
    release_id: int = id_argument("release"),
    embargo: str = typer.Option(..., help='Local time, "YYYY-MM-DD HH:MM".'),
    # Not required by the parser, so that a missing zone gets the same clear error as an
    # empty one rather than a usage message.
    tz: str = typer.Option("", help="IANA time zone of that local time, e.g. Europe/London."),
    to: list[str] = typer.Option([], help="Media list(s) to send to; repeat for several."),
    segment: list[str] = typer.Option(
        [], help="Segment(s) to send to; repeat for several. Combine freely with --to."
    ),
    again: bool = typer.Option(
        False, "--again", help="Also send to contacts who already have this release."
    ),
    prebrief_at: str = typer.Option(
        "",
        help="Send the embargoed copy to vetted journalists first, at this local time "
        '"YYYY-MM-DD HH:MM" (in --tz).',
    ),
    prebrief_now: bool = typer.Option(
        False, "--prebrief-now", help="Send the embargoed copy to vetted journalists now."
    ),
    prebrief_to: list[str] = typer.Option(
        [], help="Pre-brief only the vetted journalists on this list or segment (repeat)."
    ),
    actor_name: str | None = ACTOR_OPTION,
    role: Role = ROLE_OPTION,
) -> None:
    """Schedule a release to lists and segments; it goes out at the embargo instant.

    The lists and segments are read again just before the lift: contacts added to them by
    then get the release, and contacts taken off them do not.
    """
    with runtime(actor_from(actor_name, role)) as rt, rt.sessions.begin() as session:
        now = rt.clock.now()
        embargo_at = resolve_embargo(embargo, tz, now=now, max_ahead=rt.settings.max_embargo_ahead)
        prebrief = prebrief_request(
            session,
            at=prebrief_at,
            now_flag=prebrief_now,
            narrowed_to=prebrief_to,
            tz=tz,
            now=now,
            max_ahead=rt.settings.max_embargo_ahead,
        )
        scheduled = schedule_send(
            session,
            release_id=release_id,
            list_names=to,
            segment_names=segment,
            embargo_at=embargo_at,
            embargo_zone=tz,
            now=now,
            batch_size=rt.settings.batch_size,
            again=again,
            prebrief=prebrief,
        )
    typer.echo(
        f"scheduled send {scheduled.send_id}: {scheduled.recipients} recipient(s) as the lists "
        f"stand now, at {embargo} {tz} ({embargo_at:%Y-%m-%d %H:%M} UTC); the lists are read "
        "again just before the lift"
    )
    if scheduled.prebrief is not None:
        typer.echo(
            f"pre-brief send {scheduled.prebrief.send_id}: the embargoed copy to "
            f"{scheduled.prebrief.recipients} vetted journalist(s) at "
            f"{scheduled.prebrief.at:%Y-%m-%d %H:%M} UTC"
            + (
                f"; they get a one-line lift notice (send "
                f"{scheduled.prebrief.lift_notice_send_id}) at the lift instead of the release"
                if scheduled.prebrief.lift_notice_send_id
                else "; they are not sent the release again at the lift"
            )
        )
    if scheduled.state == SendState.AWAITING_APPROVAL:
        typer.echo(
            f"awaiting approval: nothing is sent until an approver other than you runs "
            f"`distributor release approve {release_id}`"
        )
    if scheduled.left_out:
        typer.secho(
            f"warning: {scheduled.left_out} contact(s) on these lists and segments will not be "
            "sent it: their addresses are suppressed or the people asked to be forgotten",
            err=True,
        )
