"""`release list`, `release show` and `release edit`: finding, reading and changing releases."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer

from distributor.actors import Role
from distributor.approvals import awaiting_sends
from distributor.cli.actor import ACTOR_OPTION, ROLE_OPTION, actor_from
from distributor.cli.arguments import id_argument
from distributor.cli.context import runtime
from distributor.cli.output import JSON_HELP, emit_json
from distributor.cli.release_files import read_release
from distributor.cli.status_view import status_lines, until
from distributor.releases.editing import edit_release
from distributor.releases.overview import ReleaseSummary, release_detail, release_summaries


def _progress(s: ReleaseSummary) -> str:
    return f"{s.sent}/{s.recipients}" if s.recipients else "-"


def _summary_json(s: ReleaseSummary) -> dict[str, object]:
    return {**asdict(s), "embargo_local": s.embargo_local or None}


def list_releases(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Every release, newest first: id, headline, state, embargo and progress."""
    with runtime() as rt, rt.sessions() as session:
        summaries = release_summaries(session)
    if as_json:
        emit_json([_summary_json(s) for s in summaries])
        return
    if not summaries:
        typer.echo("no releases yet; create one with `distributor release create --from FILE`")
        return
    typer.echo(f"{'id':>5}  {'state':<10} {'embargo':<34} {'sent':>11}  headline")
    for s in summaries:
        headline = s.headline if len(s.headline) <= 60 else s.headline[:59] + "…"
        typer.echo(
            f"{s.release_id:>5}  {s.state:<10} {s.embargo_local or '-':<34} "
            f"{_progress(s):>11}  {headline}"
        )


def show_release(
    release_id: int = id_argument("release"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """A release's content, and each of its sends with its audience and state."""
    with runtime() as rt, rt.sessions() as session:
        detail = release_detail(session, release_id)
        now = rt.clock.now()
    if as_json:
        emit_json({**asdict(detail), "summary": _summary_json(detail.summary)})
        return
    s = detail.summary
    typer.echo(f"release {s.release_id}: {s.headline}")
    typer.echo(f"  state: {s.state}; {s.sends} send(s); sent {_progress(s)}")
    if s.edited_at:
        typer.echo(f"  edited: {s.edited_at:%Y-%m-%d %H:%M} UTC")
    if detail.organisation:
        typer.echo(f"  organisation: {detail.organisation}")
    if detail.dateline:
        typer.echo(f"  dateline: {detail.dateline}")
    if detail.standfirst:
        typer.echo(f"  standfirst: {detail.standfirst}")
    for asset in detail.assets:
        typer.echo(f"  {asset['kind']}: {asset['filename']} ({asset['size']:,} bytes)")
    typer.echo("")
    typer.echo(detail.body.rstrip())
    if detail.notes_to_editors:
        typer.echo("\nNotes to editors:\n" + detail.notes_to_editors.rstrip())
    for send in detail.sends:
        typer.echo("")
        for line in status_lines(send, now=now, detailed=True):
            typer.echo(line)


def edit(
    release_id: int = id_argument("release"),
    from_file: Path = typer.Option(
        ..., "--from", help="The new text: plain text or Markdown with front matter, as create."
    ),
    allow_outside_folder: bool = typer.Option(
        False,
        "--allow-outside-folder",
        help="Let the front matter attach files outside the release file's folder.",
    ),
    actor_name: str | None = ACTOR_OPTION,
    role: Role = ROLE_OPTION,
) -> None:
    """Replace a release's content while nothing of it has gone out; an approval given to
    the text before is withdrawn, and its sends wait for approval again."""
    draft = read_release(from_file, allow_outside_folder=allow_outside_folder)
    with runtime(actor_from(actor_name, role)) as rt, rt.sessions.begin() as session:
        release = edit_release(
            session,
            release_id,
            draft,
            now=rt.clock.now(),
            max_asset_bytes=rt.settings.max_attachment_bytes,
            on_warning=lambda warning: typer.secho(f"warning: {warning}", err=True),
        )
        headline = release.headline
        embargo = next(
            (s for s in release_summaries(session, release_id) if s.embargo_at is not None),
            None,
        )
        now = rt.clock.now()
        waiting = awaiting_sends(session, release_id)
    typer.echo(f"edited release {release_id}: {headline}")
    if waiting:
        typer.echo(
            f"  send(s) {', '.join(map(str, waiting))} await approval of this text: "
            f"`distributor release diff {release_id}` shows what changed, "
            f"`distributor release approve {release_id}` approves it"
        )
    if embargo is not None and embargo.embargo_at is not None and embargo.state == "scheduled":
        typer.echo(f"  goes out {embargo.embargo_local} ({until(embargo.embargo_at, now)})")


def register(app: typer.Typer) -> None:
    app.command("list")(list_releases)
    app.command("show")(show_release)
    app.command("edit")(edit)
