"""Recovery: a worker process killed in the middle of a send, and what became of its messages.

A send with the same worker setup as the throughput runs. Once about a fifth of the messages
have been accepted, one worker pool process that holds deliveries in `sending` is killed
with SIGKILL: it is found from `deliveries.lease_owner` ("worker:HOST:PID:NONCE"). Its batch
lease then runs out (`DISTRIBUTOR_LEASE_SECONDS`), the scheduler takes the batch over, and
another process sends what the dead one held, with the same Message-IDs.

Measured: the time from the kill to the last delivery; deliveries lost (not `sent` at the
end); extra copies at the receiver, counted per recipient, against the bound (one message per
SMTP connection the killed process had open may have been accepted but not recorded); and
messages before the embargo. The receiver is a separate one of the run's kind that records
each message's recipients and Message-ID.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from benchmarks.dataset import Dataset
from benchmarks.memory import children_of
from benchmarks.ours import LiveSend, OursResult, run_ours
from benchmarks.sink import Copy, start_receiver
from distributor.models import Contact, Delivery, DeliveryEvent
from distributor.runtime import Runtime
from distributor.settings import Settings
from distributor.states import DeliveryState

KILL_AT = 0.2  # share of the messages accepted before the kill
POLL_SECONDS = 0.005
ESTABLISHED = "01"  # TCP state in /proc/net/tcp


@dataclass(frozen=True, slots=True)
class Victim:
    """The worker pool process that was killed."""

    pid: int
    owner: str  # its identity on leases and deliveries
    killed_at: datetime
    accepted: int  # messages the receiver had accepted when it was killed
    connections: int | None  # SMTP connections it had open to the receiver


@dataclass
class RecoveryResult:
    size: int
    lease_seconds: float
    default_lease_seconds: float  # the setting's default, as in production
    receiver: str
    run: OursResult
    victim: Victim | None = None
    killed_after_s: float | None = None  # embargo to the kill
    taken_over: int | None = None  # deliveries the takeover made due again
    kill_to_takeover_s: float | None = None
    kill_to_last_s: float | None = None  # kill to the last delivery recorded as sent
    lost: int = 0  # deliveries not `sent` at the end
    copies: int = 0  # copies the receiver accepted
    missing: int = 0  # recipients of the send who received nothing
    duplicates: int = 0  # extra copies: each recipient's copies beyond the first
    duplicated_recipients: int = 0
    same_message_id: bool | None = None  # every extra copy had its first copy's Message-ID
    early: int = 0  # arrived before the embargo: accepted (`finished_at`), or at the receiver
    # `claimed_at` before the embargo: shown, not judged here, as a claim is stamped with the
    # database time read just before its statement, which checks the embargo itself.
    claimed_early: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def bound(self) -> int:
        """Copies that may be sent twice: one per SMTP connection of the killed process."""
        connections = self.victim.connections if self.victim else None
        return 1 if connections is None else connections

    @property
    def sound(self) -> bool:
        return (
            self.victim is not None
            and self.lost == 0
            and self.missing == 0
            and self.early == 0
            and self.duplicates <= self.bound
            and self.same_message_id is not False
        )


def default_lease_seconds() -> float:
    """`DISTRIBUTOR_LEASE_SECONDS` when not set."""
    return float(Settings.model_fields["lease_seconds"].default)


def _recording_receiver(kind: str, description: str) -> str:
    how = (
        "dumping each message to a file (`-D`) to record its recipients and Message-ID"
        if kind == "smtp-sink"
        else "recording each message's recipients and Message-ID"
    )
    return f"{description}, {how}"


def owner_pid(owner: str) -> int | None:
    """'worker:HOST:PID:NONCE' -> PID."""
    parts = owner.split(":")
    return int(parts[2]) if len(parts) >= 4 and parts[2].isdigit() else None


def smtp_connections(pid: int, port: int) -> int | None:
    """Established TCP connections of process `pid` to `port` on this machine."""
    try:
        links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
    except OSError:
        return None
    sockets = {link[len("socket:[") : -1] for link in links if link.startswith("socket:[")}
    found = 0
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[3] == ESTABLISHED and fields[9] in sockets:
                found += 1
    return found


class Killer:
    """The watch function: waits for a share of the messages, then kills a sending process."""

    def __init__(self, *, share: float = KILL_AT) -> None:
        self.share = share
        self.victim: Victim | None = None
        self.problem: str | None = None

    def __call__(self, live: LiveSend) -> None:
        try:
            self._run(live)
        except Exception as exc:  # reported, and the send still finishes
            self.problem = f"could not stop a worker process: {type(exc).__name__}: {exc}"

    def _accepted(self, live: LiveSend) -> int:
        return (live.receiver.counters() - live.smtp_before).messages

    def _run(self, live: LiveSend) -> None:
        target = max(1, round(live.recipients * self.share))
        pool = set(children_of(live.worker_pid))
        while self._accepted(live) < target:
            if live.over.is_set():
                self.problem = f"the send was over before {target:,} messages were accepted"
                return
            time.sleep(POLL_SECONDS)
        while not live.over.is_set():
            with live.sessions() as session:
                owners = session.scalars(
                    select(Delivery.lease_owner)
                    .where(
                        Delivery.send_id == live.send_id,
                        Delivery.state == DeliveryState.SENDING,
                        Delivery.lease_owner.is_not(None),
                    )
                    .distinct()
                ).all()
            for owner in sorted(o for o in owners if o):
                pid = owner_pid(owner)
                if pid is not None and pid not in pool:
                    pool = set(children_of(live.worker_pid))
                if pid is None or pid not in pool:
                    continue  # only ever a pool process of the worker under test
                connections = smtp_connections(pid, live.receiver.port)
                accepted = self._accepted(live)
                os.kill(pid, signal.SIGKILL)
                killed_at = datetime.now(UTC)
                self.victim = Victim(pid, owner, killed_at, accepted, connections)
                return
            time.sleep(POLL_SECONDS)
        self.problem = "no worker process held deliveries in `sending` before the send was over"


def run_recovery(
    dataset: Dataset,
    *,
    receiver_kind: str,
    redis_url: str,
    workers: int,
    lead_seconds: float,
    run_dir: Path,
    lease_seconds: float,
    arm_lead_seconds: float | None = None,
    settle_seconds: float = 0.0,
) -> RecoveryResult:
    receiver = start_receiver(run_dir / "receiver", prefer=receiver_kind, record=True)
    killer = Killer()
    try:
        run = run_ours(
            dataset,
            receiver=receiver,
            redis_url=redis_url,
            workers=workers,
            lead_seconds=lead_seconds,
            run_dir=run_dir,
            arm_lead_seconds=arm_lead_seconds,
            settle_seconds=settle_seconds,
            lease_seconds=lease_seconds,
            watch=killer,
        )
        copies = receiver.copies()
    finally:
        receiver.stop()
        receiver.discard_recording()
    result = RecoveryResult(
        size=dataset.contacts,
        lease_seconds=lease_seconds,
        default_lease_seconds=default_lease_seconds(),
        receiver=_recording_receiver(receiver.kind, receiver.description),
        run=run,
        victim=killer.victim,
        notes=[killer.problem] if killer.problem else [],
    )
    figures = run.figures
    result.lost = figures.recipients - figures.sent
    result.early = figures.early + (run.smtp_before_embargo or 0)
    result.claimed_early = figures.claimed_early or 0
    victim = killer.victim
    recipients, result.taken_over, first = _read_back(
        dataset, run.send_id, victim.killed_at if victim else None
    )
    if victim is not None and run.embargo_at is not None:
        result.killed_after_s = (victim.killed_at - run.embargo_at).total_seconds()
        if figures.last_s is not None:
            result.kill_to_last_s = figures.last_s - result.killed_after_s
        if first is not None:
            result.kill_to_takeover_s = (first - victim.killed_at).total_seconds()
    _count_copies(result, copies, recipients)
    return result


def _count_copies(result: RecoveryResult, copies: list[Copy], expected: set[str]) -> None:
    per_recipient = Counter(copy.recipient for copy in copies)
    result.copies = len(copies)
    result.missing = len(expected - set(per_recipient))
    extra = {r: n for r, n in per_recipient.items() if n > 1}
    result.duplicates = sum(n - 1 for n in extra.values())
    result.duplicated_recipients = len(extra)
    if extra:
        ids: dict[str, set[str | None]] = {r: set() for r in extra}
        for copy in copies:
            if copy.recipient in ids:
                ids[copy.recipient].add(copy.message_id)
        result.same_message_id = all(
            len(found) == 1 and None not in found for found in ids.values()
        )
    strangers = set(per_recipient) - expected
    if strangers:
        result.notes.append(f"{len(strangers):,} recipients at the receiver were not in the send")


def _read_back(
    dataset: Dataset, send_id: int, killed_at: datetime | None
) -> tuple[set[str], int | None, datetime | None]:
    """The send's recipients; deliveries made due again after the kill (the takeover's
    deferred events) and when the first of them was."""
    rt = Runtime(Settings(database_url=dataset.url))
    try:
        with rt.sessions() as session:
            emails = session.scalars(
                select(Contact.email)
                .join(Delivery, Delivery.contact_id == Contact.id)
                .where(Delivery.send_id == send_id)
            ).all()
            if killed_at is None:
                return {e.lower() for e in emails}, None, None
            count, first = session.execute(
                select(func.count(), func.min(DeliveryEvent.at))
                .join(Delivery, Delivery.id == DeliveryEvent.delivery_id)
                .where(
                    Delivery.send_id == send_id,
                    DeliveryEvent.state == DeliveryState.DEFERRED,
                    DeliveryEvent.at >= killed_at,
                )
            ).one()
    finally:
        rt.close()
    return {e.lower() for e in emails}, int(count), first
