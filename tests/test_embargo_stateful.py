"""The press office's embargo workflow under random sequences of what a press office does.

Journalists on one list, some vetted for embargoed material (their own flag or their
outlet's), one a known embargo breaker, the rest not vetted. The press office schedules a
release (of an organisation that wants lift notices, or of one that turned them off), with
or without a pre-brief (now, or at an hour of its own); moves the embargo later or earlier,
by minutes or by a fraction of a second (also in the last second before the lift); lifts it
now; withdraws the release; vets a journalist, takes the flag away, or records a breach.
The manual clock moves on (across the pre-brief's hour, the arming and the lift) and the
scheduler ticks; workers take batches off the broker's queue and send them, and some are
interrupted: after claiming messages, or while they wait for the lift, the press office
acts, the scheduler may tick and another worker may send what is queued, and then the first
worker carries on.

After every step, from what the relay accepted (stamped with the manual clock) and what the
model knows of the embargo in force at each point of the run:
1. a journalist not vetted when the worker claimed the message (a breaker is not vetted),
   and who had not already received the embargoed copy, received nothing before the lift in
   force at that moment; and the embargoed copy went to nobody else;
2. nobody received a send's message twice, nor both the pre-brief and the public release;
   notices went only to those who had the embargoed copy;
3. nothing of a withdrawn release was accepted after the withdrawal but its withdrawal
   notice and what a worker already held; likewise for a pre-brief cancelled by a change;
4. nothing was accepted before its send's time: the lift in force for the public send and
   the lift notice, the pre-brief's own hour for the pre-brief; and an embargoed copy that
   went before the lift carried the embargo banner.
At the end, with every queued batch sent and the clock past every embargo: every public
send not withdrawn is completed, and each journalist received exactly one of the public
release or the pre-brief, the pre-briefed also a lift notice at or after the final lift
(unless the organisation turned them off), and the last embargo a pre-briefed journalist
was told (banner or moved notice) is the one in force; the pre-briefed of a withdrawn
release were told of the withdrawal.

The cases it once found are written out step by step at the end of this file: a lift
notice going out when the embargo then moves (the move is refused); a pre-brief batch under
way when the embargo moves, when the release is withdrawn, or when the lift notice is
armed (each journalist whose copy was in flight hears of it); a journalist vetted after
scheduling when the pre-brief and the public send arm in the same tick (one of them only).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest
from hypothesis import currently_in_test_context, event
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from sqlalchemy import exists, func, select, update

from distributor.actors import Actor, Role
from distributor.audience_rules import vetted_for_embargoes
from distributor.breaches import record_breach
from distributor.embargo_changes import lift_embargo, move_embargo, withdraw_release
from distributor.engine.batch import BatchJob, SendingParts, deliver_batch
from distributor.engine.dbclock import FollowingClock
from distributor.engine.dispatch import BatchRef, RecordingDispatcher
from distributor.engine.lanes import LaneSender
from distributor.engine.retries import RetryPolicy
from distributor.engine.tick import SchedulerPolicy, tick
from distributor.errors import InvalidEmbargoError, InvalidStateError, NotFoundError
from distributor.models import Contact, Delivery, Outlet, Send
from distributor.prebriefs import MIN_PREBRIEF_LEAD, PrebriefRequest
from distributor.scheduling import schedule_send
from distributor.states import ACTIVE_SEND_STATES, DeliveryState, SendKind, SendState
from distributor.transport import MailTransport
from tests.support.embargo_model import (
    EMAILS,
    LIST,
    OUTLET_OF,
    ZONE,
    EmbargoChange,
    EmbargoWorld,
    InFlight,
    ReadingRelay,
    ReleaseRun,
    Stop,
    VettingChange,
    VettingHistory,
    described,
    make_embargo_world,
)
from tests.support.engine_model import Accepted, InterruptedTransport, RelayTransport
from tests.support.machines import run_machine

ARM_LEAD = timedelta(seconds=10)
# No worker dies here, so no lease may run out while a worker is frozen mid-batch.
LEASE = timedelta(hours=1)
REDISPATCH_AFTER = timedelta(seconds=60)
POLICY = SchedulerPolicy(
    arm_lead=ARM_LEAD,
    redispatch_after=REDISPATCH_AFTER,
    # Late sends wait for an admin: not what this test is about, so never late enough.
    max_lateness=timedelta(days=7),
    retry_window=timedelta(days=7),
    batch_size=2,
)
RETRY = RetryPolicy(initial=timedelta(seconds=5), window=timedelta(days=7))
CLAIM_CHUNK = 2
WORKERS = 2
MAX_RUNS = 3
DRAIN_ROUNDS = 40
PRESS_OFFICER = Actor("Pat", Role.PRESS_OFFICER)

ACTIVE_OR_WAITING = (SendState.SCHEDULED, SendState.ARMED)


def seq_of(message: Accepted) -> int:
    return message.seq


def note(what: str) -> None:
    """Count what happened in Hypothesis's statistics (steps written out by hand: nothing)."""
    if currently_in_test_context():
        event(what)


F = TypeVar("F", bound=Callable[..., Any])


def step(method: F) -> F:
    """Marks the machine unsettled until the invariants have passed after this step, and
    forgets what the preconditions read of the state before it."""

    @functools.wraps(method)
    def run(self: EmbargoMachine, *args: Any, **kwargs: Any) -> Any:
        self.settled = False
        self.read_between_steps.clear()
        try:
            return method(self, *args, **kwargs)
        finally:
            self.read_between_steps.clear()

    return run  # type: ignore[return-value]


