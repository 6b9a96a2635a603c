"""Many relay connections kept busy at once by one worker process, on an event loop.

A feeder claims deliveries a chunk at a time into a queue; each lane owns one connection
and takes the next delivery, builds it, sends it, and waits for its outcome to be
committed before its next message can be accepted, so a worker that dies leaves at most
one accepted-but-unrecorded message per connection. Connections are opened and greeted
before the embargo lifts. When its batch is done, the feeder takes any other batch of the
send that no worker holds, so a process that finished early helps with what is left.

The installation's limits (`pacing.py`) come in at three points: a lane takes a connection
slot before it opens its connection (a lane without one waits, or stays idle), a message
slot before each message goes (and before a message is announced ahead, it is announced only
when a slot is due), and a unit of the daily quota. When the relay pushes back, the whole
installation slows down (`relay_backoff.py`); the message it refused goes again, at the
slower pace, without being charged an attempt.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter, deque
from dataclasses import replace
from datetime import datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from distributor.clock import pause_until
from distributor.engine.claims import (
    AnnouncedEmbargo,
    ClaimedDelivery,
    SendSnapshot,
    claim_deliveries,
    lock_announced_embargo,
    seconds_until_embargo,
)
from distributor.engine.connections import Connection, ConnectionFactory
from distributor.engine.daily_quota import hold_for_quota
from distributor.engine.db_retry import with_database
from distributor.engine.dbclock import CorrectedClock, read_database_time
from distributor.engine.dispatch import BatchRef
from distributor.engine.domain_limits import domain_of
from distributor.engine.jobs import BatchJob, BatchReport, BuildMessage, SendingParts
from distributor.engine.leases import LeaseKeeper, take_free_batch
from distributor.engine.outcomes import GroupRecorder, Outcome, OutcomeRecorder
from distributor.engine.pacing import Pacing
from distributor.engine.pacing_status import recent_rate
from distributor.engine.relay_backoff import Pushback, pushback_of
from distributor.engine.relay_health import record_recovery, relay_state, rest_the_relay
from distributor.engine.retries import judge_failure
from distributor.errors import RelayUnavailableError, TransportError
from distributor.models import Send
from distributor.states import DeliveryState, SendKind, SendState
from distributor.suppression import suppress
from distributor.transport import Envelope
from distributor.vocabulary import SuppressionReason

log = logging.getLogger(__name__)

FIRST_CHUNK = 20  # a small first claim puts the first messages on the wire soonest
# Connection failures in a row, each after a short pause, before a lane gives up; when every
# lane has given up, the relay counts as down.
OUTAGE_AFTER = 3
RECONNECT_PAUSE = 0.5
SEND_WATCH_INTERVAL = 0.5  # how often the send's state is read while sending
SLOT_POLL_SECONDS = 0.1  # how often a lane without a connection slot asks for one
# Times the relay may push a message back ("too fast") before it counts as deferred.
PUSHBACK_RETRIES = 3


class _PushedBack:
    """The relay refused the message as one too many: it goes again, at the slower pace."""


PUSHED_BACK: Final = _PushedBack()


class LaneSender:
    def __init__(
        self,
        job: BatchJob,
        parts: SendingParts,
        *,
        snapshot: SendSnapshot,
        keeper: LeaseKeeper,
        clock: CorrectedClock,
        report: BatchReport,
        held: list[BatchRef],
    ) -> None:
        self.job, self.parts, self.snapshot = job, parts, snapshot
        # Everything that does not depend on the embargo is done before it lifts.
        self.build: BuildMessage = parts.make_builder(snapshot)
        self.keeper, self.clock, self.report, self.held = keeper, clock, report, held
        self.batch = job.batch
        self.relay_was_down = False
        self.retired = 0
        self.lanes = 0
        self.idle = 0  # lanes that ended without a connection slot, with nothing left to do
        self.slotted: set[str] = set()  # lanes holding a connection slot
        self.outage: TransportError | None = None
        self.queue: asyncio.Queue[ClaimedDelivery | None] = asyncio.Queue()
        self.queued = 0  # deliveries in the queue (the end-of-work markers not counted)
        self.fed = False  # the feeder has claimed all it will
        self.room = asyncio.Event()
        # Why no further message may begin, found between messages (None: carry on).
        self.halted: str | None = None
        self.pacing = Pacing()
        self.pushbacks: Counter[int] = Counter()  # by delivery: times the relay said "too fast"

    def _ids(self, delivery_id: int | None = None) -> dict[str, int | None]:
        return {
            "send_id": self.job.send_id,
            "batch_no": self.job.batch_no,
            "delivery_id": delivery_id,
        }

    def _interruption(self) -> str | None:
        if self.halted is not None:
            return self.halted
        if self.keeper.lost:
            return "lease lost to a takeover"
        if self.parts.should_stop():
            return "worker shutting down"
        if time.monotonic() > self.job.deadline:
            return "the task's time is nearly up"
        if self.outage is not None:
            return f"relay unavailable: {self.outage}"
        return None

    async def run(self, connect: ConnectionFactory, count: int) -> None:
        self.relay_was_down = await asyncio.to_thread(self._relay_was_down)
        self.pacing = self.parts.pacer.for_batch(
            stopping=lambda: self._interruption() is not None, observed_rate=self._recent_rate
        )
        await self.pacing.start()
        try:
            await self._run(connect, count)
        finally:
            await self.pacing.close()
        renews_at = self.pacing.quota_renews_at
        if self.outage is not None:
            self.report.stopped_reason = f"relay unavailable: {self.outage}"
            await asyncio.to_thread(self._rest_relay, self.outage)
        elif renews_at is not None:
            self.report.stopped_reason = (
                f"the daily quota is spent until {renews_at:%Y-%m-%d %H:%M} UTC"
            )
            await asyncio.to_thread(self._hold_for_quota, renews_at)
        elif self.report.stopped_reason is None:
            self.report.stopped_reason = self._interruption()

    async def _run(self, connect: ConnectionFactory, count: int) -> None:
        connections = [connect() for _ in range(count)]
        self.lanes = len(connections)
        holders = [f"{self.parts.owner}/{lane}" for lane in range(count)]
        # Lanes with a connection slot free now open their connections before the lift; the
        # others wait for one while sending.
        slotted = [await self.pacing.connection(holder) for holder in holders]
        await asyncio.gather(
            *(c.open() for c, slot in zip(connections, slotted, strict=True) if slot),
            return_exceptions=True,
        )
        started = self.clock.now()
        await self._wait_for_lift(at_most=self.job.max_wait.total_seconds())
        # One budget for the whole wait: this pause and any "not yet" from the database after.
        waited = max((self.clock.now() - started).total_seconds(), 0.0)
        recorder = GroupRecorder(
            OutcomeRecorder(
                self.parts.engine, owner=self.parts.owner, patience=self.parts.db_patience
            ),
            connections=len(connections),
        )
        try:
            lanes = [
                asyncio.create_task(self._lane(connection, holder, slot, recorder))
                for connection, holder, slot in zip(connections, holders, slotted, strict=True)
            ]
            watch = asyncio.create_task(self._watch_send())
            try:
                await self._feed(waited=waited)
                await asyncio.gather(*lanes)
            finally:
                watch.cancel()
        finally:
            await asyncio.to_thread(recorder.close)
            await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)

    async def _wait_for_lift(self, *, at_most: float) -> None:
        """Sleep until the embargo, following it if the press office moves it meanwhile, and
        stop waiting at once if the send is withdrawn or disarmed (a move takes it back to
        scheduled, and the tick queues it again for the new time)."""
        target = self.snapshot.embargo_at
        while True:
            await pause_until(self.clock, target, at_most=min(at_most, SEND_WATCH_INTERVAL))
            at_most -= SEND_WATCH_INTERVAL
            remaining = (target - self.clock.now()).total_seconds()
            if remaining <= 0 or at_most <= 0:
                return
            try:
                state, embargo_at = await asyncio.to_thread(self._send_timing)
            except Exception:  # noqa: S112 - the claim checks the embargo in any case
                continue
            if state is not SendState.ARMED or embargo_at is None:
                self.halted = f"the send is {state.value if state else 'gone'}"
                return
            target = embargo_at

    def _send_timing(self) -> tuple[SendState | None, datetime | None]:
        with self.parts.sessions() as session:
            row = session.execute(
                select(Send.state, Send.embargo_at).where(Send.id == self.job.send_id)
            ).first()
        return (row[0], row[1]) if row else (None, None)

    async def _watch_send(self) -> None:
        """A pause, a cancel or a hold stops the lanes within half a second: each finishes
        the message in flight, and the rest of what was claimed is handed back."""
        while self.halted is None:
            await asyncio.sleep(SEND_WATCH_INTERVAL)
            try:
                state = await asyncio.to_thread(self._send_state)
            except Exception:  # noqa: S112 - the claims and recordings report database trouble
                continue
            if state is not SendState.ARMED:
                self.halted = f"the send is {state.value if state else 'gone'}"
                self.room.set()

    def _send_state(self) -> SendState | None:
        with self.parts.sessions() as session:
            return session.scalar(select(Send.state).where(Send.id == self.job.send_id))

    def _relay_was_down(self) -> bool:
        with self.parts.sessions() as session:
            return relay_state(session).consecutive_outages > 0

    def _recent_rate(self) -> float:
        with self.parts.sessions() as session:
            return recent_rate(session, now=read_database_time(session, self.parts.database_clock))

    def _lanes_gone(self, *, this_one: bool = False) -> bool:
        """Every lane has given up on the relay, or ended idle (with `this_one`: once this
        lane gives up too)."""
        return self.retired + self.idle + (1 if this_one else 0) >= self.lanes

    def _put(self, delivery: ClaimedDelivery) -> None:
        self.queued += 1
        self.queue.put_nowait(delivery)

    def _taken(self, item: ClaimedDelivery | None) -> ClaimedDelivery | None:
        if item is not None:
            self.queued -= 1
        self.room.set()
        return item

    async def _feed(self, *, waited: float) -> None:
        """Keep the queue a little ahead of the lanes; close it when nothing is left."""
        chunk = min(FIRST_CHUNK, self.job.claim_chunk)
        try:
            while self._interruption() is None and not self._lanes_gone():
                # Nothing is claimed while no lane of this process has a connection slot.
                if not self.slotted or self.queue.qsize() >= max(self.lanes, chunk // 2):
                    self.room.clear()
                    await self.room.wait()
                    continue
                claimed = await asyncio.to_thread(self._claim, self.batch, chunk)
                if claimed:
                    chunk = self.job.claim_chunk
                    for delivery in claimed:
                        self._put(delivery)
                    continue
                # The database may still say "not yet" to a worker whose clock runs ahead.
                wait = await asyncio.to_thread(self._seconds_until_embargo)
                if wait and waited < self.job.max_wait.total_seconds():
                    step = min(wait, 0.5)
                    await self.clock.pause(step)
                    waited += step
                    continue
                if wait is None:
                    return  # paused or cancelled: nothing more may be claimed
                helped = await asyncio.to_thread(self._take_free_batch)
                if helped is None:
                    return
                self.batch = helped
        finally:
            self.fed = True
            for _ in range(self.lanes):
                self.queue.put_nowait(None)

    def _claim(self, batch: BatchRef, limit: int) -> list[ClaimedDelivery]:
        public = self.snapshot.kind is SendKind.PUBLIC

        def claim(session: Session) -> tuple[list[ClaimedDelivery], AnnouncedEmbargo | None]:
            # A public send announces no embargo: its claims stay one query lighter.
            announced = None if public else lock_announced_embargo(session, batch.send_id)
            claimed = claim_deliveries(
                session,
                batch=batch,
                owner=self.parts.owner,
                clock=self.parts.database_clock,
                now=read_database_time(session, self.parts.database_clock),
                limit=limit,
            )
            return claimed, announced

        claimed, announced = with_database(
            self.parts.sessions, claim, write=True, patience=self.parts.db_patience
        )
        if claimed and announced is not None:
            self._follow_embargo(announced)
        return claimed

    def _follow_embargo(self, announced: AnnouncedEmbargo) -> None:
        """Messages claimed after the press office moved the embargo announce the new one
        (those claimed before it are told by the moved notice)."""
        snapshot = self.snapshot
        if (snapshot.release_embargo_at, snapshot.embargo_zone) == (announced.at, announced.zone):
            return
        self.snapshot = replace(
            snapshot, release_embargo_at=announced.at, embargo_zone=announced.zone
        )
        self.build = self.parts.make_builder(self.snapshot)
        log.info(
            "the embargo moved to %s: messages now announce it",
            announced.at.isoformat(),
            extra=self._ids(),
        )

    def _seconds_until_embargo(self) -> float | None:
        return with_database(
            self.parts.sessions,
            lambda s: seconds_until_embargo(s, self.job.send_id, self.parts.database_clock),
            write=False,
            patience=self.parts.db_patience,
        )

    def _take_free_batch(self) -> BatchRef | None:
        if time.monotonic() > self.job.deadline:
            return None

        def take(session: Session) -> BatchRef | None:
            return take_free_batch(
                session,
                send_id=self.job.send_id,
                owner=self.parts.owner,
                now=read_database_time(session, self.parts.database_clock),
                lease=self.job.lease,
            )

        batch = with_database(
            self.parts.sessions, take, write=True, patience=self.parts.db_patience
        )
        if batch is not None:
            self.keeper.hold(batch)
            self.held.append(batch)
            log.info(
                "helping with send %s batch %s", batch.send_id, batch.batch_no, extra=self._ids()
            )
        return batch

    async def _lane(
        self,
        connection: Connection,
        holder: str,
        slot: bool,
        recorder: GroupRecorder,
    ) -> None:
        try:
            if slot or await self._await_slot(holder):
                self._slot_taken(holder)
                await self._lane_loop(connection, holder, recorder)
            else:
                self.idle += 1
                self.room.set()
        except BaseException as exc:
            # The other lanes finish their message in flight; the batch then ends and hands
            # back what is left, rather than waiting for a lane that is gone.
            self.halted = self.halted or f"a sending lane failed: {type(exc).__name__}: {exc}"
            self.room.set()
            raise
        finally:
            await connection.close()
            await self._give_up_slot(holder)

    def _slot_taken(self, holder: str) -> None:
        self.slotted.add(holder)
        self.room.set()

    async def _give_up_slot(self, holder: str) -> None:
        if holder in self.slotted:
            self.slotted.discard(holder)
            await self.pacing.release(holder)

    async def _await_slot(self, holder: str, *, holding: bool = False) -> bool:
        """Wait for a connection slot of the installation; False when the batch stops, or
        (unless this lane `holding` a delivery) when nothing is left to send."""
        while True:
            if self._interruption() is not None:
                return False
            if not holding and self.fed and self.queued == 0:
                return False
            if await self.pacing.connection(holder):
                return True
            await asyncio.sleep(SLOT_POLL_SECONDS * random.uniform(0.5, 1.5))

    async def _lane_loop(
        self, connection: Connection, holder: str, recorder: GroupRecorder
    ) -> None:
        used = False
        failures = 0
        ending = False
        # The next delivery, taken ahead, and whether its message slot is in hand: only then
        # is it announced on the connection with this one's end (when the relay pipelines).
        ahead: tuple[ClaimedDelivery, Envelope, bool] | None = None
        # Messages the relay pushed back ("too fast"): this lane sends them again.
        again: deque[tuple[ClaimedDelivery, Envelope]] = deque()
        while True:
            slotted = False
            if ahead is not None:
                (delivery, envelope, slotted), ahead = ahead, None
            elif again:
                delivery, envelope = again.popleft()
            else:
                if ending:
                    break
                taken = self._taken(await self.queue.get())
                if taken is None:
                    break
                delivery = taken
                built = self._build(delivery)
                if isinstance(built, Outcome):
                    await self._record(delivery, built, recorder)
                    continue
                envelope = built
            if self._interruption() is not None:
                await connection.close()  # ends an announced message without sending it
                continue  # left `sending`, handed back when the batch ends
            if not slotted and not await self._cleared(delivery, holder):
                continue  # left `sending`: held for the daily quota, or handed back
            # Take the next one now, without waiting, to announce it with this one's end.
            if not self.queue.empty():
                following = self._taken(self.queue.get_nowait())
                if following is None:
                    ending = True
                else:
                    next_built = self._build(following)
                    if isinstance(next_built, Outcome):
                        await self._record(following, next_built, recorder)
                    else:
                        ready = await self.pacing.message_ready(
                            domain_of(following.recipient.email)
                        )
                        ahead = (following, next_built, ready)
            outcome, failures = await self._transmit(
                connection,
                holder,
                delivery,
                envelope,
                failures,
                then=ahead[1] if ahead and ahead[2] else None,
            )
            self.pacing.answered(holder)
            if outcome is PUSHED_BACK:
                self.pushbacks[delivery.delivery_id] += 1
                again.append((delivery, envelope))
                continue
            if outcome is None:
                # This lane could not reach the relay: another lane may, or the batch ends.
                for waiting in [delivery, *(d for d, _ in again)]:
                    self._put(waiting)
                if ahead is not None:
                    self._put(ahead[0])
                self.retired += 1
                if self._lanes_gone():
                    self.room.set()
                break
            assert isinstance(outcome, Outcome)
            used = True
            await self._record(delivery, outcome, recorder)
        if used:
            self.report.connections += 1
        self.report.round_trips += getattr(connection, "round_trips", 0)

    async def _cleared(self, delivery: ClaimedDelivery, holder: str) -> bool:
        """Wait for the message's slots; False when the daily quota is spent (this batch
        then stops) or the batch is stopping."""
        if await self.pacing.message(domain_of(delivery.recipient.email), lane=holder):
            return True
        if self.pacing.quota_renews_at is not None and self.halted is None:
            self.halted = "the daily quota is spent"
            self.room.set()
        return False

    def _build(self, delivery: ClaimedDelivery) -> Envelope | Outcome:
        try:
            built = self.build(delivery.recipient)
        except Exception as exc:
            delivery_id = delivery.delivery_id
            log.exception("cannot build delivery %s", delivery_id, extra=self._ids(delivery_id))
            return Outcome(
                delivery_id, DeliveryState.FAILED, self.clock.now(), error=f"cannot build: {exc}"
            )
        return Envelope(
            sender=built.envelope_sender, recipient=delivery.recipient.email, data=built.data
        )

    async def _record(
        self, delivery: ClaimedDelivery, outcome: Outcome, recorder: GroupRecorder
    ) -> None:
        recorded = await asyncio.wrap_future(recorder.submit(outcome))
        await self._after(delivery, outcome, recorded)

    async def _transmit(
        self,
        connection: Connection,
        holder: str,
        delivery: ClaimedDelivery,
        envelope: Envelope,
        failures: int,
        *,
        then: Envelope | None,
    ) -> tuple[Outcome | _PushedBack | None, int]:
        delivery_id = delivery.delivery_id
        while True:
            try:
                reply = await connection.send(envelope, then=then)
            except RelayUnavailableError as exc:
                kind = pushback_of(exc)
                if kind is not None and await self.pacing.pushed_back(kind, holder):
                    # One connection too many: the relay takes the others, so this lane
                    # gives its slot up and waits for one, without counting a failure.
                    await connection.close()
                    await self._give_up_slot(holder)
                    if not await self._await_slot(holder, holding=True):
                        return None, failures
                    self._slot_taken(holder)
                    continue
                failures += 1
                if failures >= OUTAGE_AFTER:
                    if self._lanes_gone(this_one=True):
                        self.outage = exc
                    return None, failures
                await self.clock.pause(RECONNECT_PAUSE * failures)
                if self._interruption() is not None:
                    return None, failures
                continue
            except TransportError as exc:
                if pushback_of(exc) is not None and self.pushbacks[delivery_id] < PUSHBACK_RETRIES:
                    await self.pacing.pushed_back(Pushback.RATE, holder)
                    log.info(
                        "delivery %s pushed back by the relay (%s); sent again more slowly",
                        delivery_id,
                        exc,
                        extra={**self._ids(delivery_id), "smtp_code": exc.code},
                    )
                    return PUSHED_BACK, 0
                return self._failure(delivery, exc), 0
            except Exception as exc:
                # Whatever went wrong, this message ends with a reason and the batch goes on,
                # on a fresh connection.
                log.exception("unexpected error sending delivery %s", delivery_id)
                await connection.close()
                failed = Outcome(
                    delivery_id,
                    DeliveryState.FAILED,
                    self.clock.now(),
                    error=f"unexpected error: {type(exc).__name__}: {exc}",
                )
                return failed, 0
            code = int(reply[:3]) if reply[:3].isdigit() else None
            sent = Outcome(
                delivery_id, DeliveryState.SENT, self.clock.now(), smtp_code=code, smtp_reply=reply
            )
            return sent, 0

    def _failure(self, delivery: ClaimedDelivery, error: TransportError) -> Outcome:
        now = self.clock.now()
        verdict = judge_failure(
            error,
            attempt=delivery.attempt,
            first_claimed_at=delivery.first_claimed_at,
            now=now,
            policy=self.parts.retry,
        )
        level = logging.INFO if verdict.state is DeliveryState.DEFERRED else logging.WARNING
        log.log(
            level,
            "delivery %s %s: %s",
            delivery.delivery_id,
            verdict.state.value,
            verdict.reason,
            extra={**self._ids(delivery.delivery_id), "smtp_code": error.code},
        )
        return Outcome(
            delivery.delivery_id,
            verdict.state,
            now,
            smtp_code=error.code,
            error=verdict.reason,
            next_attempt_at=verdict.next_attempt_at,
            hard_bounce=verdict.hard_bounce,
        )

    async def _after(self, delivery: ClaimedDelivery, outcome: Outcome, recorded: bool) -> None:
        if not recorded:
            # Another worker owns the delivery now: this worker's lease was taken over while
            # it stalled. It must send nothing more, or it sends its successor's work twice.
            self.halted = "lease lost to a takeover"
            self.room.set()
            log.warning(
                "delivery %s was taken over before its outcome (%s) was recorded; stopping",
                delivery.delivery_id,
                outcome.state.value,
                extra=self._ids(delivery.delivery_id),
            )
            return
        self.report.count(outcome)
        if outcome.hard_bounce:
            await asyncio.to_thread(self._suppress, delivery, outcome)
        if outcome.state is DeliveryState.SENT and self.relay_was_down:
            self.relay_was_down = False
            await asyncio.to_thread(
                with_database,
                self.parts.sessions,
                lambda s: record_recovery(s, now=outcome.at),
                write=True,
                patience=self.parts.db_patience,
            )
            log.info("the mail relay accepts messages again", extra=self._ids())

    def _suppress(self, delivery: ClaimedDelivery, outcome: Outcome) -> None:
        with_database(
            self.parts.sessions,
            lambda s: suppress(
                s,
                email=delivery.recipient.email,
                reason=SuppressionReason.HARD_BOUNCED,
                source=f"relay reply to delivery {delivery.delivery_id}",
                now=outcome.at,
                note=(outcome.error or "")[:500],
            ),
            write=True,
            patience=self.parts.db_patience,
        )

    def _hold_for_quota(self, until: datetime) -> None:
        quota = self.parts.pacer.limits.daily_quota or 0

        def hold(session: Session) -> None:
            held = hold_for_quota(
                session,
                send_id=self.job.send_id,
                batches=self.held,
                owner=self.parts.owner,
                now=read_database_time(session, self.parts.database_clock),
                until=until,
                quota=quota,
            )
            self.report.handed_back += held
            log.warning(
                "daily quota of %d messages spent; %d deliveries held until %s UTC",
                quota,
                held,
                until.strftime("%Y-%m-%d %H:%M"),
                extra=self._ids(),
            )

        with_database(self.parts.sessions, hold, write=True, patience=self.parts.db_patience)

    def _rest_relay(self, error: TransportError) -> None:
        def rest(session: Session) -> None:
            retry_at, handed_back = rest_the_relay(
                session,
                now=read_database_time(session, self.parts.database_clock),
                error=str(error),
                first_wait=self.parts.relay_first_wait,
                batches=self.held,
                owner=self.parts.owner,
            )
            self.report.handed_back += handed_back
            log.error(
                "mail relay unavailable (%s); batch handed back until %s",
                error,
                retry_at.isoformat(timespec="seconds"),
                extra=self._ids(),
            )

        with_database(self.parts.sessions, rest, write=True, patience=self.parts.db_patience)
