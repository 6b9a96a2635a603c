"""Who runs a command: --as and --role, or DISTRIBUTOR_ACTOR and DISTRIBUTOR_ROLE.

There is no login yet; the name goes into the records a command writes, and the role
decides what it may do (only an admin may lift a suppression).
"""

from __future__ import annotations

import getpass

import typer

from distributor.actors import Actor, Role

ACTOR_OPTION = typer.Option(
    None,
    "--as",
    envvar="DISTRIBUTOR_ACTOR",
    help="Your name, for the record (default: the login name).",
    show_default=False,
)
ROLE_OPTION = typer.Option(
    Role.PRESS_OFFICER,
    "--role",
    envvar="DISTRIBUTOR_ROLE",
    help="Your role: press_officer, or admin for what needs one.",
)


def actor_from(name: str | None, role: Role) -> Actor:
    chosen = (name or "").strip()
    if not chosen:
        try:
            chosen = getpass.getuser()
        except (KeyError, OSError):
            chosen = "unknown"
    return Actor(name=chosen, role=role)