leads = st.floats(20, 1500, allow_nan=False)
# Where the pre-brief's hour lies between now (0) and the latest it may be (1), and how long
# before the lift it must go at the latest (its min_lead); beyond 1 it is refused.
prebriefs = st.one_of(
    st.none(),
    st.tuples(st.sampled_from([0.0, 0.0, 0.5, 1.0, 1.05]), st.sampled_from([300.0, 30.0])),
    st.tuples(st.just(0.0), st.sampled_from([300.0, 30.0])),
)
# The first release of a run is always scheduled, the pre-brief (if any) in time.
first_leads = st.floats(360, 1500, allow_nan=False)
first_prebriefs = st.one_of(
    st.none(), st.tuples(st.sampled_from([0.0, 0.0, 0.5, 1.0]), st.sampled_from([300.0, 30.0]))
)
batch_sizes = st.integers(1, 3)
# A move, in seconds from the embargo in force: minutes, or a fraction of a second.
shifts = st.sampled_from([-400.0, -30.0, -1.0, -0.3, 0.3, 1.0, 30.0, 400.0])
# What the press office does to a release: mostly moves, now and then a lift now or a
# withdrawal (which ignore the seconds).
press_office_actions = st.one_of(
    st.tuples(st.just("move"), shifts),
    st.tuples(st.sampled_from(["move", "lift", "withdraw"]), st.sampled_from([30.0, 400.0])),
)
# Where the clock goes: to just before, at or just after an instant of a release, or on by
# some seconds (None).
clock_moves = st.one_of(
    st.tuples(
        st.sampled_from(["prebrief", "prebrief deadline", "arming", "lift"]),
        st.sampled_from([-1.0, -0.001, 0.0, 0.001, 1.0]),
    ),
    st.tuples(
        st.none(),
        st.one_of(
            st.floats(0, 3, allow_nan=False),
            st.floats(3, 120, allow_nan=False),
            st.sampled_from(
                [ARM_LEAD.total_seconds(), REDISPATCH_AFTER.total_seconds() + 0.001, 300.001]
            ),
            st.floats(120, 600, allow_nan=False),
        ),
    ),
)
workers = st.integers(0, WORKERS - 1)
picks = st.integers(0, 7)
# Which kind of send's batch a worker takes, when the queue holds one (None: any); mostly
# those the embargo decides.
kinds = st.one_of(
    st.sampled_from([SendKind.PREBRIEF, SendKind.LIFT_NOTICE, SendKind.PUBLIC]),
    st.sampled_from([None, SendKind.PREBRIEF, SendKind.MOVE_NOTICE, SendKind.WITHDRAW_NOTICE]),
)
FLAG_CHANGES = ("vet", "unvet", "breach", "breach with outlet", "outlet unvetted")
flag_changes = st.tuples(st.sampled_from(FLAG_CHANGES), st.sampled_from(EMAILS))
# What happens while a worker is frozen mid-batch: the press office acts on the batch's
# release, or one of the batch's journalists loses the vetting or breaks an embargo.
meanwhiles = st.one_of(
    press_office_actions,
    press_office_actions,
    press_office_actions,
    st.tuples(st.sampled_from(["unvet", "breach"]), st.just(0.0)),
)


