"""The person a database session acts for.

A command, a web request or a process opens its sessions for one actor; what the core
records (the audit trail, who scheduled or approved a send) reads it from the session, so
no core function can forget to pass it on. Sessions opened for no one act as the system.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from distributor.actors import SYSTEM_ACTOR, Actor

ACTOR_KEY = "distributor.actor"


def acting_info(actor: Actor) -> dict[str, Any]:
    """Session info that makes the session act for `actor`."""
    return {ACTOR_KEY: actor}


def actor_of(session: Session) -> Actor:
    actor = session.info.get(ACTOR_KEY)
    return actor if isinstance(actor, Actor) else SYSTEM_ACTOR
