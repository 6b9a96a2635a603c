"""Which templates a session's releases are checked against.

The runtime puts its `RenderSetup` (its templates folder and brand defaults) in the info of
every session it makes, so that core functions given only a session, such as scheduling,
check a release against the very templates its workers will render it with.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from distributor.rendering.environment import default_environment
from distributor.rendering.render import RenderSetup

SESSION_KEY = "distributor.render_setup"


def session_info(setup: RenderSetup) -> dict[str, Any]:
    return {SESSION_KEY: setup}


def render_setup_for(session: Session) -> RenderSetup:
    setup = session.info.get(SESSION_KEY)
    if isinstance(setup, RenderSetup):
        return setup
    return RenderSetup(environment=default_environment())
