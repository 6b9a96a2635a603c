"""Database sessions for one request, acting for the person who made it.

The runtime is shared by every request, so it is never switched to a person (Runtime.act_as
would make every later session act for them); each request's sessions carry their own
actor in `Session.info` instead, which the core reads (see distributor.acting).
"""

from __future__ import annotations

from typing import cast

from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from distributor.acting import acting_info
from distributor.actors import Actor
from distributor.runtime import Runtime


def runtime_of(connection: HTTPConnection) -> Runtime:
    return cast(Runtime, connection.app.state.runtime)


def open_session(runtime: Runtime, actor: Actor) -> Session:
    """A session that records what it changes in `actor`'s name (the runtime's templates
    and brand stay in its info, merged by the session factory)."""
    return runtime.sessions(info=acting_info(actor))
