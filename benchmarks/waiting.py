"""Waiting for a send to finish, and giving up early when it plainly will not."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

STALL_SECONDS = 45.0  # no delivery finished for this long after the embargo: stop waiting


def wait_until_final(
    unfinished: Callable[[], int],
    *,
    embargo_at: datetime,
    timeout_seconds: float,
    alive: Callable[[], bool] = lambda: True,
    stall_seconds: float = STALL_SECONDS,
) -> str | None:
    """Poll until nothing is unfinished. Returns None, or why it stopped waiting."""
    deadline = embargo_at + timedelta(seconds=timeout_seconds)
    last_count: int | None = None
    last_change = time.monotonic()
    while True:
        count = unfinished()
        now = datetime.now(UTC)
        if count == 0:
            return None
        if count != last_count:
            last_count, last_change = count, time.monotonic()
        if not alive():
            return f"a process under test exited with {count:,} deliveries unfinished"
        if now > deadline:
            return f"gave up after {timeout_seconds:g} s with {count:,} deliveries unfinished"
        if now > embargo_at and time.monotonic() - last_change > stall_seconds:
            return f"no delivery finished for {stall_seconds:g} s; {count:,} unfinished"
        time.sleep(0.25 if now > embargo_at else 0.5)