class EmbargoMachine(RuleBasedStateMachine):
    world: ClassVar[EmbargoWorld]

    def __init__(self) -> None:
        super().__init__()
        self.world.reset()
        self.rt = self.world.runtime
        self.clock = self.world.clock
        self.seq = itertools.count(1)
        self.relay = ReadingRelay(
            clock=self.clock, verp=self.rt.bounces, next_seq=lambda: next(self.seq)
        )
        self.vetting = VettingHistory()
        self.runs: list[ReleaseRun] = []
        self.run_of_send: dict[int, ReleaseRun] = {}
        self.queue: list[BatchRef] = []
        # While a worker sends, what was in flight at each change, narrowed when it is done.
        self.stepping = False
        self.open_in_flight: list[InFlight] = []
        # What the preconditions read from the database, kept until the next step.
        self.read_between_steps: dict[str, Any] = {}
        self.settled = True

    # -- helpers -------------------------------------------------------------------------

    def parts(self, worker: int) -> SendingParts:
        return SendingParts(
            sessions=self.rt.sessions,
            engine=self.rt.engine,
            database_clock=FollowingClock(self.clock),
            local_clock=self.clock,
            make_builder=self.rt.make_builder,
            retry=RETRY,
            relay_first_wait=timedelta(seconds=5),
            owner=f"worker:host{worker}:{1000 + worker}:embargo",
            db_patience=5.0,
        )

    def deliver(self, worker: int, batch: BatchRef, transport: MailTransport) -> None:
        job = BatchJob(
            batch=batch,
            claim_chunk=CLAIM_CHUNK,
            max_wait=ARM_LEAD + timedelta(seconds=5),
            lease=LEASE,
            deadline=time.monotonic() + 600,
        )
        outer = not self.stepping
        self.stepping = True
        try:
            deliver_batch(job, parts=self.parts(worker), transport=transport)
        finally:
            if outer:
                self.stepping = False
                for in_flight in self.open_in_flight:
                    in_flight.settle(self.relay.accepted)
                self.open_in_flight.clear()

    def in_flight_now(self) -> InFlight:
        """A new point of the run, with the deliveries a worker holds at it."""
        with self.rt.sessions() as session:
            held = set(
                session.scalars(select(Delivery.id).where(Delivery.state == DeliveryState.SENDING))
            )
        in_flight = InFlight(next(self.seq), held)
        if self.stepping:
            self.open_in_flight.append(in_flight)
        else:
            assert not held, f"deliveries claimed while no worker runs: {held}"
        return in_flight

    def take(self, pick: int, kind: SendKind | None = None) -> BatchRef:
        """A message off the broker's queue: one for a batch with work left, if any is, and
        of a send of `kind`, if any is."""
        with self.rt.sessions() as session:
            unsent = {
                BatchRef(send_id, batch_no): send_kind
                for send_id, batch_no, send_kind in session.execute(
                    select(Delivery.send_id, Delivery.batch_no, Send.kind)
                    .join(Send, Send.id == Delivery.send_id)
                    .where(Delivery.state.in_([DeliveryState.PENDING, DeliveryState.DEFERRED]))
                    .distinct()
                )
            }
        live = [n for n, batch in enumerate(self.queue) if batch in unsent]
        chosen = [n for n in live if unsent[self.queue[n]] is kind] or live
        return self.queue.pop(chosen[pick % len(chosen)] if chosen else pick % len(self.queue))

    def remembered(self, name: str, read: Callable[[], Any]) -> Any:
        """For preconditions, which Hypothesis asks many times between two steps."""
        if name not in self.read_between_steps:
            self.read_between_steps[name] = read()
        return self.read_between_steps[name]

    def free_releases(self) -> list[int]:
        """Releases that the press office may schedule: none of their sends still active
        (one public send of a release at a time)."""
        releases = [self.world.release_with_notices, self.world.quiet_release]
        return [r for r in releases if not self.has_active_sends(r)]

    def has_active_sends(self, release_id: int) -> bool:
        with self.rt.sessions() as session:
            return bool(
                session.scalar(
                    select(
                        exists().where(
                            Send.release_id == release_id, Send.state.in_(ACTIVE_SEND_STATES)
                        )
                    )
                )
            )

    def public_may_move(self, run: ReleaseRun) -> bool:
        """What move and lift need: the public send active, and none of it nor of the lift
        notice claimed yet."""
        lifting = [run.public_id, *([run.lift_notice_id] if run.lift_notice_id else [])]
        with self.rt.sessions() as session:
            public = session.get_one(Send, run.public_id)
            started = session.scalar(
                select(
                    exists().where(
                        Delivery.send_id.in_(lifting), Delivery.first_claimed_at.is_not(None)
                    )
                )
            )
            return public.state in ACTIVE_SEND_STATES and not started

    def prebrief_gone_out(self, run: ReleaseRun) -> bool:
        with self.rt.sessions() as session:
            return bool(
                session.scalar(
                    select(
                        exists().where(
                            Delivery.send_id == run.prebrief_id,
                            Delivery.first_claimed_at.is_not(None),
                        )
                    )
                )
            )

    def state_of(self, send_id: int) -> SendState:
        with self.rt.sessions() as session:
            return session.get_one(Send, send_id).state

    # -- the press office ----------------------------------------------------------------

    @initialize(
        quiet=st.booleans(), lead=first_leads, prebrief=first_prebriefs, batch_size=batch_sizes
    )
    @step
    def first_schedule(
        self,
        quiet: bool,
        lead: float,
        prebrief: tuple[float, float] | None,
        batch_size: int,
    ) -> None:
        self.schedule(quiet, lead, prebrief, batch_size)

    @precondition(
        lambda self: len(self.runs) < MAX_RUNS and self.remembered("free", self.free_releases)
    )
    @rule(quiet=st.booleans(), lead=leads, prebrief=prebriefs, batch_size=batch_sizes)
    @step
    def schedule(
        self,
        quiet: bool,
        lead: float,
        prebrief: tuple[float, float] | None,
        batch_size: int,
    ) -> None:
        """Schedule a release to the list (of the organisation that turned lift notices off,
        if `quiet`, or is the only one free), its embargo `lead` seconds ahead; with a
        pre-brief at a fraction of the time it may take (0: now)."""
        release_id = self.free_releases()[-quiet]
        notices = release_id == self.world.release_with_notices
        now = self.clock.now()
        embargo_at = now + timedelta(seconds=lead)
        request = None
        refused: type[Exception] | None = None
        if prebrief is not None:
            fraction, min_lead = prebrief
            at = now + timedelta(seconds=max(fraction * (lead - min_lead), 0.0))
            request = PrebriefRequest(at=at, min_lead=timedelta(seconds=min_lead))
            if at > embargo_at - request.min_lead:
                refused = InvalidEmbargoError
            elif not self.vetting.now.vetted:
                refused = NotFoundError
        try:
            with self.rt.sessions.begin() as session:
                scheduled = schedule_send(
                    session,
                    release_id=release_id,
                    list_names=[LIST],
                    embargo_at=embargo_at,
                    embargo_zone=ZONE,
                    now=now,
                    batch_size=batch_size,
                    again=True,  # the release again, after an earlier run ended
                    prebrief=request,
                )
        except (InvalidEmbargoError, NotFoundError) as exc:
            assert type(exc) is refused, f"refused: {exc}"
            note(f"schedule refused: {type(exc).__name__}")
            return
        assert refused is None, f"scheduled, though it should be refused with {refused}"
        assert scheduled.recipients == len(EMAILS)
        run = ReleaseRun(
            release_id=release_id,
            public_id=scheduled.send_id,
            embargo_at=embargo_at,
            notices_wanted=notices,
        )
        self.run_of_send[run.public_id] = run
        if scheduled.prebrief is not None:
            briefed = scheduled.prebrief
            assert briefed.recipients == len(self.vetting.now.vetted)
            assert (briefed.lift_notice_send_id is not None) == notices
            run.prebrief_id, run.prebrief_at = briefed.send_id, briefed.at
            run.lift_notice_id = briefed.lift_notice_send_id
            self.run_of_send[briefed.send_id] = run
            if briefed.lift_notice_send_id is not None:
                self.run_of_send[briefed.lift_notice_send_id] = run
            note("scheduled with a pre-brief" + (" now" if briefed.at == now else " later"))
        self.runs.append(run)

    def latest_of(self, release_id: int) -> ReleaseRun:
        return [run for run in self.runs if run.release_id == release_id][-1]

    def open_runs(self) -> list[ReleaseRun]:
        """Runs that a move, a lift or a withdrawal may still change."""
        latest = {run.release_id: run for run in self.runs}
        return [run for run in latest.values() if run.withdrawn is None]

    def movable_runs(self) -> list[ReleaseRun]:
        """Open runs whose public send has not started: the embargo may still change."""
        return [run for run in self.open_runs() if self.public_may_move(run)]

    @precondition(lambda self: self.open_runs())
    @rule(
        which=st.booleans(),
        action=st.one_of(press_office_actions, flag_changes),
        ticks=st.booleans(),
    )
    @step
    def press_office_acts(self, which: bool, action: tuple[str, Any], ticks: bool) -> None:
        """The press office moves the embargo by some seconds, lifts it now or withdraws the
        release (a move or a lift, of a release whose public send has not started, if one
        has not), or changes a journalist's flags; with `ticks`, the scheduler ticks after."""
        what, argument = action
        if what in FLAG_CHANGES:
            self.change_flags(argument, what)
        else:
            self.act(which, what, argument)
        if ticks:
            self.tick_now()

    def act(self, which: bool, what: str, shift: float) -> None:
        runs = self.open_runs()
        if what in ("move", "lift"):
            # Refused once the public send has started; a worker's interruption tries that.
            runs = self.remembered("movable", self.movable_runs)
            if not runs:
                return
        run = runs[-which]
        if what == "move":
            self.move(run, shift)
        elif what == "lift":
            self.lift(run)
        else:
            self.withdraw(run)

    def move(self, run: ReleaseRun, shift: float) -> None:
        """Move the embargo `shift` seconds from the one in force."""
        now = self.clock.now()
        embargo_at = run.current_embargo + timedelta(seconds=shift)
        allowed = self.public_may_move(run)
        prebrief_cancelled = (
            run.prebrief_id is not None
            and self.state_of(run.prebrief_id) in ACTIVE_SEND_STATES
            and run.prebrief_at is not None
            and run.prebrief_at > embargo_at - MIN_PREBRIEF_LEAD
            and not self.prebrief_gone_out(run)
        )
        try:
            with self.rt.sessions.begin() as session:
                change = move_embargo(
                    session,
                    release_id=run.release_id,
                    embargo_at=embargo_at,
                    embargo_zone=ZONE,
                    now=now,
                    arm_lead=ARM_LEAD,
                    batch_size=2,
                )
        except InvalidEmbargoError:
            assert embargo_at <= now
            note("move refused: into the past")
            return
        except InvalidStateError:
            assert embargo_at > now and not allowed
            note("move refused: the public send has started or ended")
            return
        assert embargo_at > now and allowed
        self.changed(run, change.embargo_at, lifted=False, notice=change.notice_send_id)
        assert (run.prebrief_id in change.cancelled_prebriefs) == prebrief_cancelled
        note("embargo moved " + ("later" if shift > 0 else "earlier"))

    def changed(
        self, run: ReleaseRun, embargo_at: datetime, *, lifted: bool, notice: int | None
    ) -> None:
        """Remember a move or a lift, from this point of the run on."""
        in_flight = self.in_flight_now()
        run.changes.append(EmbargoChange(in_flight.seq, embargo_at, lifted, in_flight))
        if notice is not None:
            self.run_of_send[notice] = run
        if (
            run.prebrief_id is not None
            and run.prebrief_cancelled is None
            and self.state_of(run.prebrief_id) is SendState.CANCELLED
        ):
            run.prebrief_cancelled = Stop(in_flight.seq, in_flight)

    def lift(self, run: ReleaseRun) -> None:
        now = self.clock.now()
        allowed = self.public_may_move(run)
        try:
            with self.rt.sessions.begin() as session:
                lift_embargo(session, release_id=run.release_id, now=now, arm_lead=ARM_LEAD)
        except InvalidStateError:
            assert not allowed
            return
        assert allowed
        self.changed(run, now, lifted=True, notice=None)
        note("embargo lifted now")

    def withdraw(self, run: ReleaseRun) -> None:
        active = self.has_active_sends(run.release_id)
        try:
            with self.rt.sessions.begin() as session:
                _, change = withdraw_release(
                    session, release_id=run.release_id, now=self.clock.now(), batch_size=2
                )
        except InvalidStateError:
            assert not active
            return
        assert active
        in_flight = self.in_flight_now()
        if run.withdrawn is None:
            run.withdrawn = Stop(in_flight.seq, in_flight)
        # Withdrawn again, while its notice is still going: another notice replaces it.
        if change.notice_send_id is not None:
            self.run_of_send[change.notice_send_id] = run
        note("release withdrawn" + (" with a notice" if change.notice_send_id else ""))

    def change_flags(self, email: str, change: str) -> None:
        """A journalist is vetted or no longer, or breaks an embargo (with the outlet, if
        it published); or the outlet is no longer vetted."""
        before = self.vetting.now
        outlet = OUTLET_OF[email]
        with self.rt.sessions.begin() as session:
            contact = session.scalars(select(Contact).where(Contact.email == email)).one()
            if change in ("vet", "unvet"):
                contact.embargo_vetted = change == "vet"
                after = before.with_contact(email, vetted=change == "vet")
            elif change == "breach" or (change == "breach with outlet" and outlet):
                record_breach(
                    session,
                    email=email,
                    release_id=self.world.release_with_notices,
                    actor=PRESS_OFFICER,
                    now=self.clock.now(),
                    outlet_too=change == "breach with outlet",
                )
                after = before.with_contact(email, breaker=True)
                if change == "breach with outlet":
                    after = after.with_outlet(outlet, breaker=True)
            elif change == "outlet unvetted" and outlet:
                session.execute(
                    update(Outlet).where(Outlet.name == outlet).values(embargo_vetted=False)
                )
                after = before.with_outlet(outlet, vetted=False)
            else:
                return  # a freelance journalist has no outlet
        in_flight = self.in_flight_now()
        self.vetting.changes.append(VettingChange(in_flight.seq, before, after, in_flight))
        with self.rt.sessions() as session:
            vetted = set(
                session.scalars(
                    select(Contact.email)
                    .outerjoin(Outlet, Outlet.id == Contact.outlet_id)
                    .where(vetted_for_embargoes())
                )
            )
        assert vetted == after.vetted, (vetted, after.vetted)
        note(f"flags: {change}")

    # -- time and the scheduler ----------------------------------------------------------

    @rule(which=st.booleans(), to=clock_moves, ticks=st.booleans())
    @step
    def time_passes(self, which: bool, to: tuple[str | None, float], ticks: bool) -> None:
        """The clock moves on by some seconds, or to just before, at or just after an
        instant of a release (the pre-brief's hour, the latest hour a pre-brief may keep,
        the arming, the lift); with `ticks`, the scheduler ticks after."""
        instant, seconds = to
        runs = self.open_runs()
        if instant is None or not runs:
            self.clock.advance(seconds)
        else:
            self.reach(runs[-which], instant, offset=seconds)
        if ticks:
            self.tick_now()

    def reach(self, run: ReleaseRun, instant: str, *, offset: float) -> None:
        lift = run.current_embargo
        reached = {
            "prebrief": run.prebrief_at or lift,
            "prebrief deadline": lift - MIN_PREBRIEF_LEAD,
            "arming": lift - ARM_LEAD,
            "lift": lift,
        }[instant] + timedelta(seconds=offset)
        if reached > self.clock.now():
            self.clock.advance((reached - self.clock.now()).total_seconds())

    def tick_now(self) -> None:
        dispatcher = RecordingDispatcher()
        tick(self.rt.sessions, dispatcher, now=self.clock.now(), policy=POLICY)
        # A batch queued again while its message waits is one message to a worker (the
        # second finds nothing due): one is enough here.
        self.queue.extend(b for b, _ in dispatcher.dispatched if b not in self.queue)

    # -- workers -------------------------------------------------------------------------

    def work_due(self) -> bool:
        """Whether a tick would queue something: a send due within the arming lead with
        deliveries left."""
        with self.rt.sessions() as session:
            return bool(
                session.scalar(
                    select(
                        exists().where(
                            Delivery.send_id == Send.id,
                            Delivery.state.in_([DeliveryState.PENDING, DeliveryState.DEFERRED]),
                            Send.state.in_(ACTIVE_OR_WAITING),
                            Send.embargo_at <= self.clock.now() + ARM_LEAD,
                        )
                    )
                )
            )

    def queue_is_filled(self) -> bool:
        """A worker finds the queue empty while work is due: the scheduler ticks first (it
        does every second)."""
        if not self.queue:
            self.tick_now()
        return bool(self.queue)

    @precondition(lambda self: self.queue or self.remembered("due", self.work_due))
    @rule(worker=workers, pick=picks, kind=kinds)
    @step
    def worker_sends_batch(self, worker: int, pick: int, kind: SendKind | None) -> None:
        if self.queue_is_filled():
            self.deliver(worker, self.take(pick, kind), RelayTransport(self.relay))

    @precondition(lambda self: self.queue or self.remembered("due", self.work_due))
    @rule(
        worker=workers,
        pick=picks,
        kind=kinds,
        # Later messages are begun while the worker claims its next chunk in a thread of its
        # own, which would race with the interruption.
        at=st.sampled_from([-1, 0, 0]),
        meanwhile=meanwhiles,
        then_tick=st.booleans(),
        others_send=st.booleans(),
    )
    @step
    def worker_is_interrupted(
        self,
        worker: int,
        pick: int,
        kind: SendKind | None,
        at: int,
        meanwhile: tuple[str, float],
        then_tick: bool,
        others_send: bool,
    ) -> None:
        """Just before the worker begins its first message (with the next one claimed too),
        or as it connects, before it waits for the lift (`at` -1), the press office acts on
        the batch's release; then the scheduler may tick, and another worker send what the
        broker holds."""
        if not self.queue_is_filled():
            return
        batch = self.take(pick, kind)
        action = self.interruption(worker, batch, meanwhile, then_tick, others_send)
        transport = InterruptedTransport(self.relay, at=at, meanwhile=action)
        self.deliver(worker, batch, transport)
        if transport.interrupted:
            kind_sent = self.kinds()[batch.send_id].value
            note(f"worker interrupted sending {kind_sent} at {at}: {meanwhile[0]}")

    @precondition(lambda self: self.queue or self.remembered("due", self.work_due))
    @rule(
        worker=workers,
        pick=picks,
        kind=kinds,
        before=st.sampled_from([0.001, 0.3, 1.0, 5.0]),
        meanwhile=meanwhiles,
        then_tick=st.booleans(),
        others_send=st.booleans(),
    )
    @step
    def worker_is_interrupted_waiting(
        self,
        worker: int,
        pick: int,
        kind: SendKind | None,
        before: float,
        meanwhile: tuple[str, float],
        then_tick: bool,
        others_send: bool,
    ) -> None:
        """While the worker waits for the lift, `before` seconds ahead of it, the press
        office acts on the batch's release (and so on, as above)."""
        if not self.queue_is_filled():
            return
        batch = self.take(pick, kind)
        run = self.run_of_send[batch.send_id]
        action = self.interruption(worker, batch, meanwhile, then_tick, others_send)
        fired: list[bool] = []

        def fire() -> None:
            fired.append(True)
            action()

        self.clock.when(run.current_embargo - timedelta(seconds=before), fire)
        try:
            self.deliver(worker, batch, RelayTransport(self.relay))
        finally:
            self.clock.clear_hooks()
        if fired:
            note(f"worker interrupted waiting for the lift: {meanwhile[0]}")

    def interruption(
        self,
        worker: int,
        batch: BatchRef,
        meanwhile: tuple[str, float],
        then_tick: bool,
        others_send: bool,
    ) -> Callable[[], None]:
        # The release's run now: a batch of an earlier run may still be on the queue.
        run = self.latest_of(self.run_of_send[batch.send_id].release_id)
        what, shift = meanwhile

        def act() -> None:
            if what == "move":
                self.move(run, shift)
            elif what == "lift":
                self.lift(run)
            elif what == "withdraw":
                self.withdraw(run)
            else:
                self.change_flags(self.journalist_of_batch(batch), what)
            if then_tick:
                self.tick_now()
            if others_send:
                self.others_send((worker + 1) % WORKERS)

        return act

    def journalist_of_batch(self, batch: BatchRef) -> str:
        """A journalist the batch goes to (the first still vetted, if any)."""
        with self.rt.sessions() as session:
            emails = list(
                session.scalars(
                    select(Contact.email)
                    .join(Delivery, Delivery.contact_id == Contact.id)
                    .where(Delivery.send_id == batch.send_id, Delivery.batch_no == batch.batch_no)
                    .order_by(Delivery.id)
                )
            )
        vetted = [e for e in emails if self.vetting.now.allows(e)]
        return (vetted or emails or list(EMAILS))[0]

    def others_send(self, worker: int) -> None:
        """Another worker sends everything the broker holds, in a thread of its own: the
        frozen worker's event loop is still running."""
        failure: list[BaseException] = []

        def send_queued() -> None:
            try:
                while self.queue:
                    self.deliver(worker, self.queue.pop(0), RelayTransport(self.relay))
            except BaseException as exc:
                failure.append(exc)

        thread = threading.Thread(target=send_queued)
        thread.start()
        thread.join()
        if failure:
            raise failure[0]

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def promises_kept(self) -> None:
        self.check()
        self.settled = True

    def kinds(self) -> dict[int, SendKind]:
        with self.rt.sessions() as session:
            return {send_id: kind for send_id, kind in session.execute(select(Send.id, Send.kind))}

    def check(self) -> None:
        kinds = self.kinds()
        seen: set[tuple[int, str]] = set()
        prebriefed: dict[tuple[int, str], int] = {}  # (public send, journalist): when
        public: set[tuple[int, str]] = set()
        for message in self.relay.accepted:
            run = self.run_of_send[message.send_id]
            kind = kinds[message.send_id]
            who = (run.public_id, message.recipient)
            lift = run.embargo_in_force(message.seq)
            what = f"{kind.value} {message}, lift in force {lift}"
            assert (message.send_id, message.recipient) not in seen, f"sent twice: {what}"
            seen.add((message.send_id, message.recipient))
            if run.withdrawn is not None and kind is not SendKind.WITHDRAW_NOTICE:
                assert run.withdrawn.lets_through(message), f"sent after the withdrawal: {what}"
            if who not in prebriefed and not self.vetting.vetted_at_claim(message):
                assert kind is not SendKind.PREBRIEF, f"embargoed copy to the unvetted: {what}"
                assert message.at >= lift, (
                    f"sent to a journalist not vetted before the lift: {what}"
                )
            if kind is SendKind.PREBRIEF:
                assert run.prebrief_at is not None and message.at >= run.prebrief_at, what
                if run.prebrief_cancelled is not None:
                    assert run.prebrief_cancelled.lets_through(message), (
                        f"pre-brief sent after it was cancelled: {what}"
                    )
                if message.at < lift:
                    assert self.relay.announced(message.seq) is not None, (
                        f"embargoed copy without its banner before the lift: {what}, "
                        f"subject {self.relay.subjects[message.seq]!r}"
                    )
                assert who not in public, f"pre-brief after the public release: {what}"
                prebriefed[who] = message.seq
            elif kind in (SendKind.PUBLIC, SendKind.LIFT_NOTICE):
                assert message.at >= lift, f"sent before the lift in force: {what}"
            if kind is SendKind.PUBLIC:
                assert who not in prebriefed, f"the public release to the pre-briefed: {what}"
                public.add(who)
            if kind.is_notice:
                assert who in prebriefed, f"a notice to one without the embargoed copy: {what}"

    # -- the end: everything still owed goes out -----------------------------------------

    def teardown(self) -> None:
        if not self.settled:
            return  # a step failed; its error is the one to report
        self.drain()
        self.check()
        self.check_the_end()
        note(f"messages accepted: {len(self.relay.accepted)}")

    def drain(self) -> None:
        """Every queued batch sent, the scheduler ticking, and the clock on to the next
        instant still ahead, until no send is left to go."""
        for n in itertools.count():
            self.tick_now()
            while self.queue:
                self.deliver(n % WORKERS, self.queue.pop(0), RelayTransport(self.relay))
            self.tick_now()
            with self.rt.sessions() as session:
                active = session.scalar(
                    select(func.count()).where(Send.state.in_(ACTIVE_SEND_STATES))
                )
                upcoming = session.scalar(
                    select(func.min(Send.embargo_at)).where(
                        Send.state.in_(ACTIVE_OR_WAITING), Send.embargo_at > self.clock.now()
                    )
                )
            if not active and not self.queue:
                return
            assert n < DRAIN_ROUNDS, f"sends still active after {n} rounds"
            if upcoming is not None:
                self.clock.advance((upcoming - self.clock.now()).total_seconds() + 0.001)
            else:
                self.clock.advance(REDISPATCH_AFTER.total_seconds() + 1)

    def check_the_end(self) -> None:
        kinds = self.kinds()
        for run in self.runs:
            got: dict[tuple[SendKind, str], list[Accepted]] = {}
            for m in self.relay.accepted:
                if self.run_of_send[m.send_id] is run:
                    got.setdefault((kinds[m.send_id], m.recipient), []).append(m)
            for email in EMAILS:
                if run.withdrawn is None:
                    self.check_received(run, email, got)
                else:
                    self.check_told_of_withdrawal(run, email, got)

    def check_told_of_withdrawal(
        self, run: ReleaseRun, email: str, got: dict[tuple[SendKind, str], list[Accepted]]
    ) -> None:
        copies = got.get((SendKind.PREBRIEF, email), [])
        told = got.get((SendKind.WITHDRAW_NOTICE, email), [])
        assert not copies or (told and told[0].seq > copies[0].seq), (
            f"{email} holds the embargoed copy of withdrawn send {run.public_id}, untold"
        )

    def check_received(
        self, run: ReleaseRun, email: str, got: dict[tuple[SendKind, str], list[Accepted]]
    ) -> None:
        """The journalist received the public release, or the pre-brief and (unless the
        organisation turned it off) the lift notice after the final lift; and was last told
        the embargo in force."""
        assert self.state_of(run.public_id) is SendState.COMPLETED, run
        copies, publicly, lifted, moved = (
            got.get((kind, email), [])
            for kind in (
                SendKind.PREBRIEF,
                SendKind.PUBLIC,
                SendKind.LIFT_NOTICE,
                SendKind.MOVE_NOTICE,
            )
        )
        assert len(copies) + len(publicly) == 1, (
            f"{email} got {len(copies)} pre-brief(s) and {len(publicly)} public "
            f"release(s) of send {run.public_id}"
        )
        if not copies:
            assert not lifted, f"{email} got a lift notice without the pre-brief"
            return
        if not run.notices_wanted:
            assert not lifted, f"{email} got a lift notice the organisation turned off"
        else:
            assert lifted, f"{email} had the pre-brief of {run.public_id}, no lift notice"
            # Not embargoed again after it: no later move beyond the notice's time (lifting
            # now a second time sets no new embargo).
            later = [c for c in run.moves_after(lifted[0].seq) if c.embargo_at > lifted[0].at]
            assert not later, (
                f"{email}'s lift notice {lifted[0]} came before the final lift: {later}"
            )
        # What the journalist was last told of the embargo, by a banner or a moved notice
        # (a copy sent after the lift has no banner, and needs none).
        told = [
            m for m in sorted(copies + moved, key=seq_of) if self.relay.announced(m.seq) is not None
        ]
        if told and not run.lifted_last:
            last, final = self.relay.announced(told[-1].seq), described(run.current_embargo)
            assert last == final, f"{email} was last told the embargo is {last}; it is {final}"


