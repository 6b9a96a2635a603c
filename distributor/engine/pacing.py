"""Pacing: one rate limit, one connection cap and one daily quota for the whole installation.

Every worker process on every machine shares them through a pacing store: Redis when the
broker is Redis (Lua scripts timed by the Redis server's clock, `pacing_redis.py`), a small
SQLite file under the data folder in the embedded mode (`pacing_local.py`). A process
builds one `Pacer` from the settings; each batch it sends gets a `Pacing` from it, bound to
that batch's event loop (`pacing_run.py`). Without any limit, and with a relay that never
pushes back, a lane's `message()` returns at once and the store is asked nothing per
message.

The sending lanes ask a `Pacing`:
- `connection(holder)` before opening a relay connection, and `release(holder)` when it
  closes: a lane without a slot waits, or stays idle; it never fails a delivery for want
  of one;
- `message(domain)` before each message goes (a slot of the relay's rate and of the
  recipient domain's, and a unit of the daily quota), or `message_ready(domain)` before a
  message is announced ahead of time, which takes a slot only if one is due now;
- `pushed_back(...)` when the relay answers "too fast" or "too many connections".

How long messages wait for a slot, and lanes for a connection, is added up in the process
and added to totals in the store every few seconds and when the batch ends (`record_waits`),
so that /metrics can read what every process waited, however many have come and gone.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from distributor.engine.relay_backoff import ConnectionBackoff, Pushback, RateBackoff

# How far ahead of the store's clock message slots are handed out, and so how long a worker
# may hold slots it has not used yet.
HORIZON_SECONDS = 0.05
# Slots are spaced for this share of a limit: messages reach the relay a little early or late
# (a busy machine, a slow reply), and the margin keeps such bunching from counting above the
# limit in any second at the relay.
PACE = 0.97
# A message counted in a window whose worker died leaves it after this long.
WINDOW_HOLD_SECONDS = 30.0
CONNECTION_TTL_SECONDS = 20.0  # a slot of a process that stops renewing it comes back after this


@dataclass(frozen=True, slots=True)
class Limits:
    rate_per_second: float | None = None  # messages a second, installation-wide
    max_connections: int | None = None  # relay connections open at once, installation-wide
    domains: Mapping[str, float] = field(default_factory=dict)
    daily_quota: int | None = None  # messages a UTC day

    @property
    def any(self) -> bool:
        return bool(
            self.rate_per_second is not None
            or self.max_connections is not None
            or self.domains
            or self.daily_quota is not None
        )


@dataclass(frozen=True, slots=True)
class Grant:
    """Message slots handed out by the store: `count` of them, the first `first_in` seconds
    from now and then one every `interval`; with none, ask again in `first_in` seconds."""

    count: int
    first_in: float
    interval: float
    at: float = 0.0  # the store's clock when it granted them (Unix seconds)


@dataclass(frozen=True, slots=True)
class Admission:
    held: bool  # the slot is this holder's
    holders: int  # slots held in the installation now, this one included when held
    allowed: int | None  # connections the installation may hold now (None: no limit)


@dataclass(frozen=True, slots=True)
class QuotaGrant:
    granted: int
    day: int  # UTC days since the epoch
    renews_at: float  # Unix seconds when the next day's quota begins


class WaitKind(enum.StrEnum):
    """What a message or a lane waited for."""

    RATE = "rate"  # a slot of the installation's rate (or of the rate the relay forced)
    DOMAIN = "domain"  # a slot of a recipient domain's rate
    CONNECTIONS = "connections"  # a free relay connection under the installation's cap


@dataclass(frozen=True, slots=True)
class LimiterWaits:
    """Waits for one kind of limit, added up: how many, and how long in all."""

    count: int = 0
    seconds: float = 0.0

    def __add__(self, other: LimiterWaits) -> LimiterWaits:
        return LimiterWaits(self.count + other.count, self.seconds + other.seconds)


@dataclass(frozen=True, slots=True)
class StoreReading:
    """What the store says now, for `distributor status` and /metrics."""

    now: float  # Unix seconds by the store's clock
    rate_backoff: RateBackoff | None
    connection_backoff: ConnectionBackoff | None
    connections_held: int
    quota_used_today: int
    # Every wait recorded since the store began (a Redis flush or a new file starts again).
    waits: Mapping[WaitKind, LimiterWaits] = field(default_factory=dict)


class PacingStore(Protocol):
    """The shared state; every call is atomic, and timed by the store's own clock."""

    def take_messages(
        self, key: str, *, rate: float | None, relay: bool, want: int, horizon: float
    ) -> Grant:
        """Message slots of `key` at `rate` a second (with the relay's backoff applied when
        `relay`); with no rate in force, `want` slots at once."""
        ...

    def open_window(
        self, key: str, message: str, *, rate: float | None, relay: bool, hold: float
    ) -> float:
        """Count `message` in `key`'s window of the last second if fewer than `rate` are in
        it (a message counts from before it goes until its reply is back and a second
        after, or for `hold` seconds if it is never closed); 0.0 when counted, else how long
        to wait before asking again."""
        ...

    def close_window(self, key: str, messages: Sequence[str]) -> None:
        """The messages' replies are back: each leaves the window a second from now."""
        ...

    def relay_rate(self, configured: float | None) -> float | None:
        """The relay's rate in force now, backoff included; None: no limit."""
        ...

    def take_connection(self, holder: str, *, configured: int | None, ttl: float) -> Admission: ...

    def renew_connections(self, holders: Sequence[str], *, ttl: float) -> None: ...

    def release_connections(self, holders: Sequence[str]) -> None: ...

    def refused_connection(self, holder: str, *, configured: int | None) -> int:
        """Note that the relay refused `holder`'s connection as one too many; returns the
        slots held then (the refused one included) and lowers the allowance when above 1."""
        ...

    def push_back_rate(self, *, configured: float | None, observed: float) -> None: ...

    def take_quota(self, *, quota: int, want: int) -> QuotaGrant: ...

    def return_quota(self, day: int, count: int) -> None: ...

    def record_waits(self, waits: Mapping[WaitKind, LimiterWaits]) -> None:
        """Add these waits to the installation's totals."""
        ...

    def read(self) -> StoreReading: ...

    def close(self) -> None: ...


