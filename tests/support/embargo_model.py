"""The press office's embargo workflow in one process: the journalists and releases every
run starts from, a clock that lets the press office act while a worker waits for the lift,
a relay that keeps what each message says about the embargo, what a test remembers of a
release's embargo and of its journalists' vetting as the run goes on, and the cases the
product gets wrong today.

Every point of a run is a number from one counter (`seq`), shared with the relay's
`Accepted.seq`: "the embargo in force when the relay accepted this message" is the last
change numbered below the message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from distributor.clock import ManualClock
from distributor.contacts_import import ContactRow, ParsedContacts, import_contacts
from distributor.engine.dbclock import FollowingClock
from distributor.lists import add_to_list, create_list
from distributor.models import BreachRecord, Contact, Outlet
from distributor.organisations import save_organisation
from distributor.releases import create_release
from distributor.rendering.embargo_notice import EmbargoNotice
from distributor.runtime import Runtime
from distributor.settings import Settings
from distributor.transport import Envelope
from tests.conftest import SAMPLE_DRAFT
from tests.support.engine_model import Accepted, SimulatedRelay, clear_engine_tables

START = datetime(2031, 3, 4, 9, 0, tzinfo=UTC)
ZONE = "Europe/London"
LIST = "Newsdesks"
VETTED_OUTLET = "Vetted Daily"
WIRE = "Wire"
QUIET_ORGANISATION = "Quiet Charity"


@dataclass(frozen=True, slots=True)
class Journalist:
    email: str
    outlet: str  # empty: freelance
    vetted: bool = False  # the journalist's own flag; the outlet's counts too
    breaker: bool = False


JOURNALISTS = (
    Journalist("ann@wire.example.com", WIRE, vetted=True),
    Journalist("bob@daily.example.com", VETTED_OUTLET),  # vetted through the outlet
    Journalist("cat@daily.example.com", VETTED_OUTLET),
    Journalist("dan@wire.example.com", WIRE, vetted=True, breaker=True),
    Journalist("eve@wire.example.com", WIRE),
    Journalist("fay@freelance.example.com", ""),
)
EMAILS = tuple(j.email for j in JOURNALISTS)


@dataclass(frozen=True, slots=True)
class Vetting:
    """The embargo flags of every journalist and outlet, as the model knows them."""

    contact_vetted: frozenset[str]
    contact_breakers: frozenset[str]
    outlet_vetted: frozenset[str]
    outlet_breakers: frozenset[str]

    @classmethod
    def initial(cls) -> Vetting:
        return cls(
            contact_vetted=frozenset(j.email for j in JOURNALISTS if j.vetted),
            contact_breakers=frozenset(j.email for j in JOURNALISTS if j.breaker),
            outlet_vetted=frozenset({VETTED_OUTLET}),
            outlet_breakers=frozenset(),
        )

    def allows(self, email: str) -> bool:
        """What audience_rules.vetted_for_embargoes says of the journalist."""
        outlet = OUTLET_OF[email]
        return (
            (email in self.contact_vetted or outlet in self.outlet_vetted)
            and email not in self.contact_breakers
            and outlet not in self.outlet_breakers
        )

    @property
    def vetted(self) -> frozenset[str]:
        return frozenset(e for e in EMAILS if self.allows(e))

    def with_contact(
        self, email: str, *, vetted: bool | None = None, breaker: bool = False
    ) -> Vetting:
        changed = self
        if vetted is not None:
            flags = self.contact_vetted | {email} if vetted else self.contact_vetted - {email}
            changed = replace(changed, contact_vetted=flags)
        if breaker:
            changed = replace(changed, contact_breakers=self.contact_breakers | {email})
        return changed

    def with_outlet(
        self, outlet: str, *, vetted: bool | None = None, breaker: bool = False
    ) -> Vetting:
        changed = self
        if vetted is not None:
            flags = self.outlet_vetted | {outlet} if vetted else self.outlet_vetted - {outlet}
            changed = replace(changed, outlet_vetted=flags)
        if breaker:
            changed = replace(changed, outlet_breakers=self.outlet_breakers | {outlet})
        return changed


OUTLET_OF = {j.email: j.outlet for j in JOURNALISTS}


class HookedClock(ManualClock):
    """A manual clock that runs an action once when it reaches an instant: the press office
    acting while a worker's clock runs on towards the lift."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self._hooks: list[tuple[datetime, Callable[[], None]]] = []

    def when(self, instant: datetime, action: Callable[[], None]) -> None:
        self._hooks.append((instant, action))

    def clear_hooks(self) -> None:
        self._hooks.clear()

    def advance(self, seconds: float) -> None:
        super().advance(seconds)
        due = [hook for hook in self._hooks if hook[0] <= self.now()]
        if due:
            self._hooks = [hook for hook in self._hooks if hook[0] > self.now()]
            for _, action in due:
                action()


# What a pre-brief's banner or a moved notice says: "09:10 GMT, Tuesday 4 March 2031".
ANNOUNCED = re.compile(
    r"^(?:EMBARGOED UNTIL|EMBARGO MOVED TO) (\d\d:\d\d [^,]+, \w+ \d+ \w+ \d{4}):"
)


def described(instant: datetime) -> str:
    """An embargo as the messages word it."""
    return EmbargoNotice(at=instant, zone_name=ZONE).in_release_zone


@dataclass
class ReadingRelay(SimulatedRelay):
    """The simulated relay, which also keeps the subject of every message it accepts."""

    subjects: dict[int, str] = field(default_factory=dict)

    def accept(self, envelope: Envelope) -> Accepted:
        message = super().accept(envelope)
        headers = BytesParser(policy=policy.default).parsebytes(envelope.data, headersonly=True)
        self.subjects[message.seq] = str(headers["Subject"])
        return message

    def announced(self, seq: int) -> str | None:
        """The embargo a message announces (its banner or its new time); None for none."""
        found = ANNOUNCED.match(self.subjects[seq])
        return found.group(1) if found else None


