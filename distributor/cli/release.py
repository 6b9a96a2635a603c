from __future__ import annotations

from pathlib import Path

import typer

from distributor.cli.context import runtime
from distributor.embargo import resolve_embargo
from distributor.errors import DistributorError
from distributor.releases import create_release, parse_release_text
from distributor.scheduling import cancel_release, schedule_send

app = typer.Typer(help="Releases and their sends.", no_args_is_help=True)


@app.command()
def create(
    from_file: Path = typer.Option(..., "--from", help="Plain-text release: headline first."),
) -> None:
    """Store a release from a text file."""
    try:
        text = from_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DistributorError(f"cannot read {from_file}: {exc}") from exc
    with runtime() as rt, rt.sessions.begin() as session:
        release = create_release(session, parse_release_text(text), now=rt.clock.now())
    typer.echo(f"created release {release.id}: {release.headline}")


@app.command()
def schedule(
    release_id: int,
    embargo: str = typer.Option(..., help='Local time, "YYYY-MM-DD HH:MM".'),
    # Not required by the parser, so that a missing zone gets the same clear error as an
    # empty one rather than a usage message.
    tz: str = typer.Option("", help="IANA time zone of that local time, e.g. Europe/London."),
    to: list[str] = typer.Option(..., help="Media list(s) to send to; repeat for several."),
) -> None:
    """Schedule a release to lists; it goes out at the embargo instant."""
    with runtime() as rt, rt.sessions.begin() as session:
        now = rt.clock.now()
        embargo_at = resolve_embargo(embargo, tz, now=now)
        scheduled = schedule_send(
            session,
            release_id=release_id,
            list_names=to,
            embargo_at=embargo_at,
            embargo_zone=tz,
            now=now,
            batch_size=rt.settings.batch_size,
        )
    typer.echo(
        f"scheduled send {scheduled.send_id}: {scheduled.recipients} recipient(s) at "
        f"{embargo} {tz} ({embargo_at:%Y-%m-%d %H:%M} UTC)"
    )


@app.command()
def cancel(release_id: int) -> None:
    """Cancel every send of a release that has not gone out."""
    with runtime() as rt, rt.sessions.begin() as session:
        stopped = cancel_release(session, release_id=release_id, now=rt.clock.now())
    for send_id, count in stopped.items():
        typer.echo(f"cancelled send {send_id}: {count} delivery(ies) will not be sent")
