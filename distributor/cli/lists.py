from __future__ import annotations

import typer

from distributor.actors import Role
from distributor.cli.actor import ACTOR_OPTION, ROLE_OPTION, actor_from
from distributor.cli.context import runtime
from distributor.cli.output import JSON_HELP, emit_json
from distributor.errors import DistributorError
from distributor.lists import (
    add_matching_to_list,
    add_to_list,
    create_list,
    delete_list,
    list_members,
    list_sizes,
    remove_from_list,
)

app = typer.Typer(help="Static media lists.", no_args_is_help=True)


@app.command()
def create(
    name: str,
    actor_name: str | None = ACTOR_OPTION,
    role: Role = ROLE_OPTION,
) -> None:
    """Create an empty media list."""
    with runtime(actor_from(actor_name, role)) as rt, rt.sessions.begin() as session:
        media_list = create_list(session, name, now=rt.clock.now())
    typer.echo(f"created list {media_list.name!r}")


@app.command()
def add(
    name: str,
    emails: list[str] = typer.Argument(None, help="Addresses of existing contacts."),
    matching: str | None = typer.Option(
        None, help='Also add every contact a filter matches now, e.g. beat = "crime".'
    ),
    actor_name: str | None = ACTOR_OPTION,
    role: Role = ROLE_OPTION,
) -> None:
    """Put contacts on a list, by address or by filter."""
    if not emails and not matching:
        raise DistributorError("give the addresses to add, or --matching FILTER")
    added = 0
    with runtime(actor_from(actor_name, role)) as rt, rt.sessions.begin() as session:
        if emails:
            added += add_to_list(session, name, emails)
        if matching:
            added += add_matching_to_list(session, name, matching)
    typer.echo(f"added {added} contact(s) to {name!r}")


@app.command()
def remove(
    name: str,
    emails: list[str] = typer.Argument(..., help="Addresses to take off the list."),
    actor_name: str | None = ACTOR_OPTION,
    role: Role = ROLE_OPTION,
) -> None:
    """Take contacts off a list (they stay in the database)."""
    with runtime(actor_from(actor_name, role)) as rt, rt.sessions.begin() as session:
        removed = remove_from_list(session, name, emails)
    typer.echo(f"removed {removed} contact(s) from {name!r}")


@app.command()
def delete(
    name: str,
    actor_name: str | None = ACTOR_OPTION,
    role: Role = ROLE_OPTION,
) -> None:
    """Delete a list that no send went to; its contacts stay."""
    with runtime(actor_from(actor_name, role)) as rt, rt.sessions.begin() as session:
        delete_list(session, name)
    typer.echo(f"deleted list {name!r}")


@app.command()
def members(name: str, as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Everyone on a list."""
    with runtime() as rt, rt.sessions() as session:
        people = list_members(session, name)
    if as_json:
        emit_json([{"email": email, "name": person} for email, person in people])
        return
    for email, person in people:
        typer.echo(f"{email}  {person}".rstrip())


@app.command()
def show(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Every list with its number of contacts."""
    with runtime() as rt, rt.sessions() as session:
        sizes = list_sizes(session)
    if as_json:
        emit_json([{"name": name, "contacts": size} for name, size in sizes])
        return
    for name, size in sizes:
        typer.echo(f"{size:>8}  {name}")
