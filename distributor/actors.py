"""Who is acting: a name for the record and a role for the permissions that need one."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from distributor.errors import PermissionDeniedError


class Role(enum.StrEnum):
    VIEWER = "viewer"  # reads everything, changes nothing
    PRESS_OFFICER = "press_officer"  # manages contacts, lists and sends; may add suppressions
    APPROVER = "approver"  # a press officer who may also approve another's send
    ADMIN = "admin"  # everything, and may lift a suppression or clear a breach
    SYSTEM = "system"  # the scheduler and workers, acting on what people decided


APPROVING_ROLES = frozenset({Role.APPROVER, Role.ADMIN})


@dataclass(frozen=True, slots=True)
class Actor:
    name: str
    role: Role

    @property
    def label(self) -> str:
        """How the actor is written into records such as a suppression's source."""
        return f"{self.name} ({self.role.value})"

    @property
    def may_change_things(self) -> bool:
        return self.role is not Role.VIEWER


# What acts when no person does: the scheduler arming a send, a worker recording an outcome.
SYSTEM_ACTOR = Actor("distributor", Role.SYSTEM)


def _role_words(actor: Actor) -> str:
    role = actor.role.value.replace("_", " ")
    return f"an {role}" if role[0] in "aeiou" else f"a {role}"


def require_admin(actor: Actor, *, action: str) -> None:
    """Raise PermissionDeniedError unless the actor is an admin."""
    if actor.role is not Role.ADMIN:
        raise PermissionDeniedError(
            f"{actor.name} is {_role_words(actor)} and only an admin may "
            f"{action}; ask an admin, or run as one with --role admin"
        )


def require_approver(actor: Actor, *, action: str) -> None:
    """Raise PermissionDeniedError unless the actor may approve (approver or admin)."""
    if actor.role not in APPROVING_ROLES:
        raise PermissionDeniedError(
            f"{actor.name} is {_role_words(actor)} and only an approver or an admin may "
            f"{action}; ask one, or run as one with --role approver"
        )


def require_change_allowed(actor: Actor, *, action: str) -> None:
    """Raise PermissionDeniedError for a viewer, who only reads."""
    if not actor.may_change_things:
        raise PermissionDeniedError(
            f"{actor.name} is a viewer and may not {action}; viewers only read"
        )
