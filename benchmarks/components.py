"""The pieces on their own, in this process (one core): importing contacts through the real
importer, building personalised messages, resolving an audience into deliveries, and
and recording outcomes as a worker does: a commit per outcome, and a commit per group of as
many outcomes as a worker process has relay connections."""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.engine import make_url

from benchmarks.cpu import CpuMeter, service_roles
from benchmarks.dataset import Dataset
from distributor.audience_refresh import refresh_audience
from distributor.contacts_import import import_contacts, parse_contacts_csv
from distributor.dkim_keys import KeyType, generate_key
from distributor.engine.claims import load_send
from distributor.engine.outcomes import Outcome, OutcomeRecorder
from distributor.mail.builder import MessageBuilder
from distributor.mail.dkim import DkimKey, DkimSigner
from distributor.message import Recipient
from distributor.models import Contact, Delivery
from distributor.runtime import Runtime
from distributor.scheduling import schedule_send
from distributor.settings import Settings
from distributor.states import DeliveryState

RECORDING_OWNER = "worker:benchmark:0:components"


@dataclass(frozen=True, slots=True)
class RecordingCost:
    """Outcomes committed `group` at a time; totals over `count` outcomes."""

    group: int
    count: int
    seconds: float
    cpu_seconds: float  # this process
    database_cpu_seconds: float  # PostgreSQL: this database's backends, background processes

    def per_outcome_ms(self, seconds: float) -> float:
        return seconds / self.count * 1000


@dataclass(slots=True)
class ComponentFigures:
    import_rows: int = 0
    import_parse_seconds: float | None = None  # parse_contacts_csv: reading and validation
    import_store_seconds: float | None = None  # import_contacts and the commit
    build_count: int = 0
    build_seconds: float | None = None
    message_bytes: int | None = None  # size of one built message
    # Built and DKIM-signed (one key), by algorithm ("RSA-2048", "Ed25519"): (count, seconds).
    signed_builds: dict[str, tuple[int, float]] = field(default_factory=dict)
    audience_contacts: int = 0
    audience_deliveries: int = 0
    audience_seconds: float | None = None  # schedule_send, rolled back afterwards
    arming_seconds: float | None = None  # refresh_audience at arming, rolled back afterwards
    arming_joined: int = 0
    # OutcomeRecorder.record_many with commits of 1 outcome, and of `group` outcomes.
    recording: list[RecordingCost] = field(default_factory=list)
    # A component that could not be measured: its name ("import", "build", "audience") and why.
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def import_rate(self) -> float | None:
        if self.import_parse_seconds is None or self.import_store_seconds is None:
            return None
        return self.import_rows / (self.import_parse_seconds + self.import_store_seconds)

    @property
    def build_rate(self) -> float | None:
        return self.build_count / self.build_seconds if self.build_seconds else None


def contacts_csv(rows: int) -> str:
    lines = ["email,name,outlet"]
    lines += [
        f"Imported.Reporter{i}@Desk{i % 7}.Example.net,Imported Reporter {i},Outlet {i % 40}"
        for i in range(rows)
    ]
    return "\n".join(lines) + "\n"


def time_import(rt: Runtime, rows: int) -> tuple[float, float]:
    text = contacts_csv(rows)
    started = time.perf_counter()
    parsed = parse_contacts_csv(io.StringIO(text))
    parsed_at = time.perf_counter()
    with rt.sessions.begin() as session:
        report = import_contacts(session, parsed, now=rt.clock.now())
    stored_at = time.perf_counter()
    if report.created != rows:
        raise RuntimeError(f"the importer created {report.created} of {rows} contacts")
    return parsed_at - started, stored_at - parsed_at


def time_builds(rt: Runtime, send_id: int, count: int) -> tuple[int, float, int]:
    with rt.sessions() as session:
        snapshot = load_send(session, send_id)
        contacts = session.execute(
            select(Contact.id, Contact.email, Contact.name).order_by(Contact.id).limit(count)
        ).all()
    if snapshot is None:
        raise RuntimeError(f"send {send_id} is gone")
    build = rt.make_builder(snapshot)  # renders the release once, as a batch does
    recipients = [Recipient(delivery_id=i, email=e, name=n) for i, e, n in contacts]
    built: object = build(recipients[0])  # warm up, as every batch after the first finds it
    data = built if isinstance(built, bytes) else getattr(built, "data", b"")
    started = time.perf_counter()
    for recipient in recipients:
        build(recipient)
    return len(recipients), time.perf_counter() - started, len(data)


def time_signing(builder: MessageBuilder, recipients: list[Recipient], signer: DkimSigner) -> float:
    """Seconds to build and sign a message for each recipient, after one to warm up, as a
    worker whose settings name the key does (the builder signs)."""
    build = builder.signing_with(signer).build_message
    build(recipients[0])
    started = time.perf_counter()
    for recipient in recipients:
        build(recipient)
    return time.perf_counter() - started