@pytest.fixture(autouse=True)
def watch_by_claims_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker also reads its send's state every half second of real time while it sends,
    and stops when it is no longer armed; in one process, whether that half second passes
    within a step depends on the machine's load, not on the steps, and Hypothesis needs the
    same steps to do the same. Here the claims and the wait for the lift decide (the chaos
    tests check the half-second watch with real processes)."""

    async def never(self: LaneSender) -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(LaneSender, "_watch_send", never)


def machine_class(world: EmbargoWorld) -> type[EmbargoMachine]:
    return type("Machine", (EmbargoMachine,), {"world": world})


@pytest.mark.slow
def test_the_embargo_holds_whatever_the_press_office_does(
    database_url: str, tmp_path: Path
) -> None:
    world = make_embargo_world(database_url, tmp_path / "var", arm_lead=ARM_LEAD)
    examples = 12 if database_url.startswith("postgresql") else 60
    try:
        run_machine(machine_class(world), max_examples=examples)
    finally:
        world.runtime.close()


@pytest.fixture
def machine(database_url: str, tmp_path: Path) -> Iterator[EmbargoMachine]:
    """The machine, for steps written out by hand."""
    world = make_embargo_world(database_url, tmp_path / "var", arm_lead=ARM_LEAD)
    yield machine_class(world)()
    world.runtime.close()


# -- steps written out by hand: what holds, and what the product gets wrong today ------


def received(machine: EmbargoMachine, email: str) -> list[tuple[SendKind, Accepted]]:
    """What the journalist received, in order, with the kind of each send."""
    kinds = machine.kinds()
    return [(kinds[m.send_id], m) for m in machine.relay.accepted if m.recipient == email]


def take_batch_of(machine: EmbargoMachine, send_id: int | None) -> BatchRef:
    """The first queued batch of the send, off the broker's queue."""
    batch = next(b for b in machine.queue if b.send_id == send_id)
    machine.queue.remove(batch)
    return batch


