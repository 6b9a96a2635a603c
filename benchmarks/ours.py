"""The real thing: scheduler and worker processes from distributor.processes, PostgreSQL, a
Redis queue of its own, and the receiver. Schedule a send a fixed lead ahead, wait until
every delivery is final, then read the figures from the deliveries table.

A `watch` function, if given, runs in a thread of its own from the embargo until the send
is over, beside the waiting; the recovery run uses it to stop a worker process mid-send."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from benchmarks.children import BenchmarkError
from benchmarks.cpu import CpuMeter, CpuUsage, service_roles, wait_for_quiet
from benchmarks.dataset import Dataset
from benchmarks.figures import Attempt, DeliveryFigures, send_figures, unfinished_count
from benchmarks.memory import MemoryTracker, ProcessMemory, children_of
from benchmarks.profiling import ProfileSummary, PySpyRecorder, py_spy_version, summarise
from benchmarks.sink import Receiver, SinkCounters
from benchmarks.waiting import STALL_SECONDS, wait_until_final
from distributor.models import Delivery
from distributor.processes import ManagedProcess, start_scheduler, start_worker
from distributor.runtime import Runtime
from distributor.scheduling import schedule_send
from distributor.settings import Settings

PROFILE_RATE = 200  # samples per second; py-spy itself needs CPU on a 2-CPU machine


@dataclass
class OursResult:
    size: int
    send_id: int
    workers: int
    settings: dict[str, object]
    schedule_seconds: float  # schedule_send for this audience, commit included
    figures: DeliveryFigures
    smtp: SinkCounters
    memory: list[ProcessMemory]
    # Messages the receiver had counted when the embargo lifted: any would have been early.
    smtp_before_embargo: int | None = None
    embargo_at: datetime | None = None
    batches: int = 0
    batch_messages: int | None = None  # broker messages the scheduler queued for those batches
    cpu: CpuUsage | None = None  # from the embargo until every delivery was final
    quiet: tuple[float, float] | None = None  # waited for other load: (seconds, busy share)
    profile: ProfileSummary | None = None
    attempts: list[Attempt] = field(default_factory=list)  # every try, this one included
    notes: list[str] = field(default_factory=list)
    relay_rtt_ms: float = 0.0  # round trip added in front of the receiver
    connections_used: int | None = None  # relay connections that carried a message
    round_trips: int | None = None  # waits for the relay, over every connection


def purge_queue(redis_url: str, queue: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        keys = [queue, *client.scan_iter(match=f"*{queue}*")]
        client.delete(*keys)
    finally:
        client.close()


@dataclass(frozen=True)
class LiveSend:
    """What a watch function is given: the send under way and the processes sending it."""

    send_id: int
    embargo_at: datetime
    recipients: int
    worker_pid: int  # the worker's main process; its pool processes send
    sessions: sessionmaker[Session]
    receiver: Receiver
    smtp_before: SinkCounters  # the receiver's counters before the send
    over: threading.Event  # set once every delivery is final, or the waiting gave up


Watch = Callable[[LiveSend], None]


DISPATCHED = re.compile(r"dispatched (\d+) batch")


BATCH_FINISHED = re.compile(r"batch finished: .*?(\d+) connection\(s\), (\d+) round trip\(s\)")


def relay_use(worker_log: str) -> tuple[int | None, int | None]:
    """Connections that carried messages and round trips, summed over the batches' log lines."""
    found = BATCH_FINISHED.findall(worker_log)
    if not found:
        return None, None
    return sum(int(c) for c, _ in found), sum(int(r) for _, r in found)


def dispatched_messages(scheduler_log: str) -> int | None:
    """Broker messages the scheduler queued, from its log ("dispatched N batch(es)")."""
    found = DISPATCHED.findall(scheduler_log)
    return sum(int(n) for n in found) if found else None


