"""The send engine in one process: a relay that stamps each message it accepts with the
manual clock, worker connections during which the worker's process is killed (as a real
kill would leave the database) or something else happens, and a clean slate of the
engine's tables for each run.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from distributor.clock import Clock
from distributor.errors import RelayUnavailableError, TransportError
from distributor.mail.verp import VerpAddresses
from distributor.models import Delivery, DeliveryEvent, RelayHealth, SendBatch, Suppression
from distributor.transport import Envelope, InMemoryTransport

DELIVERIES = cast(Table, Delivery.__table__)
BATCHES = cast(Table, SendBatch.__table__)
EVENTS = cast(Table, DeliveryEvent.__table__)

# What the engine writes while it schedules and sends, children first; the contacts, lists
# and releases a send is made from stay as they are.
ENGINE_TABLES = (
    "bounces",
    "delivery_events",
    "deliveries",
    "send_batches",
    "send_lists",
    "send_segments",
    "sends",
    "suppressions",
    "relay_health",
    "heartbeats",
)


def clear_engine_tables(sessions: sessionmaker[Session]) -> None:
    """Empty the engine's tables, so that the next run starts with no send at all."""
    with sessions.begin() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text(f"TRUNCATE {', '.join(ENGINE_TABLES)} RESTART IDENTITY"))
        else:
            for name in ENGINE_TABLES:
                session.execute(text(f"DELETE FROM {name}"))


class Refusal(enum.Enum):
    TEMPORARY = "451 4.7.1 greylisted: try again later"
    PERMANENT = "550 5.1.1 no such mailbox here"

    def error(self) -> TransportError:
        code = int(self.value[:3])
        return TransportError(
            f"relay refused the recipient: {self.value}", code=code, temporary=code < 500
        )


@dataclass(frozen=True, slots=True)
class Accepted:
    """One message the relay took."""

    seq: int  # its place among everything that happened in the run
    at: datetime  # the manual clock's time when the relay accepted it
    send_id: int
    delivery_id: int
    recipient: str
    reply: str


@dataclass
class SimulatedRelay:
    """The mail relay every worker talks to: it refuses some recipients, may be down, and
    keeps every message it accepts, stamped with the manual clock."""

    clock: Clock
    verp: VerpAddresses
    next_seq: Callable[[], int]
    refusals: dict[str, Refusal] = field(default_factory=dict)
    down: bool = False
    accepted: list[Accepted] = field(default_factory=list)

    def refusal(self, envelope: Envelope) -> TransportError | None:
        refusal = self.refusals.get(envelope.recipient)
        return refusal.error() if refusal is not None else None

    def accept(self, envelope: Envelope) -> Accepted:
        target = self.verp.parse(envelope.sender)
        assert target is not None, f"not a VERP envelope sender: {envelope.sender}"
        seq = self.next_seq()
        message = Accepted(
            seq=seq,
            at=self.clock.now(),
            send_id=target.send_id,
            delivery_id=target.delivery_id,
            recipient=envelope.recipient,
            reply=f"250 2.0.0 queued as relay-{seq}",
        )
        self.accepted.append(message)
        return message


class RelayTransport(InMemoryTransport):
    """One worker's connection to the simulated relay."""

    def __init__(self, relay: SimulatedRelay) -> None:
        super().__init__(refuse=relay.refusal)
        self.relay = relay
        self.calls = 0  # messages the worker began to transmit

    def connect(self) -> None:
        if self.relay.down:
            raise RelayUnavailableError("cannot connect to the relay: connection refused")
        super().connect()

    def send(self, envelope: Envelope) -> str:
        self.calls += 1
        if self.relay.down:
            raise RelayUnavailableError("cannot connect to the relay: connection refused")
        super().send(envelope)  # raises the relay's refusal of this recipient, if any
        return self.relay.accept(envelope).reply


class WorkerKilled(SystemExit):
    """The worker's process is killed (SIGKILL, out of memory, machine lost).

    Not an Exception, so no `except Exception` in the engine handles it, as none could
    handle a real kill; and a SystemExit, because only that (and KeyboardInterrupt) leaves
    an asyncio task at once and stops the event loop: any other exception would end only the
    one lane that met it, as a real kill does not.
    """


# The tables a worker writes while it sends (besides heartbeats, which only say it lived):
# it updates deliveries and batches, adds events and suppressions, and keeps the relay's
# health in one row.
UPDATED = (DELIVERIES, BATCHES)
APPENDED = (EVENTS, cast(Table, Suppression.__table__))
RELAY_HEALTH = cast(Table, RelayHealth.__table__)


