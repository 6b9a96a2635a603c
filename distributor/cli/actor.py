"""Who runs a command: --as and --role, or DISTRIBUTOR_ACTOR and DISTRIBUTOR_ROLE.

There is no login on the command line; the name goes into the records a command writes
(the audit trail among them), and the role decides what it may do: an approver approves
another's send, only an admin lifts a suppression, a viewer changes nothing.
"""

from __future__ import annotations

import getpass
import os

import typer

from distributor.actors import Actor, Role
from distributor.errors import DistributorError

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
    help="Your role: press_officer, approver, admin or viewer.",
)
PEOPLES_ROLES = tuple(role for role in Role if role is not Role.SYSTEM)


def actor_from(name: str | None, role: Role) -> Actor:
    if role is Role.SYSTEM:
        raise DistributorError(
            "the system role is the scheduler's and the workers'; choose one of "
            + ", ".join(r.value for r in PEOPLES_ROLES)
        )
    chosen = (name or "").strip()
    if not chosen:
        try:
            chosen = getpass.getuser()
        except (KeyError, OSError):
            chosen = "unknown"
    return Actor(name=chosen, role=role)


def actor_from_environment() -> Actor:
    """The actor of a command without --as/--role: DISTRIBUTOR_ACTOR and DISTRIBUTOR_ROLE."""
    raw_role = os.environ.get("DISTRIBUTOR_ROLE", "").strip() or Role.PRESS_OFFICER.value
    try:
        role = Role(raw_role)
    except ValueError:
        raise DistributorError(
            f"DISTRIBUTOR_ROLE={raw_role!r} is not a role; use one of "
            + ", ".join(r.value for r in PEOPLES_ROLES)
        ) from None
    return actor_from(os.environ.get("DISTRIBUTOR_ACTOR"), role)