def batch_count(session: Session, send_id: int) -> int:
    return int(
        session.scalar(
            select(func.count(func.distinct(Delivery.batch_no))).where(Delivery.send_id == send_id)
        )
        or 0
    )


def _wait_until(instant: datetime, clock_now: datetime) -> None:
    remaining = (instant - clock_now).total_seconds()
    if remaining > 0:
        time.sleep(remaining)


def run_ours(
    dataset: Dataset,
    *,
    receiver: Receiver,
    redis_url: str,
    workers: int,
    lead_seconds: float,
    run_dir: Path,
    arm_lead_seconds: float | None = None,
    py_spy: str | None = None,
    settle_seconds: float = 0.0,
    lease_seconds: float | None = None,
    watch: Watch | None = None,
    smtp_url: str | None = None,
    relay_rtt_ms: float = 0.0,
    extra_settings: Mapping[str, Any] | None = None,
) -> OursResult:
    """`extra_settings` are further Settings fields for the worker and the scheduler (such as
    a DKIM key), validated as the processes' own settings are."""
    queue = f"distributor-bench-{uuid.uuid4().hex[:12]}"
    settings = Settings(
        data_dir=run_dir / "var",
        database_url=dataset.url,
        broker_url=redis_url,
        queue_name=queue,
        smtp_url=smtp_url or receiver.url,
        **dict(extra_settings or {}),
    )
    if arm_lead_seconds is not None:
        settings = settings.model_copy(update={"arm_lead_seconds": arm_lead_seconds})
    if lease_seconds is not None:
        settings = settings.model_copy(update={"lease_seconds": lease_seconds})
    if lead_seconds <= settings.arm_lead_seconds + settings.scheduler_interval_seconds:
        raise BenchmarkError(
            f"a lead of {lead_seconds:g} s leaves no time to arm the send "
            f"{settings.arm_lead_seconds:g} s ahead; use a longer lead"
        )
    log_dir = run_dir / "logs"
    rt = Runtime(settings)
    processes: list[ManagedProcess] = []
    tracker = MemoryTracker()
    recorder: PySpyRecorder | None = None
    notes: list[str] = []
    over = threading.Event()
    watcher: threading.Thread | None = None
    try:
        worker = start_worker(settings, log_dir=log_dir, concurrency=workers)
        processes.append(worker)
        scheduler = start_scheduler(settings, log_dir=log_dir)
        processes.append(scheduler)
        tracker.track("worker main", worker.process.pid, children_role="worker child")
        tracker.track("scheduler", scheduler.process.pid)
        tracker.start()
        quiet = wait_for_quiet(timeout=settle_seconds) if settle_seconds > 0 else None
        database = make_url(dataset.url).database or ""
        meter = CpuMeter(
            {
                "worker children": lambda: children_of(worker.process.pid),
                "worker main": lambda: [worker.process.pid],
                "scheduler": lambda: [scheduler.process.pid],
                **service_roles(database, receiver.child.pid),
            }
        )
        smtp_before = receiver.counters()

        started = time.perf_counter()
        with rt.sessions.begin() as session:
            now = rt.clock.now()
            embargo_at = now + timedelta(seconds=lead_seconds)
            scheduled = schedule_send(
                session,
                release_id=dataset.release_id,
                list_names=list(dataset.list_names),
                embargo_at=embargo_at,
                embargo_zone="Europe/London",
                now=now,
                batch_size=settings.batch_size,
                # Every scenario sends the same release to the same lists.
                again=True,
            )
        schedule_seconds = time.perf_counter() - started
        ahead = (embargo_at - rt.clock.now()).total_seconds()
        if ahead < settings.arm_lead_seconds:
            notes.append(
                f"scheduling took {schedule_seconds:.1f} s, leaving {ahead:.1f} s before the "
                f"embargo (less than the {settings.arm_lead_seconds:g} s arming lead)"
            )

        _wait_until(embargo_at - timedelta(seconds=0.25), rt.clock.now())
        if py_spy is not None:
            recorder = PySpyRecorder(py_spy, run_dir / "profile", rate=PROFILE_RATE)
            recorder.start(children_of(worker.process.pid))
        _wait_until(embargo_at, rt.clock.now())
        smtp_before_embargo = (receiver.counters() - smtp_before).messages
        meter.start()
        if watch is not None:
            live = LiveSend(
                send_id=scheduled.send_id,
                embargo_at=embargo_at,
                recipients=scheduled.recipients,
                worker_pid=worker.process.pid,
                sessions=rt.sessions,
                receiver=receiver,
                smtp_before=smtp_before,
                over=over,
            )
            watcher = threading.Thread(target=watch, args=(live,), name="watch", daemon=True)
            watcher.start()

        def unfinished() -> int:
            meter.sample()
            with rt.sessions() as session:
                return unfinished_count(session, scheduled.send_id)

        def alive() -> bool:
            return all(p.process.poll() is None for p in processes)

        # A batch whose worker died waits for its lease to expire: allow for that.
        lease = settings.lease_seconds
        stopped = wait_until_final(
            unfinished,
            embargo_at=embargo_at,
            timeout_seconds=max(120.0, scheduled.recipients / 100) + 2 * lease,
            alive=alive,
            stall_seconds=max(STALL_SECONDS, 2 * lease + 15),
        )
        over.set()
        if stopped is not None:
            notes.append(f"{stopped} (logs in {log_dir})")
        cpu = meter.stop()
        if watcher is not None:
            watcher.join(timeout=30)

        profile = None
        if recorder is not None:
            files = recorder.stop()
            tool = (
                f"{py_spy_version(recorder.binary)}, {PROFILE_RATE} Hz, wall clock (idle included)"
            )
            profile = summarise(files, tool=tool, rate=PROFILE_RATE)
            recorder = None
        memory = tracker.stop()
        receiver.wait_for_messages(scheduled.recipients, since=smtp_before, timeout=10)
        smtp = receiver.counters() - smtp_before
        with rt.sessions() as session:
            figures = send_figures(session, scheduled.send_id, embargo_at)
            batches = batch_count(session, scheduled.send_id)
        batch_messages = dispatched_messages(scheduler.log_text())
        connections_used, round_trips = relay_use(worker.log_text())
    finally:
        over.set()
        if recorder is not None:
            recorder.stop()
        tracker.stop()
        for process in reversed(processes):
            process.stop()
        rt.close()
        purge_queue(redis_url, queue)
    return OursResult(
        size=dataset.contacts,
        send_id=scheduled.send_id,
        workers=workers,
        settings={
            "batch_size": settings.batch_size,
            "claim_chunk": settings.claim_chunk,
            "arm_lead_seconds": settings.arm_lead_seconds,
            "scheduler_interval_seconds": settings.scheduler_interval_seconds,
            "redispatch_after_seconds": settings.redispatch_after_seconds,
            "lease_seconds": settings.lease_seconds,
            "lead_seconds": lead_seconds,
            # Signing keys, whether passed in or from the environment: None means unsigned.
            "dkim_private_key_path": _text_or_none(settings.dkim_private_key_path),
            "dkim_ed25519_private_key_path": _text_or_none(settings.dkim_ed25519_private_key_path),
        },
        batches=batches,
        batch_messages=batch_messages,
        schedule_seconds=schedule_seconds,
        figures=figures,
        cpu=cpu,
        quiet=quiet,
        smtp=smtp,
        smtp_before_embargo=smtp_before_embargo,
        embargo_at=embargo_at,
        memory=memory,
        profile=profile,
        notes=notes,
        relay_rtt_ms=relay_rtt_ms,
        connections_used=connections_used,
        round_trips=round_trips,
    )


def _text_or_none(path: Path | None) -> str | None:
    return None if path is None else str(path)


def default_workers() -> int:
    """The worker's default for this machine, as `distributor worker` chooses it."""
    return Settings().effective_worker_concurrency
