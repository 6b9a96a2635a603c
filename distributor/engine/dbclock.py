"""The database's clock: the one clock that decides whether an embargo has passed.

Workers and schedulers run on many machines whose clocks drift; the database is one. A
claim compares the embargo with the database server's time inside the claiming statement,
so a worker whose clock runs fast can never send early. Processes also measure how far
their own clock is from the database's, to wake on time and to warn an admin.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import ColumnElement, func, literal, select, type_coerce
from sqlalchemy.orm import Session

from distributor.clock import Clock
from distributor.models.base import UTCDateTime

log = logging.getLogger(__name__)

# Beyond this a process's clock is far enough from the database's to be worth an alarm.
SKEW_WARNING = timedelta(seconds=1)


class DatabaseClock(Protocol):
    def sql_now(self) -> ColumnElement[datetime]:
        """An SQL expression for "now", evaluated by the database in the statement itself."""
        ...


@dataclass(frozen=True, slots=True)
class ServerClock:
    """The database server's own clock."""

    dialect: str

    def sql_now(self) -> ColumnElement[datetime]:
        if self.dialect == "sqlite":
            # SQLite stores UTC as 'YYYY-MM-DD HH:MM:SS.ffffff'; its clock gives milliseconds.
            # Padded to the same shape, the text compares and reads back like a stored value.
            text = func.strftime("%Y-%m-%d %H:%M:%f", "now").concat("000")
            return type_coerce(text, UTCDateTime())
        return func.statement_timestamp(type_=UTCDateTime())


@dataclass(frozen=True, slots=True)
class FollowingClock:
    """Stands in for the database's clock with a process clock (tests of pure logic)."""

    clock: Clock

    def sql_now(self) -> ColumnElement[datetime]:
        return literal(self.clock.now(), UTCDateTime())


def read_database_time(session: Session, clock: DatabaseClock) -> datetime:
    value: datetime | None = session.scalar(select(clock.sql_now()))
    assert value is not None
    return value


@dataclass(frozen=True, slots=True)
class ClockOffset:
    """How far this process's clock is ahead of the database's (negative: behind)."""

    ahead_by: timedelta

    @property
    def is_alarming(self) -> bool:
        return abs(self.ahead_by) > SKEW_WARNING

    @property
    def milliseconds(self) -> int:
        return round(self.ahead_by / timedelta(milliseconds=1))


def measure_offset(session: Session, clock: DatabaseClock, local: Clock) -> ClockOffset:
    """Read the database's time once, halfway through a round trip measured locally.

    Both ends of the round trip are read from the process clock itself, so a clock that
    agrees with the database is measured as exactly in step with it.
    """
    before = local.now()
    database_now = read_database_time(session, clock)
    after = local.now()
    local_then = before + (after - before) / 2
    return ClockOffset(ahead_by=local_then - database_now)


def warn_if_skewed(offset: ClockOffset, *, process: str) -> None:
    if offset.is_alarming:
        log.warning(
            "CLOCK SKEW: the clock of %s is %+.3f s off the database's; the database decides "
            "when embargoes pass, so nothing goes early, but fix this machine's time sync",
            process,
            offset.ahead_by.total_seconds(),
            extra={"clock_offset_ms": offset.milliseconds},
        )


@dataclass(frozen=True, slots=True)
class CorrectedClock:
    """A process clock set to the database's time by a measured offset."""

    local: Clock
    offset: ClockOffset

    def now(self) -> datetime:
        return (self.local.now() - self.offset.ahead_by).astimezone(UTC)

    def sleep(self, seconds: float) -> None:
        self.local.sleep(seconds)

    async def pause(self, seconds: float) -> None:
        await self.local.pause(seconds)