def time_signed_builds(rt: Runtime, send_id: int, count: int) -> dict[str, tuple[int, float]]:
    """Builds as in time_builds, each signed with a fresh RSA-2048 key, then Ed25519."""
    with rt.sessions() as session:
        snapshot = load_send(session, send_id)
        contacts = session.execute(
            select(Contact.id, Contact.email, Contact.name).order_by(Contact.id).limit(count)
        ).all()
    if snapshot is None:
        raise RuntimeError(f"send {send_id} is gone")
    builder = rt.builder_for(snapshot)
    recipients = [Recipient(delivery_id=i, email=e, name=n) for i, e, n in contacts]
    domain = rt.settings.sender_domain
    return {
        label: (
            len(recipients),
            time_signing(builder, recipients, DkimSigner([DkimKey("bench", domain, key)])),
        )
        for label, key in (
            ("RSA-2048", generate_key(KeyType.RSA, bits=2048)),
            ("Ed25519", generate_key(KeyType.ED25519)),
        )
    }


def time_audience(rt: Runtime, dataset: Dataset) -> tuple[int, float, float, int]:
    """Scheduling, then arming with one contact in a hundred joining the lists in between
    (their deliveries removed before arming, so that arming adds them back)."""
    with rt.sessions() as session:
        now = datetime.now(UTC)
        started = time.perf_counter()
        scheduled = schedule_send(
            session,
            release_id=dataset.release_id,
            list_names=list(dataset.list_names),
            embargo_at=now + timedelta(hours=1),
            embargo_zone="Europe/London",
            now=now,
            batch_size=rt.settings.batch_size,
            again=True,
        )
        session.flush()
        scheduling = time.perf_counter() - started
        session.execute(
            delete(Delivery).where(
                Delivery.send_id == scheduled.send_id, Delivery.contact_id % 100 == 0
            )
        )
        started = time.perf_counter()
        change = refresh_audience(
            session, send_id=scheduled.send_id, now=now, batch_size=rt.settings.batch_size
        )
        session.flush()
        arming = time.perf_counter() - started
        session.rollback()
    return scheduled.recipients, scheduling, arming, change.joined


def time_recording(rt: Runtime, send_id: int, count: int, group: int) -> RecordingCost:
    """Commit `count` outcomes, `group` to a transaction, through the worker's recorder.

    The deliveries are the first of the send measured before, put back in `sending` as if
    claimed.
    """
    now = datetime.now(UTC)
    with rt.sessions.begin() as session:
        first = select(Delivery.id).where(Delivery.send_id == send_id).order_by(Delivery.id)
        ids = sorted(
            session.scalars(
                update(Delivery)
                .where(Delivery.id.in_(first.limit(count + group).scalar_subquery()))
                .values(state=DeliveryState.SENDING, lease_owner=RECORDING_OWNER)
                .returning(Delivery.id)
            ).all()
        )
    outcomes = [
        Outcome(i, DeliveryState.SENT, now, smtp_code=250, smtp_reply="250 2.0.0 Ok: queued")
        for i in ids
    ]
    groups = [outcomes[i : i + group] for i in range(0, len(outcomes), group)]
    if len(groups) < 2:
        raise RuntimeError(f"send {send_id} has too few deliveries ({len(ids)}) to record")
    database = make_url(rt.settings.database_url).database or ""
    meter = CpuMeter({"PostgreSQL": service_roles(database, os.getpid())["PostgreSQL"]})
    recorder = OutcomeRecorder(rt.engine, owner=RECORDING_OWNER)
    try:
        recorder.record_many(groups[0])  # connects: not part of the measure
        meter.start()
        cpu_started = time.process_time()
        started = time.perf_counter()
        recorded = sum(sum(recorder.record_many(chunk)) for chunk in groups[1:])
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        usage = meter.stop()
    finally:
        recorder.close()
    measured = sum(len(chunk) for chunk in groups[1:])
    if recorded != measured:
        raise RuntimeError(f"{recorded} of {measured} outcomes were recorded")
    return RecordingCost(group, measured, elapsed, cpu, usage.by_role.get("PostgreSQL", 0.0))


def _problem(exc: Exception) -> str:
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first_line}"[:300]


def run_components(
    dataset: Dataset, *, send_id: int, import_rows: int, build_count: int
) -> ComponentFigures:
    """Measured after the sends on `dataset` finished, so nothing else competes. A component
    that fails is reported as such; the others are still measured."""
    figures = ComponentFigures(audience_contacts=dataset.contacts)
    rt = Runtime(Settings(database_url=dataset.url))
    try:
        try:
            (
                figures.audience_deliveries,
                figures.audience_seconds,
                figures.arming_seconds,
                figures.arming_joined,
            ) = time_audience(rt, dataset)
        except Exception as exc:
            figures.problems["audience"] = _problem(exc)
        try:
            figures.build_count, figures.build_seconds, figures.message_bytes = time_builds(
                rt, send_id, build_count
            )
        except Exception as exc:
            figures.problems["build"] = _problem(exc)
        try:
            figures.signed_builds = time_signed_builds(rt, send_id, build_count)
        except Exception as exc:
            figures.problems["signed build"] = _problem(exc)
        try:
            for group in sorted({1, rt.settings.smtp_connections}):
                figures.recording.append(time_recording(rt, send_id, build_count, group))
        except Exception as exc:
            figures.problems["record"] = _problem(exc)
        try:
            figures.import_parse_seconds, figures.import_store_seconds = time_import(
                rt, import_rows
            )
            figures.import_rows = import_rows
        except Exception as exc:
            figures.problems["import"] = _problem(exc)
    finally:
        rt.close()
    return figures