class Pacing:
    """One batch's pacing, on its event loop. This base paces nothing: no limit is set and
    nothing is shared (a blocking transport in tests, an installation without a store)."""

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def connection(self, holder: str) -> bool:
        """Take a connection slot for `holder` if one is free now; False: wait and ask again."""
        return True

    async def release(self, holder: str) -> None:
        """Give `holder`'s connection slot back (a no-op when it holds none)."""
        return None

    async def message(self, domain: str, *, lane: str = "") -> bool:
        """Wait until a message to `domain` may go from `lane`; False when the daily quota
        is spent (or the wait was cut short because the batch is stopping)."""
        return True

    def answered(self, lane: str) -> None:
        """The relay answered `lane`'s last message (or it did not go after all)."""
        return None

    async def message_ready(self, domain: str) -> bool:
        """Take a slot for a message to `domain` only if one is due now."""
        return True

    async def pushed_back(self, kind: Pushback, holder: str) -> bool:
        """The relay pushed back; for a refused connection, True when it was one too many
        (others are open) rather than the relay refusing every connection."""
        return False

    @property
    def quota_renews_at(self) -> datetime | None:
        """When the spent daily quota begins again; None while it is not spent."""
        return None


class Pacer:
    """A process's pacer: the limits and the store, lasting across batches."""

    def __init__(self, limits: Limits, store: PacingStore | None = None) -> None:
        self.limits = limits
        self.store = store

    def for_batch(
        self, *, stopping: Callable[[], bool], observed_rate: Callable[[], float]
    ) -> Pacing:
        """The pacing of one batch: `stopping` cuts waits short, `observed_rate` reads what
        the installation sends a second (when the relay pushes back and no limit is set)."""
        if self.store is None:
            return Pacing()
        from distributor.engine.pacing_run import StorePacing

        return StorePacing(self.limits, self.store, stopping=stopping, observed_rate=observed_rate)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


UNLIMITED = Pacer(Limits())