@dataclass(frozen=True, slots=True)
class CrashSnapshot:
    """The engine's tables as they were at the instant a worker was killed.

    A killed process runs no clean-up; in one process the kill can only be an exception,
    and Python's unwinding runs the engine's `finally` blocks and cancels its tasks: outcomes
    already queued are committed, the claimed deliveries are handed back (pending again, the
    attempt uncharged, an event each) and the leases released. `restore` undoes exactly
    that: it writes every delivery, batch and relay-health row back as it was at the kill,
    and deletes the event and suppression rows added since. Everything committed before the
    kill stays: the leases as last taken or renewed, the claims, the outcomes recorded. So
    the dead worker's deliveries are `sending` under its identity and its leases hold until
    they expire, as after a real kill.
    """

    rows: dict[str, list[dict[str, Any]]]
    last_ids: dict[str, int]

    @classmethod
    def take(cls, sessions: sessionmaker[Session]) -> CrashSnapshot:
        with sessions() as session:
            rows = {
                table.name: [dict(row._mapping) for row in session.execute(select(table))]
                for table in (*UPDATED, RELAY_HEALTH)
            }
            last_ids = {
                table.name: int(session.scalar(select(func.max(table.c.id))) or 0)
                for table in APPENDED
            }
        return cls(rows=rows, last_ids=last_ids)

    def restore(self, sessions: sessionmaker[Session]) -> None:
        with sessions.begin() as session:
            for table in APPENDED:
                session.execute(delete(table).where(table.c.id > self.last_ids[table.name]))
            for table in UPDATED:
                key = list(table.primary_key.columns)
                for row in self.rows[table.name]:
                    session.execute(
                        update(table)
                        .where(*(column == row[column.name] for column in key))
                        .values(**row)
                    )
            session.execute(delete(RELAY_HEALTH))
            if self.rows[RELAY_HEALTH.name]:
                session.execute(insert(RELAY_HEALTH), self.rows[RELAY_HEALTH.name])


class KillingTransport(RelayTransport):
    """A worker's connection, in a process that is killed at a chosen point of the batch.

    `kill_at` is how many messages it begins before the kill (-1: killed while connecting,
    with the lease taken and nothing claimed). With `accepted_first`, the relay accepts the
    message in flight and the kill comes before its outcome is recorded: the one message a
    dead worker may cause to be sent twice.
    """

    def __init__(
        self,
        relay: SimulatedRelay,
        *,
        sessions: sessionmaker[Session],
        kill_at: int,
        accepted_first: bool,
    ) -> None:
        super().__init__(relay)
        self._sessions = sessions
        self._kill_at = kill_at
        self._accepted_first = accepted_first
        self.crash: CrashSnapshot | None = None
        self.unrecorded: Accepted | None = None

    def connect(self) -> None:
        if self._kill_at < 0:
            self._kill()
        super().connect()

    def send(self, envelope: Envelope) -> str:
        if self.calls == self._kill_at:
            if self._accepted_first:
                try:
                    super().send(envelope)
                except TransportError:
                    pass  # refused or down: nothing reached a mailbox
                else:
                    self.unrecorded = self.relay.accepted[-1]
            self._kill()
        return super().send(envelope)

    def _kill(self) -> None:
        self.crash = CrashSnapshot.take(self._sessions)
        raise WorkerKilled("the worker's process was killed")


class InterruptedTransport(RelayTransport):
    """A worker's connection during which something else happens: just before the worker
    begins its message number `at` (0 for the first; -1: while it connects), `meanwhile`
    runs once, with the worker's process frozen at that point (a pause, a cancel, or a
    stall in which the scheduler and other workers go on)."""

    def __init__(self, relay: SimulatedRelay, *, at: int, meanwhile: Callable[[], None]) -> None:
        super().__init__(relay)
        self._at = at
        self._meanwhile: Callable[[], None] | None = meanwhile

    def _interrupt(self) -> None:
        if self._meanwhile is not None:
            meanwhile, self._meanwhile = self._meanwhile, None
            meanwhile()

    def connect(self) -> None:
        if self._at < 0:
            self._interrupt()
        super().connect()

    def send(self, envelope: Envelope) -> str:
        if self.calls == self._at:
            self._interrupt()
        return super().send(envelope)

    @property
    def interrupted(self) -> bool:
        return self._meanwhile is None
