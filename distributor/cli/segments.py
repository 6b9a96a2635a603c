"""`distributor segments`: saved filters, previewed before they are saved."""

from __future__ import annotations

import typer

from distributor.actors import Role
from distributor.audience import choose_audience, count_audience, stream_audience
from distributor.cli.actor import ACTOR_OPTION, ROLE_OPTION, actor_from
from distributor.cli.arguments import count_option
from distributor.cli.context import runtime
from distributor.cli.output import JSON_HELP, emit_json
from distributor.errors import DistributorError
from distributor.segments.store import (
    SegmentPreview,
    delete_segment,
    list_segments,
    preview_filter,
    save_segment,
)

app = typer.Typer(
    help='Dynamic segments: saved filters such as beat in ("crime", "policing").',
    no_args_is_help=True,
)


def _show(preview: SegmentPreview) -> None:
    suppressed = (
        f" ({preview.suppressed} of them suppressed, so not mailed)" if preview.suppressed else ""
    )
    typer.echo(f"{preview.count} contact(s) match{suppressed}", nl=not preview.sample)
    if preview.sample:
        typer.echo(", for example:")
    for person in preview.sample:
        typer.echo(f"  {person.email}  {person.name}".rstrip())


@app.command()
def preview(
    filter_text: str = typer.Argument(..., metavar="FILTER"),
    sample: int = count_option(10, maximum=1000, help="How many matching contacts to list."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """How many contacts a filter matches now, and a sample of them."""
    with runtime() as rt, rt.sessions() as session:
        found = preview_filter(session, filter_text, sample_size=sample)
    if as_json:
        emit_json(found)
        return
    _show(found)


@app.command()
def save(
    name: str,
    filter_text: str = typer.Argument(..., metavar="FILTER"),
    replace: bool = typer.Option(False, help="Change the filter of an existing segment."),
    yes: bool = typer.Option(False, "--yes", help="Save without asking after the preview."),
    actor_name: str | None = ACTOR_OPTION,
    role: Role = ROLE_OPTION,
) -> None:
    """Preview a filter, then save it as a segment to send to."""
    with runtime(actor_from(actor_name, role)) as rt, rt.sessions.begin() as session:
        _show(preview_filter(session, filter_text))
        if not yes and not typer.confirm(f"Save this as the segment {name!r}?"):
            raise DistributorError("the segment was not saved")
        save_segment(
            session,
            name=name,
            filter_text=filter_text,
            actor=actor_from(actor_name, role),
            now=rt.clock.now(),
            replace=replace,
        )
    typer.echo(f"saved segment {name!r}")


@app.command()
def show(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Every segment with its filter and how many contacts it reaches now."""
    with runtime() as rt, rt.sessions() as session:
        segments = [
            (
                segment.name,
                segment.filter_text,
                count_audience(session, choose_audience(session, segment_names=[segment.name])),
            )
            for segment in list_segments(session)
        ]
    if as_json:
        emit_json(
            [{"name": name, "filter": text, "reach": reach} for name, text, reach in segments]
        )
        return
    for name, text, reach in segments:
        typer.echo(f"{reach:>8}  {name}: {text}")


@app.command()
def members(name: str, as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Everyone a segment reaches now (suppressed addresses left out)."""
    with runtime() as rt, rt.sessions() as session:
        choice = choose_audience(session, segment_names=[name])
        if as_json:
            emit_json(
                [{"email": m.email, "name": m.name} for m in stream_audience(session, choice)]
            )
            return
        for member in stream_audience(session, choice):
            typer.echo(f"{member.email}  {member.name}".rstrip())


@app.command()
def delete(
    name: str,
    actor_name: str | None = ACTOR_OPTION,
    role: Role = ROLE_OPTION,
) -> None:
    """Delete a segment that no send went to."""
    with runtime(actor_from(actor_name, role)) as rt, rt.sessions.begin() as session:
        delete_segment(session, name=name)
    typer.echo(f"deleted segment {name!r}")
