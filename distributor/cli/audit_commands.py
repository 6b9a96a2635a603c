"""`distributor audit`: who did what, when, with the values before and after."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import typer

from distributor.audit import AuditQuery, audit_entries
from distributor.cli.arguments import count_option, id_option
from distributor.cli.context import runtime
from distributor.cli.output import JSON_HELP, emit_json
from distributor.errors import DistributorError
from distributor.models import AuditEntry

RELATIVE = re.compile(r"^(\d{1,6})\s*([mhd])$")
UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_since(text: str, *, now: datetime) -> datetime:
    """ "2026-12-04", "2026-12-04 09:30" (UTC), or a span back from now: "30m", "2h", "7d"."""
    cleaned = text.strip()
    relative = RELATIVE.match(cleaned)
    if relative:
        return now - timedelta(**{UNITS[relative.group(2)]: int(relative.group(1))})
    for pattern in ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(cleaned, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise DistributorError(
        f'--since {text!r} is not a time: give a UTC date "YYYY-MM-DD" or "YYYY-MM-DD HH:MM", '
        'or a span back from now such as "30m", "2h" or "7d"'
    )


def _values(entry: AuditEntry) -> str:
    def compact(values: dict[str, Any] | None) -> str:
        return json.dumps(values, ensure_ascii=False, sort_keys=True) if values else ""

    before, after = compact(entry.before), compact(entry.after)
    if before and after:
        return f"{before} -> {after}"
    return before or after


def audit(
    release: int | None = id_option("release", "--release", help="Only what concerns it."),
    since: str = typer.Option("", help='From this UTC time ("YYYY-MM-DD [HH:MM]") or "2h", "7d".'),
    actor: str = typer.Option("", "--actor", help="Only what this person did."),
    action: str = typer.Option("", help='Only actions starting so: "send.", "release.edited".'),
    limit: int = count_option(200, minimum=1, maximum=100_000, help="At most this many, newest."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """The audit trail: every change people made to releases, sends, lists, contacts,
    suppressions and approvals, oldest first; it is never changed afterwards."""
    with runtime() as rt, rt.sessions() as session:
        query = AuditQuery(
            release_id=release,
            since=parse_since(since, now=rt.clock.now()) if since else None,
            actor=actor.strip() or None,
            action_prefix=action.strip() or None,
            limit=limit,
        )
        entries = audit_entries(session, query)
    if as_json:
        emit_json(
            [
                {
                    "id": e.id,
                    "at": e.at,
                    "actor": e.actor,
                    "role": e.actor_role,
                    "action": e.action,
                    "target": e.target,
                    "release_id": e.release_id,
                    "before": e.before,
                    "after": e.after,
                    "detail": e.detail,
                }
                for e in entries
            ]
        )
        return
    if not entries:
        typer.echo("no audit entries match")
        return
    for e in entries:
        line = f"{e.at:%Y-%m-%d %H:%M:%S} UTC  {e.actor} ({e.actor_role})  {e.action}  {e.target}"
        values = _values(e)
        if values:
            line += f"  {values}"
        if e.detail:
            line += f"  ({e.detail})"
        typer.echo(line)


def register(app: typer.Typer) -> None:
    app.command()(audit)
