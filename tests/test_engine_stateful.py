"""The send engine under random sequences of what happens to it in production.

A press officer schedules the release to a list, its embargo seconds ahead, and an admin
cancels, pauses, resumes or retries the send; the manual clock moves on (across embargoes,
past leases, past the lateness limit) and the scheduler ticks; workers of distinct
identities take batches off the broker's queue and send them, stop gracefully, are killed
mid-batch (the broker then hands their unacknowledged message out again), or are
interrupted mid-batch by a pause, a cancel, or a freeze of their whole process while the
scheduler and another worker carry on; the relay refuses some recipients for a while (451)
or for good (550 5.1.1), or is down; the broker loses its queue or hands a message out twice.

After every step:
1. no message was accepted before its send's embargo (by the manual clock);
2. no delivery's message was accepted twice, except once for each killed worker from which
   the relay had accepted it without the outcome being recorded, and once for each frozen
   worker that had claimed it (the documented bound is stricter: see the xfail below);
3. no message of a send was accepted after the send was cancelled, or while it was paused
   or held, unless a worker had claimed that delivery before (it finishes what it holds);
4. every delivery's state agrees with the relay and the leases: a `sent` delivery's message
   was accepted, with the reply it records; an unsent one's was not (bar those duplicates);
   a `sending` one is covered by its owner's lease on its batch, live or expired; nothing
   failed, and only an address the relay refused for good bounced or was suppressed.
At the end, with the relay healed, the clock far ahead, paused and held sends resumed and
every queued batch sent: every send not cancelled is completed, and each of its contacts got
the release exactly once (plus those duplicates) unless the relay refused it for good.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest
from hypothesis import currently_in_test_context, event
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from sqlalchemy import select

from distributor.clock import ManualClock
from distributor.contacts_import import ContactRow, ParsedContacts, import_contacts
from distributor.engine.batch import BatchJob, SendingParts, deliver_batch
from distributor.engine.dbclock import FollowingClock
from distributor.engine.dispatch import BatchRef, RecordingDispatcher
from distributor.engine.retries import LONGEST_WAIT, RetryPolicy
from distributor.engine.tick import SchedulerPolicy, tick
from distributor.errors import InvalidStateError, NotFoundError
from distributor.lists import add_to_list, create_list
from distributor.models import Contact, Delivery, Send, SendBatch
from distributor.releases import create_release
from distributor.runtime import Runtime
from distributor.scheduling import cancel_send, schedule_send
from distributor.send_control import pause_send, resume_send, retry_deliveries
from distributor.settings import Settings
from distributor.states import (
    ACTIVE_SEND_STATES,
    FINAL_DELIVERY_STATES,
    DeliveryState,
    SendState,
)
from distributor.suppression import is_suppressed
from distributor.transport import MailTransport
from tests.conftest import SAMPLE_DRAFT
from tests.support.engine_model import (
    Accepted,
    InterruptedTransport,
    KillingTransport,
    Refusal,
    RelayTransport,
    SimulatedRelay,
    WorkerKilled,
    clear_engine_tables,
)
from tests.support.machines import run_machine

START = datetime(2031, 3, 4, 9, 0, tzinfo=UTC)
LIST = "Desks"
ADDRESSES = [f"editor{i}@desk{i % 2}.example.com" for i in range(5)]
WORKERS = 3
MAX_SENDS = 3
CLAIM_CHUNK = 2

ARM_LEAD = timedelta(seconds=10)
LEASE = timedelta(seconds=15)
REDISPATCH_AFTER = timedelta(seconds=60)
MAX_LATENESS = timedelta(minutes=15)
RELAY_FIRST_WAIT = timedelta(seconds=5)
# Far longer than any run, so that only a mailbox that does not exist stops a delivery.
RETRY = RetryPolicy(initial=timedelta(seconds=5), window=timedelta(days=3))
POLICY = SchedulerPolicy(
    arm_lead=ARM_LEAD,
    redispatch_after=REDISPATCH_AFTER,
    max_lateness=MAX_LATENESS,
    retry_window=RETRY.window,
)
# Beyond any retry wait (with its jitter), relay rest, lease and redispatch wait.
DRAIN_STEP = LONGEST_WAIT * 1.3
DRAIN_ROUNDS = 12

FINAL = FINAL_DELIVERY_STATES - {DeliveryState.CANCELLED}
NOT_SENT_FOR_GOOD = {DeliveryState.BOUNCED, DeliveryState.SUPPRESSED}


@dataclass
class World:
    """What every run of the machine in one test shares: a database with the list and the
    release, and a runtime whose clock (and the database's, as far as the engine can tell)
    is the manual clock."""

    runtime: Runtime
    clock: ManualClock
    release_id: int

    def rewind(self) -> None:
        self.clock.advance((START - self.clock.now()).total_seconds())
        assert self.clock.now() == START


def make_world(database_url: str, data_dir: Path) -> World:
    clock = ManualClock(START)
    runtime = Runtime(
        Settings(
            database_url=database_url,
            data_dir=data_dir,
            arm_lead_seconds=ARM_LEAD.total_seconds(),
            lease_seconds=LEASE.total_seconds(),
            redispatch_after_seconds=REDISPATCH_AFTER.total_seconds(),
        ),
        clock=clock,
        database_clock_override=FollowingClock(clock),
    )
    rows = [ContactRow(line=n + 2, email=a, name=f"Editor {n}") for n, a in enumerate(ADDRESSES)]
    with runtime.sessions.begin() as session:
        import_contacts(session, ParsedContacts(rows=rows), now=START)
        create_list(session, LIST, now=START)
        add_to_list(session, LIST, ADDRESSES)
        release_id = create_release(session, SAMPLE_DRAFT, now=START).id
    return World(runtime=runtime, clock=clock, release_id=release_id)


@dataclass(frozen=True, slots=True)
class Stop:
    """A span of the run (in event order) in which a send was paused or held."""

    start: int
    end: int | None
    # Deliveries claimed when it began: a worker sending at that moment finishes them.
    claimed: frozenset[int]


@dataclass
class SendModel:
    send_id: int
    embargo_at: datetime
    addresses: dict[int, str]  # delivery id -> the contact's address
    cancelled_seq: int | None = None
    claimed_at_cancel: frozenset[int] = frozenset()
    stops: list[Stop] = field(default_factory=list)

    @property
    def is_stopped(self) -> bool:
        return bool(self.stops) and self.stops[-1].end is None

    def stop(self, seq: int, claimed: frozenset[int]) -> None:
        if not self.is_stopped:
            self.stops.append(Stop(seq, None, claimed))

    def go_on(self, seq: int) -> None:
        assert self.is_stopped
        self.stops[-1] = replace(self.stops[-1], end=seq)

    def may_send(self, message: Accepted) -> bool:
        """Whether the send let this message go at its point in the run."""
        if self.cancelled_seq is not None and message.seq > self.cancelled_seq:
            return message.delivery_id in self.claimed_at_cancel
        return all(
            message.delivery_id in stop.claimed
            for stop in self.stops
            if stop.start < message.seq and (stop.end is None or message.seq < stop.end)
        )


@dataclass(frozen=True, slots=True)
class Queued:
    batch: BatchRef
    not_before: datetime


def note(what: str) -> None:
    """Count what happened in Hypothesis's statistics (steps written out by hand: nothing)."""
    if currently_in_test_context():
        event(what)


F = TypeVar("F", bound=Callable[..., Any])


def step(method: F) -> F:
    """Marks the machine unsettled until the invariants have passed after this step."""

    @functools.wraps(method)
    def run(self: EngineMachine, *args: Any, **kwargs: Any) -> Any:
        self.settled = False
        return method(self, *args, **kwargs)

    return run  # type: ignore[return-value]


leads = st.floats(0.001, 30, allow_nan=False)
batch_sizes = st.integers(1, len(ADDRESSES))
embargo_offsets = st.sampled_from([-1.0, -0.001, 0.0, 0.001, 1.0])
workers = st.integers(0, WORKERS - 1)
stalls = st.sampled_from(
    [1.0, LEASE.total_seconds() + 0.001, 20.0, REDISPATCH_AFTER.total_seconds() + 1]
)
picks = st.integers(0, 7)
addresses = st.sampled_from(ADDRESSES)
clock_steps = st.one_of(
    st.floats(0, 3, allow_nan=False),
    st.sampled_from(
        [
            LEASE.total_seconds(),
            LEASE.total_seconds() + 0.001,
            REDISPATCH_AFTER.total_seconds() + 0.001,
            MAX_LATENESS.total_seconds() + 1,
        ]
    ),
    st.floats(3, 120, allow_nan=False),
)


class EngineMachine(RuleBasedStateMachine):
    world: ClassVar[World]

    sends = Bundle("sends")

    def __init__(self) -> None:
        super().__init__()
        world = self.world
        clear_engine_tables(world.runtime.sessions)
        world.rewind()
        self.rt = world.runtime
        self.clock = world.clock
        self.seq = itertools.count(1)
        self.relay = SimulatedRelay(
            clock=self.clock, verp=self.rt.bounces, next_seq=lambda: next(self.seq)
        )
        self.models: dict[int, SendModel] = {}
        self.queue: list[Queued] = []
        # Each worker slot's process; a new process (new identity) after a kill or a stop.
        self.generation = [0] * WORKERS
        # A kill after the relay accepted a delivery's message, before its outcome was kept.
        self.duplicates_allowed: Counter[int] = Counter()
        self.ever_refused_for_good: set[str] = set()
        self.scheduled = 0
        self.settled = True

    # -- helpers -------------------------------------------------------------------------

    def owner(self, worker: int) -> str:
        return f"worker:host{worker}:{1000 + self.generation[worker]}:stateful"

    def parts(self, worker: int, should_stop: Callable[[], bool] = lambda: False) -> SendingParts:
        """Runtime.sending_parts, with the manual clock for both the process's and the
        database's clock."""
        return SendingParts(
            sessions=self.rt.sessions,
            engine=self.rt.engine,
            database_clock=FollowingClock(self.clock),
            local_clock=self.clock,
            make_builder=self.rt.make_builder,
            retry=RETRY,
            relay_first_wait=RELAY_FIRST_WAIT,
            owner=self.owner(worker),
            should_stop=should_stop,
            db_patience=5.0,
        )

    def job(self, batch: BatchRef) -> BatchJob:
        return BatchJob(
            batch=batch,
            claim_chunk=CLAIM_CHUNK,
            max_wait=ARM_LEAD + timedelta(seconds=5),
            lease=LEASE,
            deadline=time.monotonic() + 600,
        )

    def take(self, pick: int) -> Queued:
        """A message off the broker's queue; one for a batch with work left, if any is."""
        with self.rt.sessions() as session:
            unsent = {
                BatchRef(send_id, batch_no)
                for send_id, batch_no in session.execute(
                    select(Delivery.send_id, Delivery.batch_no)
                    .where(Delivery.state.in_([DeliveryState.PENDING, DeliveryState.DEFERRED]))
                    .distinct()
                )
            }
        live = [n for n, queued in enumerate(self.queue) if queued.batch in unsent]
        return self.queue.pop(live[pick % len(live)] if live else pick % len(self.queue))

    def send_state(self, send_id: int) -> SendState:
        with self.rt.sessions() as session:
            send = session.get(Send, send_id)
            assert send is not None
            return send.state

    def deliver(self, worker: int, queued: Queued, transport: MailTransport, **kw: Any) -> None:
        deliver_batch(self.job(queued.batch), parts=self.parts(worker, **kw), transport=transport)

    # -- a press officer and an admin ----------------------------------------------------

    @initialize(target=sends, lead=leads, batch_size=batch_sizes)
    @step
    def first_send(self, lead: float, batch_size: int) -> int | None:
        return self.schedule_send(lead, batch_size)

    @precondition(lambda self: self.scheduled < MAX_SENDS)
    @rule(target=sends, lead=leads, batch_size=batch_sizes)
    @step
    def another_send(self, lead: float, batch_size: int) -> int | None:
        return self.schedule_send(lead, batch_size)

    def schedule_send(self, lead: float, batch_size: int) -> int | None:
        """Schedule the release to the list, its embargo `lead` seconds ahead; None when
        no contact of the list may be mailed any more."""
        self.scheduled += 1
        now = self.clock.now()
        embargo_at = now + timedelta(seconds=lead)
        with self.rt.sessions() as session:
            mailable = [a for a in ADDRESSES if not is_suppressed(session, a)]
        assert set(ADDRESSES) - set(mailable) <= self.ever_refused_for_good
        try:
            with self.rt.sessions.begin() as session:
                scheduled = schedule_send(
                    session,
                    release_id=self.world.release_id,
                    list_names=[LIST],
                    embargo_at=embargo_at,
                    embargo_zone="Europe/London",
                    now=now,
                    batch_size=batch_size,
                    again=True,  # several sends of one release, on purpose
                )
        except NotFoundError:
            assert not mailable
            return None
        with self.rt.sessions() as session:
            addresses = dict(
                session.execute(
                    select(Delivery.id, Contact.email)
                    .join(Contact, Contact.id == Delivery.contact_id)
                    .where(Delivery.send_id == scheduled.send_id)
                ).all()
            )
        # One delivery per contact of the list that may be mailed.
        assert sorted(addresses.values()) == sorted(mailable)
        self.models[scheduled.send_id] = SendModel(scheduled.send_id, embargo_at, addresses)
        return scheduled.send_id

    @rule(send_id=sends, action=st.sampled_from(["cancel", "pause", "resume", "retry"]))
    @step
    def admin(self, send_id: int | None, action: str) -> None:
        if send_id is not None:
            self.act(send_id, action)

    def act(self, send_id: int, action: str) -> None:
        """Cancel, pause or resume the send, or put its failed and bounced deliveries back
        in line; refused (InvalidStateError) only when the send's state forbids it."""
        if action == "resume":
            self.resume(send_id)
            return
        model = self.models[send_id]
        before = self.send_state(send_id)
        now = self.clock.now()
        try:
            with self.rt.sessions.begin() as session:
                if action == "cancel":
                    cancel_send(session, send_id=send_id, now=now)
                elif action == "pause":
                    pause_send(session, send_id=send_id, now=now)
                else:
                    retry_deliveries(session, send_id=send_id, now=now)
        except InvalidStateError:
            allowed = {
                "cancel": ACTIVE_SEND_STATES,
                "pause": {SendState.SCHEDULED, SendState.ARMED},
                "retry": set(SendState) - {SendState.CANCELLED},
            }[action]
            assert before not in allowed, (action, before)
            return
        # What was claimed when it took effect may still go (a worker finishes what it
        # holds); read after the commit, as no claim can succeed after it.
        if action == "cancel":
            model.cancelled_seq = next(self.seq)
            model.claimed_at_cancel = self.claimed(send_id)
        elif action == "pause":
            model.stop(next(self.seq), self.claimed(send_id))

    def claimed(self, send_id: int | None = None, *, owner: str | None = None) -> frozenset[int]:
        """The deliveries (of the send, or claimed by `owner`) that a worker holds now."""
        query = select(Delivery.id).where(Delivery.state == DeliveryState.SENDING)
        if send_id is not None:
            query = query.where(Delivery.send_id == send_id)
        if owner is not None:
            query = query.where(Delivery.lease_owner == owner)
        with self.rt.sessions() as session:
            return frozenset(session.scalars(query))

    def resume(self, send_id: int) -> None:
        before = self.send_state(send_id)
        try:
            with self.rt.sessions.begin() as session:
                resume_send(session, send_id=send_id, now=self.clock.now(), arm_lead=ARM_LEAD)
        except InvalidStateError:
            assert before not in (SendState.PAUSED, SendState.HELD), before
            return
        self.models[send_id].go_on(next(self.seq))

    # -- time and the scheduler ----------------------------------------------------------

    @rule(seconds=clock_steps, ticks=st.booleans())
    @step
    def time_passes(self, seconds: float, ticks: bool) -> None:
        """The clock moves on; with `ticks`, the scheduler ticks at the end."""
        self.clock.advance(seconds)
        if ticks:
            self.tick_now()

    @rule(send_id=sends, offset=embargo_offsets, ticks=st.booleans())
    @step
    def time_reaches_embargo(self, send_id: int | None, offset: float, ticks: bool) -> None:
        """The clock moves on to just before, at or just after the send's embargo."""
        if send_id is None:
            return
        target = self.models[send_id].embargo_at + timedelta(seconds=offset)
        if target > self.clock.now():
            self.clock.advance((target - self.clock.now()).total_seconds())
        if ticks:
            self.tick_now()

    @rule()
    @step
    def scheduler_ticks(self) -> None:
        self.tick_now()

    def tick_now(self) -> None:
        dispatcher = RecordingDispatcher()
        report = tick(self.rt.sessions, dispatcher, now=self.clock.now(), policy=POLICY)
        self.queue.extend(Queued(batch, at) for batch, at in dispatcher.dispatched)
        for send_id in report.held:
            self.models[send_id].stop(next(self.seq), self.claimed(send_id))
            note("send held")
        if report.takeovers:
            note("lease taken over")

    # -- the broker ----------------------------------------------------------------------

    @rule(loses=st.booleans(), pick=picks)
    @step
    def broker_misbehaves(self, loses: bool, pick: int) -> None:
        """The broker loses every queued message, or hands one out a second time."""
        if not self.queue:
            return  # the broker has nothing for it
        if loses:
            self.queue.clear()
        else:
            self.queue.append(self.queue[pick % len(self.queue)])

    # -- workers -------------------------------------------------------------------------

    @rule(worker=workers, pick=picks)
    @step
    def worker_sends_batch(self, worker: int, pick: int) -> None:
        if not self.queue:
            return  # the broker has nothing for it
        self.deliver(worker, self.take(pick), RelayTransport(self.relay))

    @rule(worker=workers, pick=picks, after=st.integers(0, 3))
    @step
    def worker_stops_gracefully(self, worker: int, pick: int, after: int) -> None:
        """The worker is asked to stop (a deploy) after beginning `after` messages."""
        if not self.queue:
            return  # the broker has nothing for it
        transport = RelayTransport(self.relay)
        self.deliver(
            worker, self.take(pick), transport, should_stop=lambda: transport.calls >= after
        )
        # It finishes the message in flight and begins no other.
        assert transport.calls <= after, transport.calls
        self.generation[worker] += 1

    @rule(
        worker=workers,
        pick=picks,
        kill_at=st.integers(-1, 3),
        accepted_first=st.booleans(),
    )
    @step
    def worker_is_killed(self, worker: int, pick: int, kill_at: int, accepted_first: bool) -> None:
        """The worker is killed mid-batch (see KillingTransport). Its message was never
        acknowledged (acks_late), so the broker puts it back in the queue."""
        if not self.queue:
            return  # the broker has nothing for it
        queued = self.take(pick)
        transport = KillingTransport(
            self.relay, sessions=self.rt.sessions, kill_at=kill_at, accepted_first=accepted_first
        )
        with contextlib.suppress(WorkerKilled):
            self.deliver(worker, queued, transport)
        # The killed lane's task logs its unretrieved exception when collected: now, while
        # the test's log is captured, not at some later moment.
        gc.collect()
        if transport.crash is None:
            return  # the batch ended before the point of the kill: a normal run
        note("worker killed" + (" after the relay took a message" if transport.unrecorded else ""))
        # Undo the clean-up that only Python's unwinding did (see CrashSnapshot).
        transport.crash.restore(self.rt.sessions)
        if transport.unrecorded is not None:
            self.duplicates_allowed[transport.unrecorded.delivery_id] += 1
        self.generation[worker] += 1
        self.queue.append(queued)

    @rule(
        worker=workers,
        pick=picks,
        at=st.integers(-1, 2),
        meanwhile=st.sampled_from(["pause", "cancel", "stall"]),
        stall=stalls,
    )
    @step
    def worker_is_interrupted(
        self, worker: int, pick: int, at: int, meanwhile: str, stall: float
    ) -> None:
        """While the worker sends its batch, an admin pauses or cancels the send, or the
        worker's whole process is frozen for `stall` seconds (see `stall`)."""
        if not self.queue:
            return  # the broker has nothing for it
        queued = self.take(pick)

        def interruption() -> None:
            if meanwhile == "stall":
                self.stall(worker, stall)
            else:
                self.act(queued.batch.send_id, meanwhile)

        transport = InterruptedTransport(self.relay, at=at, meanwhile=interruption)
        self.deliver(worker, queued, transport)
        if transport.interrupted:
            note(f"worker interrupted: {meanwhile}")

    def stall(self, worker: int, seconds: float) -> None:
        """The worker's process is frozen (a VM paused, swapping, SIGSTOP): its lease is not
        renewed, and meanwhile the scheduler ticks and another worker sends whatever the
        broker holds. Each delivery the frozen worker had claimed may then go twice: the
        one in flight, and the others it goes on to send before it notices the takeover
        (see test_a_frozen_worker_sends_at_most_its_message_in_flight_twice)."""
        with self.rt.sessions.begin() as session:
            # On SQLite this waits for a claim the worker may have under way, and no claim
            # can begin until the clock has moved on; after that, none can succeed under
            # the frozen worker's lease.
            session.execute(select(Send.id).limit(1))
            self.clock.advance(seconds)
        for delivery_id in self.claimed(owner=self.owner(worker)):
            self.duplicates_allowed[delivery_id] += 1
        self.tick_now()
        other = (worker + 1) % WORKERS
        failure: list[BaseException] = []

        def send_queued() -> None:
            try:
                while self.queue:
                    self.deliver(other, self.queue.pop(0), RelayTransport(self.relay))
            except BaseException as exc:
                failure.append(exc)

        # In a thread of its own: the frozen worker's event loop is still running.
        thread = threading.Thread(target=send_queued)
        thread.start()
        thread.join()
        if failure:
            raise failure[0]

    # -- the relay -----------------------------------------------------------------------

    @rule(address=addresses, refusal=st.sampled_from([None, *Refusal]))
    @step
    def relay_changes_its_mind(self, address: str, refusal: Refusal | None) -> None:
        """The relay starts refusing the address, for now (451) or for good (550 5.1.1), or
        accepts it again."""
        if refusal is None:
            self.relay.refusals.pop(address, None)
            return
        self.relay.refusals[address] = refusal
        if refusal is Refusal.PERMANENT:
            self.ever_refused_for_good.add(address)

    @rule(down=st.booleans())
    @step
    def relay_goes_down_or_up(self, down: bool) -> None:
        self.relay.down = down

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def engine_keeps_its_promises(self) -> None:
        self.check()
        self.settled = True

    def check(self) -> None:
        with self.rt.sessions() as session:
            deliveries = session.execute(
                select(
                    Delivery.id,
                    Delivery.send_id,
                    Delivery.batch_no,
                    Delivery.state,
                    Delivery.lease_owner,
                    Delivery.smtp_reply,
                )
            ).all()
            leases = {
                (b.send_id, b.batch_no): (b.lease_owner, b.lease_expires_at)
                for b in session.scalars(select(SendBatch))
            }
        received: dict[int, list[Accepted]] = {}
        for message in self.relay.accepted:
            model = self.models[message.send_id]
            assert message.at >= model.embargo_at, f"sent before the embargo: {message}"
            assert message.recipient == model.addresses[message.delivery_id], message
            assert model.may_send(message), (
                f"sent after the send was cancelled, or while it was paused or held, and not "
                f"claimed before: {message}"
            )
            received.setdefault(message.delivery_id, []).append(message)
        for delivery_id, messages in received.items():
            assert len(messages) <= 1 + self.duplicates_allowed[delivery_id], (
                f"delivery {delivery_id} sent {len(messages)} times: {messages}"
            )
        for delivery_id, send_id, batch_no, state, owner, reply in deliveries:
            assert delivery_id in self.models[send_id].addresses
            messages = received.get(delivery_id, [])
            if state is DeliveryState.SENT:
                assert messages, f"delivery {delivery_id} is sent, but the relay has no message"
                assert reply in {m.reply for m in messages}, (delivery_id, reply, messages)
            else:
                assert len(messages) <= self.duplicates_allowed[delivery_id], (
                    f"delivery {delivery_id} is {state.value}, yet the relay took {messages}"
                )
            if state is DeliveryState.SENDING:
                lease_owner, expires_at = leases[(send_id, batch_no)]
                assert lease_owner == owner and expires_at is not None, (
                    f"delivery {delivery_id} is sending for {owner}, but the lease of its "
                    f"batch {batch_no} is {lease_owner!r} until {expires_at}"
                )
            if state in NOT_SENT_FOR_GOOD:
                assert self.models[send_id].addresses[delivery_id] in self.ever_refused_for_good
            assert state is not DeliveryState.FAILED, f"delivery {delivery_id} failed"

    # -- the end: everything still owed goes out -----------------------------------------

    def teardown(self) -> None:
        if not self.settled:
            return  # a step failed; its error is the one to report
        self.relay.down = False
        for address, refusal in list(self.relay.refusals.items()):
            if refusal is Refusal.TEMPORARY:
                del self.relay.refusals[address]
        for n in itertools.count():
            assert n < DRAIN_ROUNDS, f"still unfinished after {n} rounds: {self.unfinished()}"
            self.clock.advance(DRAIN_STEP.total_seconds())
            for send_id in self.models:
                if self.send_state(send_id) in (SendState.PAUSED, SendState.HELD):
                    self.resume(send_id)
            self.tick_now()
            while self.queue:
                self.deliver(n % WORKERS, self.queue.pop(0), RelayTransport(self.relay))
            if not self.unfinished():
                break
        self.check()
        self.tick_now()
        assert not self.queue
        note(f"drained in {n + 1} round(s)")
        note(f"messages accepted: {len(self.relay.accepted)}")
        received = Counter(m.delivery_id for m in self.relay.accepted)
        with self.rt.sessions() as session:
            for model in self.models.values():
                state = session.get(Send, model.send_id)
                assert state is not None
                if model.cancelled_seq is not None:
                    continue
                assert state.state is SendState.COMPLETED, (model.send_id, state.state)
                for delivery_id, address in model.addresses.items():
                    delivery = session.get(Delivery, delivery_id)
                    assert delivery is not None
                    if delivery.state is DeliveryState.SENT:
                        assert received[delivery_id] >= 1
                    else:
                        assert delivery.state in NOT_SENT_FOR_GOOD, (delivery_id, delivery.state)
                        assert address in self.ever_refused_for_good

    def unfinished(self) -> dict[int, list[str]]:
        """Sends not cancelled with deliveries in an unfinished state, or work queued."""
        with self.rt.sessions() as session:
            rows = session.execute(
                select(Delivery.send_id, Delivery.id, Delivery.state).where(
                    Delivery.state.not_in(FINAL)
                )
            ).all()
        found: dict[int, list[str]] = {}
        for send_id, delivery_id, state in rows:
            if self.models[send_id].cancelled_seq is None:
                found.setdefault(send_id, []).append(f"{delivery_id}:{state.value}")
        return found


def machine_class(world: World) -> type[EngineMachine]:
    return type("Machine", (EngineMachine,), {"world": world})


def test_the_engine_keeps_its_promises_whatever_happens(database_url: str, tmp_path: Path) -> None:
    world = make_world(database_url, tmp_path / "var")
    examples = 10 if database_url.startswith("postgresql") else 40
    try:
        run_machine(machine_class(world), max_examples=examples)
    finally:
        world.runtime.close()


@pytest.fixture
def machine(database_url: str, tmp_path: Path) -> Iterator[EngineMachine]:
    """The machine, for steps written out by hand."""
    world = make_world(database_url, tmp_path / "var")
    yield machine_class(world)()
    world.runtime.close()


def test_a_killed_workers_batch_waits_for_the_takeover_whoever_gets_its_message(
    machine: EngineMachine,
) -> None:
    """The broker hands a killed worker's message out again (acks_late) after its lease
    expired, before any tick: the new worker must leave the batch to the takeover, or the
    dead worker's `sending` deliveries are never sent."""
    send_id = machine.first_send(lead=5.0, batch_size=3)
    assert isinstance(send_id, int)
    machine.time_reaches_embargo(send_id=send_id, offset=0.0, ticks=True)
    machine.worker_is_killed(worker=0, pick=0, kill_at=0, accepted_first=True)
    machine.engine_keeps_its_promises()
    machine.time_passes(seconds=LEASE.total_seconds() + 1, ticks=False)
    redelivered = machine.queue.pop()
    assert redelivered.batch == BatchRef(send_id, 0)
    machine.deliver(1, redelivered, RelayTransport(machine.relay))
    machine.engine_keeps_its_promises()
    machine.teardown()
    assert Counter(m.delivery_id for m in machine.relay.accepted).most_common(1)[0][1] == 2


def test_a_frozen_worker_sends_at_most_its_message_in_flight_twice(
    machine: EngineMachine,
) -> None:
    send_id = machine.first_send(lead=5.0, batch_size=5)
    machine.time_reaches_embargo(send_id=send_id, offset=0.0, ticks=True)
    # Frozen for 20 s (the lease is 15 s) as it begins its first message, with a second
    # claimed; meanwhile the scheduler takes the batch over and another worker sends it.
    machine.worker_is_interrupted(worker=0, pick=0, at=0, meanwhile="stall", stall=20.0)
    received = Counter(m.recipient for m in machine.relay.accepted)
    assert sorted(received) == sorted(ADDRESSES)
    twice = [address for address, times in received.items() if times > 1]
    assert len(twice) <= 1, f"sent twice: {twice}"


@pytest.mark.xfail(
    strict=True,
    reason="a worker notices a pause by reading the send's state every half second of real "
    "time; a claimed chunk sent faster than that (as here, in-process with no relay) goes out "
    "whole. The chaos test of a pause checks the half-second rule with real processes",
)
def test_a_pause_lets_only_the_message_in_flight_go(machine: EngineMachine) -> None:
    send_id = machine.first_send(lead=5.0, batch_size=5)
    assert isinstance(send_id, int)
    machine.time_reaches_embargo(send_id=send_id, offset=0.0, ticks=True)
    machine.worker_is_interrupted(worker=0, pick=0, at=0, meanwhile="pause", stall=0.0)
    (stop,) = machine.models[send_id].stops
    after = [m.recipient for m in machine.relay.accepted if m.seq > stop.start]
    assert len(after) <= 1, f"sent after the pause: {after}"
