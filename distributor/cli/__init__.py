"""The `distributor` command line: an edge that validates input and calls the core."""

from __future__ import annotations

import sys

import typer

from distributor.cli import contacts, database, lists, operate, release
from distributor.errors import DistributorError

app = typer.Typer(
    help="Press-release distribution under embargo: one email per journalist, never early.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(database.app, name="db")
app.add_typer(contacts.app, name="contacts")
app.add_typer(lists.app, name="lists")
app.add_typer(release.app, name="release")
operate.register(app)


def main() -> None:
    try:
        app()
    except DistributorError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)
