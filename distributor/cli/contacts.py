"""`distributor contacts`: import, export, flags and the data protection commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TextIO

import typer

from distributor.actors import Role
from distributor.cli.actor import ACTOR_OPTION, ROLE_OPTION, actor_from
from distributor.cli.arguments import count_option
from distributor.cli.context import runtime
from distributor.cli.progress import FileProgress
from distributor.contacts.editing import set_contact_flags, set_outlet_flags
from distributor.contacts.exporting import export_contacts
from distributor.contacts.importing import (
    ImportOptions,
    file_label,
    format_for,
    import_contacts_file,
)
from distributor.contacts.reading import LONE_SURROGATE, FileFormat, csv_delimiter
from distributor.errors import DistributorError
from distributor.gdpr import MAX_MONTHS, export_personal_data, forget, not_mailed_since
from distributor.segments.parser import parse_filter
from distributor.vocabulary import LegalBasis

app = typer.Typer(
    help="Journalists, their outlets, and the data held about them.", no_args_is_help=True
)


def _mapping(pairs: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        column, equals, field = pair.partition("=")
        if not equals or not column.strip():
            raise DistributorError(
                f"--map {pair!r} is not COLUMN=FIELD; write e.g. --map 'E-mail address=email' "
                "(or 'Notes=' to ignore a column)"
            )
        mapping[column] = field
    return mapping


@app.command("import")
def import_(
    file: Path = typer.Argument(..., help="CSV with a header row, or JSON (array or lines)."),
    file_format: FileFormat | None = typer.Option(
        None, "--format", help="csv or json; default from the file name."
    ),
    map_: list[str] = typer.Option(
        [], "--map", help="COLUMN=FIELD: read a differently named column; repeat for several."
    ),
    delimiter: str | None = typer.Option(
        None,
        help="The CSV separator: a character, or comma, semicolon or tab. Default: the one a "
        "first line sep=X names, else detected from the header (comma, semicolon or tab).",
    ),
    raw: bool = typer.Option(
        False,
        "--raw",
        help="Keep CSV cells exactly as written: do not remove the ' before = + - @ that "
        "protects a formula-like cell.",
    ),
    dry_run: bool = typer.Option(False, help="Check and count, but store nothing."),
    skip_invalid: bool = typer.Option(
        False,
        help="Import the valid rows and report the rest by line; fails if no row is valid.",
    ),
    source: str | None = typer.Option(None, help="Where the data came from (default: the file)."),
    legal_basis: LegalBasis = typer.Option(
        LegalBasis.LEGITIMATE_INTEREST, help="For rows that name none."
    ),
    actor_name: str | None = ACTOR_OPTION,
    role: Role = ROLE_OPTION,
) -> None:
    """Add or update contacts, keyed on the address; nothing is imported if any row is bad.

    The file is read exactly: a row with more or fewer fields than the header, a quote that
    is never closed, a JSON object naming a key twice, text that is not UTF-8 (a UTF-8 BOM is
    fine), or a name, outlet, role, region or beat holding invisible or text-direction
    characters is a problem reported by its line.

    A CSV cell that starts with ' followed by =, +, -, @, a tab or a carriage return loses
    that ': it is how `contacts export` and spreadsheets keep such a cell from running as a
    formula. Pass --raw to keep every cell as written.
    """
    options = ImportOptions(
        format=file_format,
        mapping=_mapping(map_),
        dry_run=dry_run,
        skip_invalid=skip_invalid,
        delimiter=csv_delimiter(delimiter) if delimiter is not None else None,
        raw_cells=raw,
        source=source,
        legal_basis=legal_basis,
    )
    with (
        runtime(actor_from(actor_name, role)) as rt,
        rt.sessions.begin() as session,
        FileProgress() as progress,
    ):
        report = import_contacts_file(
            session, file, now=rt.clock.now(), options=options, progress=progress.callback
        )
    typer.echo(f"read {file_label(file)} as {report.description}")
    verb = "would import" if report.dry_run else "imported"
    typer.echo(f"{verb} {report.created} new and updated {report.updated} contact(s)")
    if report.forgotten:
        typer.echo(
            f"left out {len(report.forgotten)} address(es) whose owners asked to be forgotten",
        )
    for problem in report.skipped:
        typer.echo(f"skipped {problem}", err=True)
    for column in report.ignored_columns:
        typer.echo(f"ignored the column {column!r} (read it with --map '{column}=FIELD')", err=True)


@app.command()
def export(
    file: Path = typer.Argument(..., help="Where to write; - for standard output."),
    file_format: FileFormat | None = typer.Option(
        None, "--format", help="csv or json; default from the file name."
    ),
    where: str | None = typer.Option(
        None, help='Only contacts matching a filter, e.g. country = "GB".'
    ),
    raw: bool = typer.Option(
        False,
        "--raw",
        help="Write CSV cells exactly as stored, without the ' that keeps a spreadsheet from "
        "running a cell as a formula (for programs, not spreadsheets).",
    ),
) -> None:
    """Write contacts as CSV or JSON that `contacts import` reads back.

    A CSV cell that starts with =, +, -, @, a tab or a carriage return would run as a formula
    when the file is opened in a spreadsheet; it is written with a ' in front, which the
    spreadsheet shows as text and `contacts import` removes again. --raw writes cells as
    stored; JSON is always written as stored.
    """
    chosen = file_format or (FileFormat.CSV if str(file) == "-" else format_for(file))
    condition = parse_filter(where) if where else None
    with runtime() as rt, rt.sessions() as session:
        if str(file) == "-":
            written = export_contacts(
                session, sys.stdout, file_format=chosen, where=condition, raw=raw
            )
            return
        try:
            stream: TextIO = file.open("w", encoding="utf-8", newline="")
        except OSError as exc:
            raise DistributorError(f"cannot write {file}: {exc.strerror or exc}") from exc
        with stream:
            written = export_contacts(session, stream, file_format=chosen, where=condition, raw=raw)
    # A path whose bytes are not UTF-8 would not print.
    typer.echo(f"exported {written} contact(s) to {LONE_SURROGATE.sub(chr(0xFFFD), str(file))}")


def _flag_option(name: str, help_text: str) -> bool | None:
    return typer.Option(None, f"--{name}/--not-{name}", help=help_text, show_default=False)  # type: ignore[no-any-return]


@app.command()
def flag(
    email: str,
    vetted: bool | None = _flag_option("vetted", "Trusted with embargoed news."),
    breaker: bool | None = _flag_option("breaker", "Has broken an embargo."),
    actor_name: str | None = ACTOR_OPTION,
    role: Role = ROLE_OPTION,
) -> None:
    """Set or clear a journalist's embargo flags."""
    with runtime(actor_from(actor_name, role)) as rt, rt.sessions.begin() as session:
        contact = set_contact_flags(
            session, email=email, now=rt.clock.now(), embargo_vetted=vetted, embargo_breaker=breaker
        )
        typer.echo(
            f"{contact.email}: vetted {'yes' if contact.embargo_vetted else 'no'}, "
            f"embargo breaker {'yes' if contact.embargo_breaker else 'no'}"
        )