@dataclass
class InFlight:
    """Deliveries a worker held (claimed, not yet sent) when something happened at `seq`.

    Read from the database at that moment, it may include a claim that committed just
    after; `settle` narrows it, once the worker's step is over, to those the worker then
    went on to send, so that a delivery handed back and claimed again later is judged by
    its later claim.
    """

    seq: int
    deliveries: set[int] = field(default_factory=set)

    def settle(self, accepted: Iterable[Accepted]) -> None:
        self.deliveries &= {m.delivery_id for m in accepted if m.seq > self.seq}


@dataclass(frozen=True, slots=True)
class VettingChange:
    seq: int
    before: Vetting
    after: Vetting
    in_flight: InFlight


@dataclass
class VettingHistory:
    initial: Vetting = field(default_factory=Vetting.initial)
    changes: list[VettingChange] = field(default_factory=list)

    @property
    def now(self) -> Vetting:
        return self.changes[-1].after if self.changes else self.initial

    def vetted_at_claim(self, message: Accepted) -> bool:
        """Whether the recipient was vetted when the worker claimed this message: the flags
        after the last change before it was accepted, or before that change if the worker
        already held the message when the change was made."""
        earlier = [c for c in self.changes if c.seq < message.seq]
        if not earlier:
            return self.initial.allows(message.recipient)
        last = earlier[-1]
        held = message.delivery_id in last.in_flight.deliveries
        return (last.before if held else last.after).allows(message.recipient)


@dataclass(frozen=True, slots=True)
class Stop:
    """A send stopped (cancelled, withdrawn) at `seq`; what its workers held may still go."""

    seq: int
    in_flight: InFlight

    def lets_through(self, message: Accepted) -> bool:
        return message.seq < self.seq or message.delivery_id in self.in_flight.deliveries


@dataclass(frozen=True, slots=True)
class EmbargoChange:
    seq: int
    embargo_at: datetime
    lifted: bool  # lifted now, rather than moved
    in_flight: InFlight


@dataclass
class ReleaseRun:
    """One public send of a release, with its pre-brief and notices, as the model knows it."""

    release_id: int
    public_id: int
    embargo_at: datetime
    notices_wanted: bool
    prebrief_id: int | None = None
    prebrief_at: datetime | None = None
    lift_notice_id: int | None = None
    changes: list[EmbargoChange] = field(default_factory=list)
    prebrief_cancelled: Stop | None = None
    withdrawn: Stop | None = None

    def embargo_in_force(self, seq: int) -> datetime:
        """The lift in force at point `seq` of the run (the last before a withdrawal)."""
        found = self.embargo_at
        for change in self.changes:
            if change.seq < seq:
                found = change.embargo_at
        return found

    @property
    def current_embargo(self) -> datetime:
        return self.changes[-1].embargo_at if self.changes else self.embargo_at

    def moves_after(self, seq: int) -> list[EmbargoChange]:
        return [c for c in self.changes if c.seq > seq and not c.lifted]

    @property
    def lifted_last(self) -> bool:
        return bool(self.changes) and self.changes[-1].lifted


@dataclass(frozen=True, slots=True)
class EmbargoWorld:
    """A database with the journalists on one list and two releases (one from an
    organisation that turned lift notices off), and a runtime on the hooked clock."""

    runtime: Runtime
    clock: HookedClock
    release_with_notices: int
    quiet_release: int

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self.runtime.sessions

    def reset(self) -> None:
        """Back to the start: no send, no breach, the flags as at first, the clock at START."""
        self.clock.clear_hooks()
        self.clock.advance((START - self.clock.now()).total_seconds())
        clear_engine_tables(self.sessions)
        with self.sessions.begin() as session:
            session.execute(delete(BreachRecord))
            set_flags(session, Vetting.initial())


def set_flags(session: Session, vetting: Vetting) -> None:
    for journalist in JOURNALISTS:
        session.execute(
            update(Contact)
            .where(Contact.email == journalist.email)
            .values(
                embargo_vetted=journalist.email in vetting.contact_vetted,
                embargo_breaker=journalist.email in vetting.contact_breakers,
            )
        )
    for outlet in session.scalars(select(Outlet)):
        outlet.embargo_vetted = outlet.name in vetting.outlet_vetted
        outlet.embargo_breaker = outlet.name in vetting.outlet_breakers


def make_embargo_world(database_url: str, data_dir: Path, *, arm_lead: timedelta) -> EmbargoWorld:
    clock = HookedClock(START)
    runtime = Runtime(
        Settings(
            database_url=database_url,
            data_dir=data_dir,
            arm_lead_seconds=arm_lead.total_seconds(),
        ),
        clock=clock,
        database_clock_override=FollowingClock(clock),
    )
    rows = [
        ContactRow(line=n + 2, email=j.email, name=f"Journalist {n}", outlet=j.outlet)
        for n, j in enumerate(JOURNALISTS)
    ]
    with runtime.sessions.begin() as session:
        import_contacts(session, ParsedContacts(rows=rows), now=START)
        create_list(session, LIST, now=START)
        add_to_list(session, LIST, list(EMAILS))
        save_organisation(session, name=QUIET_ORGANISATION, now=START, lift_notice=False)
        loud = create_release(session, SAMPLE_DRAFT, now=START).id
        quiet = create_release(
            session, replace(SAMPLE_DRAFT, organisation=QUIET_ORGANISATION), now=START
        ).id
    world = EmbargoWorld(runtime, clock, release_with_notices=loud, quiet_release=quiet)
    world.reset()
    return world
