"""`contacts show`, `contacts search` and `contacts edit`: one journalist from the command line."""

from __future__ import annotations

from datetime import datetime

import typer

from distributor.actors import Role
from distributor.cli.actor import ACTOR_OPTION, ROLE_OPTION, actor_from
from distributor.cli.context import runtime
from distributor.cli.output import JSON_HELP, emit_json
from distributor.contacts.editing import EDITABLE_FIELDS, edit_contact
from distributor.contacts.lookup import (
    DEFAULT_PER_PAGE,
    DELIVERIES_SHOWN,
    MAX_PER_PAGE,
    ContactDetail,
    RecentDelivery,
    SearchPage,
    contact_detail,
    search_contacts,
)
from distributor.errors import DistributorError

SEARCH_COLUMN_WIDTH = 40
SET_HELP = f"A field and its new value; repeat for several. Fields: {', '.join(EDITABLE_FIELDS)}."

# Far beyond any contact book; bounded so that the database is never handed an overflow.
MAX_PAGE = 1_000_000_000


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "-"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def show(
    email: str = typer.Argument(..., help="The contact's address, in any letter case."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """A contact's fields, lists, suppression and last deliveries."""
    with runtime() as rt, rt.sessions() as session:
        detail = contact_detail(session, email)
    if as_json:
        emit_json(detail)
        return
    for line in _detail_lines(detail):
        typer.echo(line.rstrip())


def _detail_lines(d: ContactDetail) -> list[str]:
    outlet = (
        f"{d.outlet.name} (outlet vetted {_yes_no(d.outlet.embargo_vetted)}, "
        f"embargo breaker {_yes_no(d.outlet.embargo_breaker)})"
        if d.outlet
        else "-"
    )
    suppression = (
        f"yes, {d.suppression.reason.value} since {_when(d.suppression.since)} "
        f"({d.suppression.source}{'; ' + d.suppression.note if d.suppression.note else ''})"
        if d.suppression
        else "no"
    )
    fields = [
        ("email", d.email),
        ("name", d.name),
        ("outlet", outlet),
        ("role", d.role),
        ("beats", ", ".join(d.beats)),
        ("region", d.region),
        ("country", d.country),
        ("language", d.language),
        ("media type", d.media_type or ""),
        ("time zone", d.time_zone or ""),
        ("legal basis", d.legal_basis),
        ("source", d.source),
        (
            "embargo",
            f"vetted {_yes_no(d.embargo_vetted)}, embargo breaker {_yes_no(d.embargo_breaker)}",
        ),
        ("attributes", ", ".join(f"{k}={v}" for k, v in d.attributes.items())),
        ("lists", ", ".join(d.lists)),
        ("suppressed", suppression),
        ("added", _when(d.created_at)),
        ("changed", _when(d.updated_at)),
    ]
    lines = [f"{label + ':':<12} {value or '-'}" for label, value in fields]
    if not d.deliveries:
        lines.append("deliveries:  none")
        return lines
    lines.append(f"deliveries:  last {len(d.deliveries)} of {d.deliveries_total}, newest first")
    for delivery in d.deliveries:
        lines.extend(_delivery_lines(delivery))
    return lines


def _delivery_lines(d: RecentDelivery) -> list[str]:
    """The delivery on one line, and the relay's reply or the error under its state."""
    if d.finished_at or d.claimed_at:
        when = _when(d.finished_at or d.claimed_at)
    else:
        when = f"due {_when(d.embargo_at)}"
    lines = [f"  send {d.send_id:<5} {d.state.value:<10} {when:<24}  {d.headline}"]
    reply = _one_line(d.smtp_reply or d.error or "")
    if reply:
        lines.append(f"{'':<13}{reply}")
    return lines


def search(
    text: str | None = typer.Argument(
        None, help="Part of a name, an address or an outlet, in any letter case."
    ),
    matching: str | None = typer.Option(
        None, help='Only contacts a filter matches, e.g. beat = "crime" and country = "GB".'
    ),
    limit: int = typer.Option(DEFAULT_PER_PAGE, min=1, max=MAX_PER_PAGE, help="Contacts a page."),
    page: int | None = typer.Option(
        None, min=1, max=MAX_PAGE, help="Which page to show (default the first)."
    ),
    offset: int | None = typer.Option(
        None, min=0, max=MAX_PAGE * 1000, help="Skip this many contacts instead of choosing a page."
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Find contacts by name, address or outlet, by filter, or both; a page at a time."""
    if offset is not None and page is not None:
        raise DistributorError("give --page or --offset, not both")
    with runtime() as rt, rt.sessions() as session:
        found = search_contacts(
            session, text=text, matching=matching, per_page=limit, page=page or 1, offset=offset
        )
    if as_json:
        emit_json(
            {
                "total": found.total,
                "page": found.page,
                "pages": found.pages,
                "per_page": found.per_page,
                "offset": found.offset,
                "contacts": found.contacts,
            }
        )
        return
    for line in _search_lines(found):
        typer.echo(line)


def _search_lines(found: SearchPage) -> list[str]:
    summary = f"page {found.page} of {found.pages} ({found.total} contact(s))"
    if not found.contacts:
        return [f"no contacts on this page; {summary}" if found.total else "no contacts found"]

    def width(values: list[str]) -> int:
        return min(SEARCH_COLUMN_WIDTH, max(len(v) for v in values))

    emails = ["email", *(c.email for c in found.contacts)]
    names = ["name", *(c.name for c in found.contacts)]
    outlets = ["outlet", *(c.outlet for c in found.contacts)]
    marks = ["", *("suppressed" if c.suppressed else "" for c in found.contacts)]
    widths = (width(emails), width(names), width(outlets))
    lines = [
        f"{e:<{widths[0]}}  {n:<{widths[1]}}  {o:<{widths[2]}}  {m}".rstrip()
        for e, n, o, m in zip(emails, names, outlets, marks, strict=True)
    ]
    return [*lines, summary]


def edit(
    email: str = typer.Argument(..., help="The contact's address, in any letter case."),
    assignments: list[str] = typer.Option(
        ...,
        "--set",
        metavar="FIELD=VALUE",
        help=SET_HELP,
    ),
    actor_name: str | None = ACTOR_OPTION,
    role: Role = ROLE_OPTION,
) -> None:
    """Change fields of one contact, checked as an import checks them; shows old -> new."""
    pairs: list[tuple[str, str]] = []
    for assignment in assignments:
        written, equals, value = assignment.partition("=")
        if not equals or not written.strip():
            raise DistributorError(
                f"--set {assignment!r} is not FIELD=VALUE; write e.g. --set 'role=Crime editor' "
                "(an empty value clears the field)"
            )
        pairs.append((written, value))
    with runtime(actor_from(actor_name, role)) as rt, rt.sessions.begin() as session:
        result = edit_contact(session, email=email, assignments=pairs, now=rt.clock.now())
    if not result.changes:
        typer.echo(f"{result.email}: nothing changed (the values given are those it has)")
        return
    typer.echo(f"changed {result.email}:")
    for change in result.changes:
        typer.echo(f"  {change.field}: {change.old!r} -> {change.new!r}")
    if result.created_outlet:
        typer.echo(f"created the outlet {result.created_outlet!r}")
    for notice in result.notices:
        typer.echo(f"note: {notice}", err=True)


def register(app: typer.Typer) -> None:
    """Add `show`, `search` and `edit` to the contacts commands."""
    app.command(
        "show",
        help=f"A contact's fields, lists, suppression and last {DELIVERIES_SHOWN} deliveries.",
    )(show)
    app.command("search")(search)
    app.command("edit")(edit)
