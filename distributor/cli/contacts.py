from __future__ import annotations

from pathlib import Path

import typer

from distributor.cli.context import runtime
from distributor.contacts_import import import_contacts, parse_contacts_csv
from distributor.errors import DistributorError

app = typer.Typer(help="Journalists and their addresses.", no_args_is_help=True)


@app.command("import")
def import_(
    file: Path = typer.Argument(..., help="CSV with columns email, name and optionally outlet."),
    skip_invalid: bool = typer.Option(False, help="Import the valid rows and report the rest."),
) -> None:
    """Add or update contacts from a CSV file; nothing is imported if any row is invalid."""
    try:
        with file.open(newline="", encoding="utf-8-sig") as stream:
            parsed = parse_contacts_csv(stream)
    except (OSError, UnicodeDecodeError) as exc:
        raise DistributorError(f"cannot read {file}: {exc}") from exc
    with runtime() as rt, rt.sessions.begin() as session:
        report = import_contacts(session, parsed, now=rt.clock.now(), skip_invalid=skip_invalid)
    typer.echo(f"imported {report.created} new and updated {report.updated} contact(s)")
    for problem in report.skipped:
        typer.echo(f"skipped {problem}", err=True)