def prebriefed_now(machine: EmbargoMachine) -> ReleaseRun:
    """The release scheduled 10 minutes ahead with a pre-brief now, armed and queued: to
    ann, bob and cat (vetted), in one batch."""
    machine.first_schedule(quiet=False, lead=600.0, prebrief=(0.0, 300.0), batch_size=3)
    (run,) = machine.runs
    machine.time_passes(which=False, to=(None, 0.0), ticks=True)
    return run


def finish(machine: EmbargoMachine) -> None:
    """Every check after the last step, then the end: everything still owed goes out."""
    machine.promises_kept()
    machine.teardown()


def send_interrupted(
    machine: EmbargoMachine, send_id: int | None, meanwhile: Callable[[], None]
) -> None:
    """A worker sends the send's batch; after claiming its first messages, before the
    relay takes the first, `meanwhile` happens."""
    transport = InterruptedTransport(machine.relay, at=0, meanwhile=meanwhile)
    machine.deliver(0, take_batch_of(machine, send_id), transport)
    assert transport.interrupted


def test_an_embargo_moved_in_the_last_second_holds_everything_until_the_new_lift(
    machine: EmbargoMachine,
) -> None:
    run = prebriefed_now(machine)
    machine.worker_sends_batch(worker=0, pick=0, kind=SendKind.PREBRIEF)
    machine.time_passes(which=False, to=("arming", 0.0), ticks=True)
    # The worker with the public batch waits for the lift; a millisecond before it, the
    # embargo moves 0.3 s later
    machine.worker_is_interrupted_waiting(
        worker=1,
        pick=0,
        kind=SendKind.PUBLIC,
        before=0.001,
        meanwhile=("move", 0.3),
        then_tick=True,
        others_send=False,
    )
    finish(machine)
    lift = run.embargo_at + timedelta(seconds=0.3)
    assert run.current_embargo == lift
    for email in ("dan@wire.example.com", "eve@wire.example.com", "fay@freelance.example.com"):
        ((kind, message),) = received(machine, email)
        assert kind is SendKind.PUBLIC and message.at >= lift
    kinds = [kind for kind, _ in received(machine, "ann@wire.example.com")]
    assert sorted(kinds) == sorted([SendKind.PREBRIEF, SendKind.MOVE_NOTICE, SendKind.LIFT_NOTICE])