@app.command("outlet-flag")
def outlet_flag(
    name: str,
    vetted: bool | None = _flag_option("vetted", "Every journalist there is trusted."),
    breaker: bool | None = _flag_option("breaker", "The outlet has broken an embargo."),
    actor_name: str | None = ACTOR_OPTION,
    role: Role = ROLE_OPTION,
) -> None:
    """Set or clear an outlet's embargo flags; they apply to all its journalists."""
    with runtime(actor_from(actor_name, role)) as rt, rt.sessions.begin() as session:
        outlet = set_outlet_flags(
            session, name=name, now=rt.clock.now(), embargo_vetted=vetted, embargo_breaker=breaker
        )
        typer.echo(
            f"{outlet.name}: vetted {'yes' if outlet.embargo_vetted else 'no'}, "
            f"embargo breaker {'yes' if outlet.embargo_breaker else 'no'}"
        )


@app.command("forget")
def forget_(
    email: str,
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
    actor_name: str | None = ACTOR_OPTION,
    role: Role = ROLE_OPTION,
) -> None:
    """Erase a person's data for good; a hash of the address stays so they are never mailed."""
    actor = actor_from(actor_name, role)
    if not yes and not typer.confirm(f"Erase everything held about {email}? This cannot be undone"):
        raise DistributorError("nothing was erased")
    with runtime(actor) as rt, rt.sessions.begin() as session:
        report = forget(session, email=email, actor=actor, now=rt.clock.now())
    if report.had_contact:
        typer.echo(
            f"erased the contact {email}; only a hash of the address is kept, to suppress it"
        )
    else:
        typer.echo(f"no contact had the address {email}; its hash is kept so it is never imported")
    if report.deliveries_stopped:
        typer.echo(f"stopped {report.deliveries_stopped} pending delivery(ies) to it")


@app.command("export-personal-data")
def export_personal_data_(
    email: str,
    output: Path | None = typer.Option(None, help="Write the JSON here instead of to stdout."),
) -> None:
    """Everything held about one person, as JSON (for a subject access request)."""
    with runtime() as rt, rt.sessions() as session:
        data = export_personal_data(session, email=email)
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise DistributorError(f"cannot write {output}: {exc.strerror or exc}") from exc
    typer.echo(f"wrote the data held about {email} to {output}")


@app.command("not-mailed")
def not_mailed(
    months: int = count_option(
        12, maximum=MAX_MONTHS, help="Report contacts not mailed for this many months."
    ),
) -> None:
    """Contacts not mailed for N months: review whether there is still a reason to hold them."""
    count = 0
    with runtime() as rt, rt.sessions() as session:
        for stale in not_mailed_since(session, months=months, now=rt.clock.now()):
            last = f"{stale.last_mailed_at:%Y-%m-%d}" if stale.last_mailed_at else "never"
            typer.echo(f"{last:>10}  {stale.email}  {stale.name}  {stale.outlet}".rstrip())
            count += 1
    typer.echo(f"{count} contact(s) not mailed for {months} month(s)", err=True)
