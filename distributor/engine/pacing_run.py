"""One batch's pacing against the shared store, on the batch's event loop.

Message slots come from the store a few at a time: a grant is a run of slots one interval
apart (by the store's clock) starting at most HORIZON_SECONDS ahead, and the lanes of this
process use them in turn, each sleeping until its slot. A process asks for about as many
as it used in the last HORIZON_SECONDS, so a busy process pays one store call for dozens of
messages, and one at the limit takes only what it can use. Under a low limit each message
also counts in the window of the last second until its reply is back, so that however late
some messages reach the relay, it never counts more than the limit in a second. Quota
units are taken a few at a time too, and given back when the batch ends. Connection slots
are renewed together every third of their time to live while the batch runs.

Store calls are blocking and run in a thread, so that a slow store holds up no lane's I/O.
Should the store be out of reach, lanes wait (and say so in the log) rather than send past a
limit that can no longer be checked.

Each wait of a message for its slots, and of a lane for a connection, is added up here and
added to the store's totals every WAITS_FLUSH_SECONDS and when the batch ends: a few store
calls a batch, and on the way of a message only two clock readings and an addition.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import math
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TypeVar

from distributor.engine.pacing import (
    CONNECTION_TTL_SECONDS,
    HORIZON_SECONDS,
    WINDOW_HOLD_SECONDS,
    Grant,
    LimiterWaits,
    Limits,
    Pacing,
    PacingStore,
    WaitKind,
)
from distributor.engine.relay_backoff import Pushback

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_GRANT = 64  # message slots asked for at once
FREE_GRANTS = 20  # full grants in a row after which the limit counts as far away
# A grant whose first slot is further off than this shows that others are using the limit
# up (a few microseconds only mean another process asked a moment before).
BINDING_WAIT_SECONDS = 0.001
QUOTA_TAKE = 8  # quota units taken at once
RELAY_REFRESH_SECONDS = 1.0  # how often a process without a set rate looks for a backoff
LATE_SLOT_SECONDS = 0.02  # a slot this late is passed over, so late messages do not bunch
STORE_RETRY_SECONDS = 1.0
WAIT_STEP_SECONDS = 0.25  # longest sleep between checks that the batch is still running
# Under a connection cap, a slot is given back this long after its connection closed, so the
# relay has counted the close before another process opens a connection in its place.
RELEASE_LINGER_SECONDS = 0.05
CLOSE_EVERY_SECONDS = 0.005  # how often answered messages are taken out of the windows
# Shorter than this, a message was held by asking the store for its slot, not by the limit.
COUNTED_WAIT_SECONDS = BINDING_WAIT_SECONDS
WAITS_FLUSH_SECONDS = 5.0  # how often the waits added up in the process reach the store


class WaitTally:
    """The waits of one batch not yet added to the store's totals (on the batch's loop)."""

    def __init__(self) -> None:
        self._counts = dict.fromkeys(WaitKind, 0)
        self._seconds = dict.fromkeys(WaitKind, 0.0)

    def add(self, kind: WaitKind, seconds: float) -> None:
        self._counts[kind] += 1
        self._seconds[kind] += seconds

    def take(self) -> dict[WaitKind, LimiterWaits]:
        """What was added since the last take, and start again from nothing."""
        taken = {
            kind: LimiterWaits(self._counts[kind], self._seconds[kind])
            for kind in WaitKind
            if self._counts[kind]
        }
        for kind in taken:
            self._counts[kind], self._seconds[kind] = 0, 0.0
        return taken

    def put_back(self, waits: Mapping[WaitKind, LimiterWaits]) -> None:
        """Waits the store did not take: they go with the next flush."""
        for kind, w in waits.items():
            self._counts[kind] += w.count
            self._seconds[kind] += w.seconds


class MessageGate:
    """The slots of one key (the relay, or one domain) that this process holds.

    While the limit binds, a lane asks for a slot only when it is ready to send, and the
    process asks the store for as many as it has lanes waiting: a slot is never handed to a
    lane busy with the relay, where it would go late (and bunch with later ones) or unused.
    While the limit is far away, the process asks for about as many as it used in the last
    HORIZON_SECONDS, so one store call serves dozens of messages.
    """

    def __init__(self, store: PacingStore, key: str, *, rate: float | None, relay: bool) -> None:
        self._store, self.key, self._rate, self._relay = store, key, rate, relay
        self.kind = WaitKind.RATE if relay else WaitKind.DOMAIN
        self._slots: deque[float] = deque()  # time.monotonic() of each slot held
        self._lock = asyncio.Lock()
        self._waiting = 0  # lanes waiting for a slot
        # A grant gave less than asked, or not at once, within the last FREE_GRANTS grants.
        self._binding = True
        self._free_grants = 0  # grants in a row that gave all that was asked, at once
        self._refilled_at = 0.0
        self._used = 0  # slots used since the last grant
        self._asked = 0  # slots the last grant gave
        # A limit low enough that every message is also counted in the window of the last
        # second (decided by the first grant: more than MAX_GRANT slots fit the horizon).
        self.windowed = False
        self._window_lock = asyncio.Lock()
        self._prefetching: asyncio.Task[Grant | None] | None = None

    async def take(self, stopping: Callable[[], bool], *, wait: bool) -> bool:
        """Use the next slot: sleep until it, or without `wait` only when one is due now."""
        self._waiting += 1
        try:
            return await self._take(stopping, wait=wait)
        finally:
            self._waiting -= 1

    async def _take(self, stopping: Callable[[], bool], *, wait: bool) -> bool:
        if not wait and self._binding:
            # At the limit a message announced ahead would go a round trip and a commit
            # after its slot, bunching with the next ones: it waits for a slot of its own.
            return False
        while True:
            now = time.monotonic()
            # Far from the limit a late slot bunches with nothing: only at it are they dropped.
            while self._binding and self._slots and self._slots[0] < now - LATE_SLOT_SECONDS:
                self._slots.popleft()
            if self._slots:
                due = self._slots[0]
                if not wait and due > now + 0.001:
                    return False
                self._slots.popleft()
                self._used += 1
                if not self._binding and len(self._slots) <= self._asked // 4:
                    self._prefetch(stopping)
                await _sleep_until(due, stopping)
                if stopping():
                    return False
                if not self._binding or time.monotonic() <= due + LATE_SLOT_SECONDS:
                    return True
                # The process was held up past the slot (a busy machine): sending now would
                # bunch with the next slots, so this lane waits for one of those instead.
            if stopping():
                return False
            granted = await self._refill(stopping)
            if granted is None:
                return False
            if granted.count == 0:
                if not wait:
                    return False
                await _sleep_until(time.monotonic() + granted.first_in, stopping)

    async def close(self) -> None:
        if self._prefetching is not None:
            self._prefetching.cancel()
            await asyncio.gather(self._prefetching, return_exceptions=True)

    def _prefetch(self, stopping: Callable[[], bool]) -> None:
        """Far from the limit, ask for the next slots before these run out, so that no lane
        waits for the store."""
        if self._prefetching is None or self._prefetching.done():
            self._prefetching = asyncio.create_task(self._refill(stopping, ahead=True))

    async def _refill(self, stopping: Callable[[], bool], *, ahead: bool = False) -> Grant | None:
        """One grant from the store (or none needed: another lane's arrived meanwhile)."""
        async with self._lock:
            if self._slots and not ahead:
                return Grant(len(self._slots), 0.0, 0.0)
            want = self._want()
            asked = await _call(functools.partial(self._ask, want), stopping)
            if asked is None:
                return None
            grant, received = asked
            self._slots.extend(
                received + grant.first_in + i * grant.interval for i in range(grant.count)
            )
            if (
                grant.count < want
                or grant.first_in > BINDING_WAIT_SECONDS
                or grant.interval * MAX_GRANT > HORIZON_SECONDS
            ):
                # Others use the limit up, or it is low enough to bind: a slow lane or a
                # stalled process could bunch messages above it.
                self._binding, self._free_grants = True, 0
            else:
                self._free_grants += 1
                self._binding = self._free_grants < FREE_GRANTS
            self._refilled_at, self._used, self._asked = received, 0, grant.count
            self.windowed = grant.interval * MAX_GRANT > HORIZON_SECONDS
            return grant

    async def count_in_window(self, message: str, stopping: Callable[[], bool]) -> bool:
        """Count the message in the window of the last second, waiting while it is full;
        False when the batch stops meanwhile. One lane of the process asks at a time."""
        async with self._window_lock:
            while True:
                wait = await _call(
                    lambda: self._store.open_window(
                        self.key,
                        message,
                        rate=self._rate,
                        relay=self._relay,
                        hold=WINDOW_HOLD_SECONDS,
                    ),
                    stopping,
                )
                if wait is None or stopping():
                    return False
                if wait <= 0:
                    return True
                await _sleep_until(time.monotonic() + min(wait, HORIZON_SECONDS), stopping)

    def _want(self) -> int:
        if self._binding or not self._used:
            return max(1, min(MAX_GRANT, self._waiting))
        rate = self._used / max(time.monotonic() - self._refilled_at, 1e-4)
        return max(1, min(MAX_GRANT, math.ceil(rate * HORIZON_SECONDS), 2 * self._used))

    def _ask(self, want: int) -> tuple[Grant, float]:
        """The store's grant, and when it arrived."""
        grant = self._store.take_messages(
            self.key, rate=self._rate, relay=self._relay, want=want, horizon=HORIZON_SECONDS
        )
        return grant, time.monotonic()


class StorePacing(Pacing):
    def __init__(
        self,
        limits: Limits,
        store: PacingStore,
        *,
        stopping: Callable[[], bool],
        observed_rate: Callable[[], float],
        connection_ttl: float = CONNECTION_TTL_SECONDS,
    ) -> None:
        self._limits, self._store = limits, store
        self._stopping, self._observed_rate = stopping, observed_rate
        self._ttl = connection_ttl
        self._relay = MessageGate(store, "relay", rate=limits.rate_per_second, relay=True)
        self._domains = {
            domain: MessageGate(store, f"domain:{domain}", rate=rate, relay=False)
            for domain, rate in limits.domains.items()
        }
        # Without a set rate the relay's slots are taken only while a backoff is in force.
        self._relay_limited = limits.rate_per_second is not None
        self._held: set[str] = set()
        self._capped = False  # a connection cap was in force at the last admission
        self._quota_units = 0
        self._quota_day: int | None = None
        self._renews_at: datetime | None = None
        self._quota_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._name = uuid.uuid4().hex[:12]  # this batch's messages are NAME:N in the windows
        self._numbers = itertools.count()
        self._open: dict[str, list[tuple[str, str]]] = {}  # by lane: (window, message) counted
        self._answered: dict[str, list[str]] = {}  # by window: messages to take out
        self._waits = WaitTally()
        # Lanes refused a connection slot, since when (time.monotonic()).
        self._refused_since: dict[str, float] = {}
        self._flush_failing = False

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._renew_connections()))
        self._tasks.append(asyncio.create_task(self._close_windows()))
        self._tasks.append(asyncio.create_task(self._flush_waits_every()))
        if self._limits.rate_per_second is None:
            self._tasks.append(asyncio.create_task(self._follow_relay_backoff()))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for gate in [self._relay, *self._domains.values()]:
            await gate.close()
        for lane in list(self._open):
            self.answered(lane)
        await self._take_out_answered()
        # Lanes still waiting for a connection waited until now, and gave up.
        now = time.monotonic()
        for since in self._refused_since.values():
            self._note_wait(WaitKind.CONNECTIONS, now - since)
        self._refused_since.clear()
        held, self._held = sorted(self._held), set()
        units, day, self._quota_units = self._quota_units, self._quota_day, 0
        try:
            if held:
                if self._capped:
                    await asyncio.sleep(RELEASE_LINGER_SECONDS)
                await asyncio.to_thread(self._store.release_connections, held)
            if units and day is not None:
                await asyncio.to_thread(self._store.return_quota, day, units)
        except Exception:
            # Held slots expire by themselves; unused quota units stay counted as used.
            log.warning("cannot give pacing slots back to the store", exc_info=True)
        # After the slots: other processes wait for those, nobody for the figures.
        await self._flush_waits()

    # -- connections ---------------------------------------------------------------------

    async def connection(self, holder: str) -> bool:
        admission = await _call(
            lambda: self._store.take_connection(
                holder, configured=self._limits.max_connections, ttl=self._ttl
            ),
            self._stopping,
        )
        if admission is None:
            return False
        self._capped = admission.allowed is not None
        if not admission.held:
            self._refused_since.setdefault(holder, time.monotonic())
            return False
        self._held.add(holder)
        refused_at = self._refused_since.pop(holder, None)
        if refused_at is not None:
            self._note_wait(WaitKind.CONNECTIONS, time.monotonic() - refused_at)
        return True

    async def release(self, holder: str) -> None:
        if holder not in self._held:
            return
        if self._capped:
            await asyncio.sleep(RELEASE_LINGER_SECONDS)
        self._held.discard(holder)
        try:
            await asyncio.to_thread(self._store.release_connections, [holder])
        except Exception:
            log.warning("cannot release a relay connection slot (it expires)", exc_info=True)

    async def _renew_connections(self) -> None:
        while True:
            await asyncio.sleep(self._ttl / 3)
            if self._held:
                held = sorted(self._held)
                try:
                    await asyncio.to_thread(self._store.renew_connections, held, ttl=self._ttl)
                except Exception:
                    log.warning("cannot renew relay connection slots", exc_info=True)

    # -- messages ------------------------------------------------------------------------

    async def message(self, domain: str, *, lane: str = "") -> bool:
        self.answered(lane)
        return await self._clear(domain, wait=True, lane=lane)

    async def message_ready(self, domain: str) -> bool:
        return await self._clear(domain, wait=False, lane="")

    async def _clear(self, domain: str, *, wait: bool, lane: str) -> bool:
        if self._limits.daily_quota is not None and not await self._take_quota(wait=wait):
            return False
        # The domain's slot first, so that a relay slot is taken only by a message that
        # can use it at once.
        gates = [gate for gate in [self._domains.get(domain)] if gate is not None]
        if self._relay_limited:
            gates.append(self._relay)
        for gate in gates:
            started = time.monotonic()
            if not await gate.take(self._stopping, wait=wait):
                self._give_back_unit()
                return False
            # A message reaches the relay somewhere between going and its reply, and how
            # soon varies: under a low limit each also counts in the window of the last
            # second until its reply is back, so the relay can never count more.
            if wait and lane and gate.windowed:
                message = f"{self._name}:{next(self._numbers)}"
                if not await gate.count_in_window(message, self._stopping):
                    self._give_back_unit()
                    return False
                self._open.setdefault(lane, []).append((gate.key, message))
            waited = time.monotonic() - started
            if wait and waited >= COUNTED_WAIT_SECONDS:
                self._waits.add(gate.kind, waited)
        return True

    def _note_wait(self, kind: WaitKind, seconds: float) -> None:
        if seconds >= COUNTED_WAIT_SECONDS:
            self._waits.add(kind, seconds)

    async def _flush_waits_every(self) -> None:
        while True:
            await asyncio.sleep(WAITS_FLUSH_SECONDS)
            await self._flush_waits()

    async def _flush_waits(self) -> None:
        waits = self._waits.take()
        if not waits:
            return
        try:
            await asyncio.to_thread(self._store.record_waits, waits)
        except Exception as exc:
            self._waits.put_back(waits)
            if not self._flush_failing:
                log.warning("cannot add the rate limiter's waits to the store (%s)", exc)
            self._flush_failing = True
        else:
            self._flush_failing = False

    def answered(self, lane: str) -> None:
        for key, message in self._open.pop(lane, []):
            self._answered.setdefault(key, []).append(message)

    async def _close_windows(self) -> None:
        while True:
            await asyncio.sleep(CLOSE_EVERY_SECONDS)
            await self._take_out_answered()

    async def _take_out_answered(self) -> None:
        answered, self._answered = self._answered, {}
        for key, messages in answered.items():
            try:
                await asyncio.to_thread(self._store.close_window, key, messages)
            except Exception:
                log.warning("cannot close a pacing window (it expires)", exc_info=True)

    def _give_back_unit(self) -> None:
        if self._limits.daily_quota is not None:
            self._quota_units += 1

    async def _take_quota(self, *, wait: bool) -> bool:
        if self._quota_units > 0:
            self._quota_units -= 1
            return True
        if self._renews_at is not None or not wait:
            return False
        quota = self._limits.daily_quota
        assert quota is not None
        async with self._quota_lock:
            if self._quota_units == 0 and self._renews_at is None:
                grant = await _call(
                    lambda: self._store.take_quota(quota=quota, want=QUOTA_TAKE), self._stopping
                )
                if grant is None:
                    return False
                self._quota_day = grant.day
                self._quota_units = grant.granted
                if grant.granted == 0:
                    self._renews_at = datetime.fromtimestamp(grant.renews_at, UTC)
        return await self._take_quota(wait=False)

    @property
    def quota_renews_at(self) -> datetime | None:
        return self._renews_at

    # -- the relay pushing back ----------------------------------------------------------

    async def pushed_back(self, kind: Pushback, holder: str) -> bool:
        if kind is Pushback.CONNECTIONS:
            holders = await _call(
                lambda: self._store.refused_connection(
                    holder, configured=self._limits.max_connections
                ),
                self._stopping,
            )
            if holders is None:
                return False
            log.warning(
                "the relay refused a connection as one too many (%d held); the installation "
                "opens fewer",
                holders,
            )
            return holders > 1
        observed = 0.0
        if self._limits.rate_per_second is None:
            try:
                observed = await asyncio.to_thread(self._observed_rate)
            except Exception:
                log.warning("cannot read the installation's recent rate", exc_info=True)
        await _call(
            lambda: self._store.push_back_rate(
                configured=self._limits.rate_per_second, observed=observed
            ),
            self._stopping,
        )
        self._relay_limited = True
        return False

    async def _follow_relay_backoff(self) -> None:
        while True:
            try:
                rate = await asyncio.to_thread(self._store.relay_rate, None)
                self._relay_limited = rate is not None
            except Exception:
                log.warning("cannot read the relay's backoff from the pacing store", exc_info=True)
            await asyncio.sleep(RELAY_REFRESH_SECONDS)


async def _sleep_until(due: float, stopping: Callable[[], bool]) -> None:
    while (left := due - time.monotonic()) > 0 and not stopping():
        await asyncio.sleep(min(left, WAIT_STEP_SECONDS))


async def _call(work: Callable[[], T], stopping: Callable[[], bool]) -> T | None:
    """A store call in a thread, tried again while the store is out of reach; None when the
    batch stops meanwhile."""
    warned = False
    while True:
        try:
            return await asyncio.to_thread(work)
        except Exception as exc:
            if not warned:
                log.warning("pacing store out of reach (%s); waiting for it", exc)
                warned = True
            if stopping():
                return None
            await asyncio.sleep(STORE_RETRY_SECONDS)