def test_a_journalist_no_longer_vetted_gets_the_public_release_at_the_lift(
    machine: EmbargoMachine,
) -> None:
    run = prebriefed_now(machine)
    machine.press_office_acts(which=False, action=("breach", "bob@daily.example.com"), ticks=False)
    machine.press_office_acts(
        which=False, action=("outlet unvetted", "cat@daily.example.com"), ticks=False
    )
    finish(machine)
    ((kind, message),) = received(machine, "cat@daily.example.com")
    assert kind is SendKind.PUBLIC and message.at >= run.embargo_at
    assert [kind for kind, _ in received(machine, "bob@daily.example.com")] == [SendKind.PUBLIC]
    assert [kind for kind, _ in received(machine, "ann@wire.example.com")] == [
        SendKind.PREBRIEF,
        SendKind.LIFT_NOTICE,
    ]


def test_the_embargo_stays_once_the_lift_notice_is_going_out(
    machine: EmbargoMachine,
) -> None:
    run = prebriefed_now(machine)
    machine.worker_sends_batch(worker=0, pick=0, kind=SendKind.PREBRIEF)
    machine.time_passes(which=False, to=("arming", 0.0), ticks=True)
    # At the lift a worker claims the lift notices; before the first is sent, and before any
    # of the public send is claimed, the press office tries to move the embargo 30 s later:
    # refused, since those journalists are being told it has lifted
    send_interrupted(machine, run.lift_notice_id, lambda: machine.move(run, 30.0))
    assert run.current_embargo == run.embargo_at
    finish(machine)
    notices = [m for kind, m in received(machine, "ann@wire.example.com") if kind.is_notice]
    assert notices and all(m.at >= run.current_embargo for m in notices)


