"""Who is acting: a name for the record and a role for the permissions that need one."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from distributor.errors import PermissionDeniedError


class Role(enum.StrEnum):
    PRESS_OFFICER = "press_officer"  # manages contacts, lists and sends; may add suppressions
    ADMIN = "admin"  # everything a press officer does, and may lift a suppression


@dataclass(frozen=True, slots=True)
class Actor:
    name: str
    role: Role

    @property
    def label(self) -> str:
        """How the actor is written into records such as a suppression's source."""
        return f"{self.name} ({self.role.value})"


def require_admin(actor: Actor, *, action: str) -> None:
    """Raise PermissionDeniedError unless the actor is an admin."""
    if actor.role is not Role.ADMIN:
        raise PermissionDeniedError(
            f"{actor.name} is a {actor.role.value.replace('_', ' ')} and only an admin may "
            f"{action}; ask an admin, or run as one with --role admin"
        )
