"""`distributor unsubscribe TOKEN`: act on an unsubscribe by hand, as the web endpoint will."""

from __future__ import annotations

import typer

from distributor.cli.context import runtime
from distributor.errors import DistributorError
from distributor.unsubscribes import handle_unsubscribe


def unsubscribe(
    token: str = typer.Argument(
        ..., help="The token, the whole unsubscribe link, or the unsubscribe+... address."
    ),
) -> None:
    """Put the address an unsubscribe token names on the suppression list."""
    with runtime() as rt, rt.sessions.begin() as session:
        outcome = handle_unsubscribe(
            session, token=token, key=rt.settings.secret_key, now=rt.clock.now()
        )
    if outcome.test_copy:
        # Not done, so not a success: the link's owner asked for something that a test
        # copy's link cannot do.
        raise DistributorError(outcome.explanation)
    typer.echo(outcome.explanation)


def register(app: typer.Typer) -> None:
    app.command()(unsubscribe)
