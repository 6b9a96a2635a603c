"""Slowing the whole installation down when the relay pushes back, and recovering gradually.

A relay that answers 421 or 454 is saying "too fast"; one that answers "too many
connections" is saying "too many at once". Either reply, from any worker, halves what the
whole installation allows itself (multiplicative decrease); the allowance then grows back in
small steps (additive increase), so the installation finds the relay's limit instead of
every worker hammering on it. The state lives in the pacing store (Redis, or the local
file) and is read at the store's clock; the Lua scripts in `pacing_redis.py` compute the
same functions as these.

Messages: after a cut the rate is half of what was allowed (or, with no limit set, of what
the installation was sending), and climbs back by a fortieth of the target each second, so
twenty seconds after a single cut it is where it was. With no rate set, the limit lifts
once it is back where it was cut.

Connections: a refusal with H slots held shows that the relay took H - 1; that becomes a
ceiling the installation does not climb above for CEILING_MEMORY, so it settles at the
relay's limit instead of probing it again and again. The allowance is cut to half of what
was allowed and climbs by one connection every CONNECTION_STEP_SECONDS up to the ceiling.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from distributor.errors import TransportError

DECREASE = 0.5  # what a cut leaves of the allowance
RECOVERY_SECONDS = 20.0  # from a cut back to the rate before it
COOLDOWN_SECONDS = 1.0  # one cut a second, however many lanes hear the same refusal
MIN_RATE = 1.0  # messages a second: a cut never stops sending altogether
CONNECTION_STEP_SECONDS = 2.0  # one more connection allowed this often after a cut
CEILING_MEMORY_SECONDS = 600.0  # how long a learned connection ceiling holds
PUSHBACK_CODES = (421, 454)
TOO_MANY_CONNECTIONS = ("too many connections", "too many concurrent", "connection limit")


class Pushback(enum.Enum):
    RATE = "rate"  # too fast: fewer messages a second
    CONNECTIONS = "connections"  # too many at once: fewer connections


def pushback_of(error: TransportError) -> Pushback | None:
    """What a relay's refusal asks of the installation, if anything."""
    text = str(error).lower()
    if any(phrase in text for phrase in TOO_MANY_CONNECTIONS):
        return Pushback.CONNECTIONS
    if error.code in PUSHBACK_CODES:
        return Pushback.RATE
    return None


@dataclass(frozen=True, slots=True)
class RateBackoff:
    base: float  # messages a second allowed (or sent) when the relay last pushed back
    cut_at: float  # when, in seconds by the store's clock


@dataclass(frozen=True, slots=True)
class ConnectionBackoff:
    base: int  # connections allowed when the relay last refused one
    cut_at: float
    ceiling: int  # the most the relay was seen to take
    ceiling_at: float


def allowed_rate(configured: float | None, backoff: RateBackoff | None, now: float) -> float | None:
    """Messages a second the installation may send now; None: no limit."""
    if backoff is None:
        return configured
    target = configured if configured is not None else backoff.base
    elapsed = max(now - backoff.cut_at, 0.0)
    recovered = backoff.base * DECREASE + target * (1 - DECREASE) * elapsed / RECOVERY_SECONDS
    if configured is None:
        if recovered >= backoff.base:
            return None
        return max(recovered, MIN_RATE)
    return max(min(recovered, configured), MIN_RATE)


def rate_after_pushback(
    configured: float | None, backoff: RateBackoff | None, *, observed: float, now: float
) -> RateBackoff | None:
    """The state after a refusal; None: unchanged (another lane cut a moment ago, or no
    limit is set and nothing was being sent: there is no rate to halve, and a relay that
    refuses everything is an outage, `relay_health.py`)."""
    if backoff is not None and now - backoff.cut_at < COOLDOWN_SECONDS:
        return None
    in_force = allowed_rate(configured, backoff, now)
    if in_force is None and observed <= MIN_RATE:
        return None
    base = in_force if in_force is not None else observed
    return RateBackoff(base=max(base, MIN_RATE), cut_at=now)


def rate_settled(configured: float | None, backoff: RateBackoff, now: float) -> bool:
    """The cut has grown out: the state can be forgotten."""
    target = configured if configured is not None else backoff.base
    return allowed_rate(configured, backoff, now) in (None, target)


def allowed_connections(
    configured: int | None, backoff: ConnectionBackoff | None, now: float
) -> int | None:
    """Connections the installation may hold open now; None: no limit."""
    if backoff is None:
        return configured
    caps = [] if configured is None else [configured]
    if now - backoff.ceiling_at < CEILING_MEMORY_SECONDS:
        caps.append(backoff.ceiling)
        steps = int(max(now - backoff.cut_at, 0.0) // CONNECTION_STEP_SECONDS)
        caps.append(max(1, math.floor(backoff.base * DECREASE) + steps))
    return min(caps) if caps else None


def connections_after_refusal(
    configured: int | None, backoff: ConnectionBackoff | None, *, holders: int, now: float
) -> ConnectionBackoff | None:
    """The state after the relay refused a connection while `holders` slots were held (the
    refused one included); None when the relay refused even a single connection, which is
    not a limit but a relay that is unavailable."""
    took = holders - 1
    if took < 1:
        return None
    remembered = backoff is not None and now - backoff.ceiling_at < CEILING_MEMORY_SECONDS
    ceiling = min(backoff.ceiling, took) if backoff is not None and remembered else took
    if backoff is not None and remembered and now - backoff.cut_at < COOLDOWN_SECONDS:
        return ConnectionBackoff(backoff.base, backoff.cut_at, ceiling, now)
    in_force = allowed_connections(configured, backoff, now)
    base = min(in_force, took) if in_force is not None else took
    return ConnectionBackoff(base=base, cut_at=now, ceiling=ceiling, ceiling_at=now)
