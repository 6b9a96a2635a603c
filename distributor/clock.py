"""Time as a service: the real clock, and a manual one for tests of pure logic."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...

    def sleep(self, seconds: float) -> None: ...

    async def pause(self, seconds: float) -> None:
        """Sleep without blocking the event loop."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    async def pause(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0))


class ManualClock:
    """A clock that only moves when told to; sleeping advances it."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    async def pause(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


async def pause_until(clock: Clock, instant: datetime, *, at_most: float) -> None:
    """Sleep until `instant` (or `at_most` seconds), in steps, so that a clock that moves
    (the database's, seen through a measured offset) is followed."""
    remaining = (instant - clock.now()).total_seconds()
    while remaining > 0 and at_most > 0:
        step = min(remaining, at_most, 0.5)
        await clock.pause(step)
        at_most -= step
        remaining = (instant - clock.now()).total_seconds()
