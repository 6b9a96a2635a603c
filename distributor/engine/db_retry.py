"""Running database work again while the database is briefly out of reach."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)
T = TypeVar("T")


def with_database(
    sessions: sessionmaker[Session],
    work: Callable[[Session], T],
    *,
    write: bool,
    patience: float,
) -> T:
    """Run `work` in a transaction, again on a fresh connection while the database is out of
    reach (a restart, a terminated connection), for up to `patience` seconds."""
    deadline = time.monotonic() + patience
    pause = 0.1
    while True:
        try:
            if write:
                with sessions.begin() as session:
                    return work(session)
            with sessions() as session:
                return work(session)
        except (OperationalError, DBAPIError) as exc:
            if not exc.connection_invalidated and not isinstance(exc, OperationalError):
                raise
            if time.monotonic() + pause > deadline:
                raise
            log.warning("database error (%s); retrying in %.1f s", exc.orig, pause)
            time.sleep(pause)
            pause = min(pause * 2, 5.0)
