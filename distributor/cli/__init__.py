"""The `distributor` command line: an edge that validates input and calls the core."""

from __future__ import annotations

import sys

import typer
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from distributor.cli import (
    audit_commands,
    bounces,
    breach_commands,
    contact_lookup,
    contacts,
    database,
    deliverability,
    deliveries,
    dkim,
    health_commands,
    lists,
    operate,
    organisations,
    release,
    segments,
    sends,
    suppressions,
    unsubscribe,
    up_command,
    users,
    web,
)
from distributor.errors import DistributorError

app = typer.Typer(
    help="Press-release distribution under embargo: one email per journalist, never early.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(database.app, name="db")
app.add_typer(contacts.app, name="contacts")
contact_lookup.register(contacts.app)
breach_commands.register(contacts.app)
app.add_typer(lists.app, name="lists")
app.add_typer(segments.app, name="segments")
app.add_typer(suppressions.app, name="suppressions")
app.add_typer(bounces.app, name="bounces")
app.add_typer(release.app, name="release")
app.add_typer(organisations.app, name="organisation")
app.add_typer(sends.app, name="send")
app.add_typer(deliveries.app, name="deliveries")
operate.register(app)
unsubscribe.register(app)
app.add_typer(dkim.app, name="dkim")
deliverability.register(app)
audit_commands.register(app)
app.add_typer(users.app, name="users")
web.register(app)
health_commands.register(app)
up_command.register(app)


def main() -> None:
    # Exit status 1: refused (the input or the setup is wrong, and the message says how);
    # 2: not understood (Click's usage errors exit 2 by themselves); 0: done.
    try:
        app()
    except DistributorError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(1)
    except DBAPIError as exc:
        # A missing schema or an unreachable server is the setup's fault, not a bug to trace.
        reason = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]
        typer.secho(
            f"error: cannot use the database: {reason}; check DISTRIBUTOR_DATABASE_URL, "
            "and run `distributor db upgrade` if the schema is missing or out of date",
            fg=typer.colors.RED,
            err=True,
        )
        sys.exit(1)
    except SQLAlchemyError as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        typer.secho(
            f"error: cannot use the database: {reason}; check DISTRIBUTOR_DATABASE_URL",
            fg=typer.colors.RED,
            err=True,
        )
        sys.exit(1)
    except OverflowError:
        # A number past what the database holds, from a parameter not yet checked where it
        # is read (distributor.cli.arguments checks them there).
        typer.secho(
            "error: a number given is too large: ids and counts are whole numbers up to "
            "9223372036854775807; give a smaller one",
            fg=typer.colors.RED,
            err=True,
        )
        sys.exit(2)
