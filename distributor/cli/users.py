"""`distributor users`: the accounts people log in to the web app with, and their API tokens.

Whoever runs these commands manages accounts for the installation, so they act as an admin
(named by --as or DISTRIBUTOR_ACTOR, else the login name), whatever DISTRIBUTOR_ROLE says:
`--role` here is the role of the account being created.
"""

from __future__ import annotations

import sys

import typer

from distributor.accounts.tokens import create_api_token
from distributor.accounts.users import create_user, disable_user, list_accounts
from distributor.actors import Role
from distributor.cli.actor import ACTOR_OPTION, actor_from
from distributor.cli.context import runtime
from distributor.cli.output import JSON_HELP, emit_json

app = typer.Typer(
    help="Accounts for the web app and the API, and their tokens.", no_args_is_help=True
)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        # One line, as `docker login --password-stdin` reads it; the line break is not part
        # of the password, other spaces are.
        return sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@app.command()
def create(
    email: str = typer.Argument(..., help="The person's email address; they log in with it."),
    role: Role = typer.Option(
        ..., "--role", help="press_officer, approver, admin or viewer.", show_default=False
    ),
    name: str = typer.Option("", "--name", help="How the dashboard greets them."),
    time_zone: str = typer.Option(
        "UTC", "--tz", help="IANA zone the dashboard shows times in, beside UTC."
    ),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin."
    ),
    actor_name: str | None = ACTOR_OPTION,
) -> None:
    """Create an account; the password is asked for twice (or read with --password-stdin)."""
    password = _read_password(password_stdin)
    with runtime(actor_from(actor_name, Role.ADMIN)) as rt, rt.sessions.begin() as session:
        account = create_user(
            session,
            email=email,
            role=role,
            password=password,
            now=rt.clock.now(),
            display_name=name,
            time_zone=time_zone,
        )
    typer.echo(f"created {account.role.value} account {account.email}")


@app.command("list")
def list_users(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Every account: address, role, zone, and whether it is disabled."""
    with runtime() as rt, rt.sessions() as session:
        accounts = list_accounts(session)
    if as_json:
        emit_json(
            [
                {
                    "email": a.email,
                    "display_name": a.display_name,
                    "role": a.role.value,
                    "time_zone": a.time_zone,
                    "created_at": a.created_at,
                    "last_login_at": a.last_login_at,
                    "disabled_at": a.disabled_at,
                }
                for a in accounts
            ]
        )
        return
    if not accounts:
        typer.echo("no accounts yet; create one with `distributor users create EMAIL --role admin`")
        return
    typer.echo(f"{'email':<40} {'role':<14} {'zone':<20} {'last login':<17} state")
    for a in accounts:
        last = f"{a.last_login_at:%Y-%m-%d %H:%M}" if a.last_login_at else "never"
        state = f"disabled {a.disabled_at:%Y-%m-%d}" if a.disabled_at else "active"
        typer.echo(f"{a.email:<40} {a.role.value:<14} {a.time_zone:<20} {last:<17} {state}")


@app.command()
def disable(
    email: str = typer.Argument(..., help="The account's address."),
    actor_name: str | None = ACTOR_OPTION,
) -> None:
    """Disable an account: its logins, sessions and API tokens stop working at once."""
    with runtime(actor_from(actor_name, Role.ADMIN)) as rt, rt.sessions.begin() as session:
        changed = disable_user(session, email=email, now=rt.clock.now())
    typer.echo(f"disabled {email.strip()}" if changed else f"{email.strip()} was disabled already")


@app.command()
def token(
    email: str = typer.Argument(..., help="The account the token acts for."),
    label: str = typer.Option("", "--label", help="What the token is for, to recognise it."),
    actor_name: str | None = ACTOR_OPTION,
) -> None:
    """Create an API token for the account; it is shown this once, so store it now."""
    with runtime(actor_from(actor_name, Role.ADMIN)) as rt, rt.sessions.begin() as session:
        issued = create_api_token(session, email=email, now=rt.clock.now(), label=label)
    # The token alone on stdout, for a script to capture; the words around it on stderr.
    typer.echo(
        f"API token {issued.token_id} for {email.strip()}, shown this once; send it as "
        "`Authorization: Bearer TOKEN`:",
        err=True,
    )
    typer.echo(issued.secret)
