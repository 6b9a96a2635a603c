from __future__ import annotations

import typer

from distributor.cli.context import runtime
from distributor.lists import add_to_list, create_list, list_sizes

app = typer.Typer(help="Static media lists.", no_args_is_help=True)


@app.command()
def create(name: str) -> None:
    """Create an empty media list."""
    with runtime() as rt, rt.sessions.begin() as session:
        media_list = create_list(session, name, now=rt.clock.now())
    typer.echo(f"created list {media_list.name!r}")


@app.command()
def add(
    name: str, emails: list[str] = typer.Argument(..., help="Addresses of existing contacts.")
) -> None:
    """Put contacts on a list."""
    with runtime() as rt, rt.sessions.begin() as session:
        added = add_to_list(session, name, emails)
    typer.echo(f"added {added} contact(s) to {name!r}")


@app.command()
def show() -> None:
    """Every list with its number of contacts."""
    with runtime() as rt, rt.sessions() as session:
        for name, size in list_sizes(session):
            typer.echo(f"{size:>8}  {name}")