def test_a_prebrief_going_out_when_the_embargo_moves_keeps_the_old_time(
    machine: EmbargoMachine,
) -> None:
    run = prebriefed_now(machine)
    send_interrupted(machine, run.prebrief_id, lambda: machine.move(run, 400.0))
    finish(machine)
    for email in ("ann@wire.example.com", "bob@daily.example.com", "cat@daily.example.com"):
        told = [machine.relay.announced(m.seq) for _, m in received(machine, email)]
        told = [t for t in told if t is not None]
        assert told[-1] == described(run.current_embargo), (
            f"{email} was last told the embargo is {told[-1]}; it is "
            f"{described(run.current_embargo)}"
        )


def test_a_prebrief_going_out_at_the_withdrawal_gets_no_withdrawal_notice(
    machine: EmbargoMachine,
) -> None:
    run = prebriefed_now(machine)
    send_interrupted(machine, run.prebrief_id, lambda: machine.withdraw(run))
    finish(machine)
    for email in ("ann@wire.example.com", "bob@daily.example.com"):
        kinds = [kind for kind, _ in received(machine, email)]
        assert kinds == [SendKind.PREBRIEF, SendKind.WITHDRAW_NOTICE], f"{email} got {kinds}"


def test_a_prebrief_going_out_at_the_lift_gets_no_lift_notice(
    machine: EmbargoMachine,
) -> None:
    run = prebriefed_now(machine)

    def lift_now_and_tick() -> None:
        machine.lift(run)
        machine.tick_now()

    send_interrupted(machine, run.prebrief_id, lift_now_and_tick)
    finish(machine)
    for email in ("ann@wire.example.com", "bob@daily.example.com"):
        kinds = [kind for kind, _ in received(machine, email)]
        assert kinds == [SendKind.PREBRIEF, SendKind.LIFT_NOTICE], f"{email} got {kinds}"


def test_a_journalist_vetted_late_gets_the_release_once_when_both_arm_together(
    machine: EmbargoMachine,
) -> None:
    machine.first_schedule(quiet=False, lead=600.0, prebrief=(1.0, 30.0), batch_size=3)
    machine.press_office_acts(which=False, action=("vet", "fay@freelance.example.com"), ticks=False)
    # No tick between the pre-brief's hour and the lift (the scheduler was down)
    machine.time_passes(which=False, to=("lift", 1.0), ticks=True)
    finish(machine)
    kinds = [kind for kind, _ in received(machine, "fay@freelance.example.com")]
    assert kinds in ([SendKind.PUBLIC], [SendKind.PREBRIEF, SendKind.LIFT_NOTICE]), kinds
