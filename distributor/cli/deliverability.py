"""`distributor deliverability`: what the sender domain publishes, and what it should."""

from __future__ import annotations

from functools import partial

import typer

from distributor.cli.context import load_settings
from distributor.cli.output import JSON_HELP, emit_json
from distributor.deliverability import CheckState, deliverability_checks
from distributor.dns_lookup import DEFAULT_TIMEOUT_SECONDS, DnsResolver
from distributor.https_probe import PROBE_TIMEOUT_SECONDS, probe_https

MARKS = {CheckState.OK: "ok", CheckState.PROBLEM: "PROBLEM", CheckState.NOT_CHECKED: "not checked"}


def deliverability(
    offline: bool = typer.Option(
        False, "--offline", help="Make no DNS or HTTPS requests; say what was not checked."
    ),
    nameserver: str | None = typer.Option(
        None,
        "--nameserver",
        help="Ask this DNS server (IP or IP:PORT) instead of the system's.",
    ),
    timeout: float = typer.Option(
        DEFAULT_TIMEOUT_SECONDS, min=0.1, max=60, help="Seconds to wait for each answer."
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """The checklist for the configured sender domain: DKIM, SPF, DMARC, alignment,
    one-click unsubscribe and bounces, with the exact records to publish. Exit status 1
    when a check finds a problem."""
    settings = load_settings()
    checks = deliverability_checks(
        settings,
        dns=None if offline else DnsResolver(nameserver=nameserver, timeout=timeout),
        probe=None
        if offline
        else partial(probe_https, timeout=min(timeout, PROBE_TIMEOUT_SECONDS)),
    )
    if as_json:
        emit_json({"from": settings.from_address, "checks": checks})
    else:
        typer.echo(f"Deliverability of {settings.from_address}\n")
        for check in checks:
            typer.echo(f"[{MARKS[check.state]}] {check.topic}: {check.subject}")
            typer.echo(f"    {check.detail}")
            if check.publish and check.state is not CheckState.OK:
                typer.echo(f"    publish: {check.publish}")
        counts = {state: sum(c.state is state for c in checks) for state in CheckState}
        typer.echo(
            f"\n{counts[CheckState.OK]} ok, {counts[CheckState.PROBLEM]} to fix, "
            f"{counts[CheckState.NOT_CHECKED]} not checked"
        )
    if any(check.state is CheckState.PROBLEM for check in checks):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(deliverability)
