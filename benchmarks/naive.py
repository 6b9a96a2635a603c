"""Running the baseline (benchmarks/naive_app.py) on the same data, machine and receiver.

Its worker gets the same number of processes as ours; every task is queued with the
embargo as its ETA, as `send_release_email.apply_async((row_id,), eta=embargo)` would.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from celery import Celery
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from benchmarks.children import Child, python_env, start_child
from benchmarks.cpu import CpuMeter, CpuUsage, service_roles, wait_for_quiet
from benchmarks.dataset import Dataset
from benchmarks.figures import Attempt, DeliveryFigures, seconds_after
from benchmarks.memory import MemoryTracker, ProcessMemory, children_of
from benchmarks.naive_app import TASK_NAME, Outbox, build_email
from benchmarks.ours import purge_queue
from benchmarks.sink import Receiver, SinkCounters
from benchmarks.waiting import wait_until_final
from distributor.database import make_engine
from distributor.models import Contact, Release


@dataclass
class NaiveResult:
    size: int
    workers: int
    publish_seconds: float  # queueing every task, one ETA message each
    message_bytes: int  # size of one message as the baseline builds it
    figures: DeliveryFigures
    smtp: SinkCounters
    memory: list[ProcessMemory]
    cpu: CpuUsage | None = None  # from the embargo until every email was sent
    quiet: tuple[float, float] | None = None  # waited for other load: (seconds, busy share)
    attempts: list[Attempt] = field(default_factory=list)  # every try, this one included
    notes: list[str] = field(default_factory=list)


def fill_outbox(engine: Engine, *, count: int, release_id: int) -> list[int]:
    """A fresh outbox of `count` rows, one per contact, all pending."""
    Outbox.metadata.drop_all(engine)
    Outbox.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO naive_outbox (contact_id, release_id, state) "
                "SELECT id, :release_id, 'pending' FROM contacts ORDER BY id LIMIT :count"
            ),
            {"release_id": release_id, "count": count},
        )
        return list(connection.scalars(select(Outbox.id).order_by(Outbox.id)))


def sample_size(engine: Engine, outbox_id: int) -> int:
    """The size of one message as the baseline's task builds it."""
    with Session(engine) as session:
        row = session.get(Outbox, outbox_id)
        assert row is not None
        contact = session.get(Contact, row.contact_id)
        release = session.get(Release, row.release_id)
        assert contact is not None and release is not None
        return len(build_email(contact, release).as_bytes())


def outbox_figures(engine: Engine, embargo_at: datetime) -> DeliveryFigures:
    sent = Outbox.state == "sent"
    with engine.connect() as connection:
        total, n_sent, first, last, early = connection.execute(
            select(
                func.count(),
                func.count().filter(sent),
                func.min(Outbox.sent_at).filter(sent),
                func.max(Outbox.sent_at).filter(sent),
                func.count().filter(Outbox.sent_at < embargo_at),
            )
        ).one()
    return DeliveryFigures(
        recipients=int(total),
        sent=int(n_sent),
        unfinished=int(total) - int(n_sent),
        first_s=seconds_after(first, embargo_at),
        last_s=seconds_after(last, embargo_at),
        early=int(early),
    )


def start_naive_worker(
    dataset: Dataset, *, receiver: Receiver, redis_url: str, queue: str, workers: int, log_dir: Path
) -> Child:
    env = python_env(
        {
            "NAIVE_BROKER_URL": redis_url,
            "NAIVE_QUEUE": queue,
            "NAIVE_DATABASE_URL": dataset.url,
            "NAIVE_SMTP_HOST": "127.0.0.1",
            "NAIVE_SMTP_PORT": str(receiver.port),
        }
    )
    argv = [
        "python",
        "-m",
        "celery",
        "--app=benchmarks.naive_app",
        "worker",
        "--loglevel=INFO",
        f"--concurrency={workers}",
        f"--queues={queue}",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    worker = start_child("naive-worker", argv, log_dir=log_dir, env=env)
    try:
        worker.wait_for_log(" ready.", timeout=60)
    except Exception:
        worker.stop()
        raise
    return worker


def run_naive(
    dataset: Dataset,
    *,
    count: int,
    receiver: Receiver,
    redis_url: str,
    workers: int,
    lead_seconds: float,
    run_dir: Path,
    settle_seconds: float = 0.0,
) -> NaiveResult:
    queue = f"distributor-bench-naive-{uuid.uuid4().hex[:12]}"
    engine = make_engine(dataset.url)
    tracker = MemoryTracker()
    worker: Child | None = None
    notes: list[str] = []
    publisher = Celery("naive-publisher", broker=redis_url)
    publisher.conf.task_default_queue = queue
    try:
        ids = fill_outbox(engine, count=count, release_id=dataset.release_id)
        message_bytes = sample_size(engine, ids[0])
        worker = start_naive_worker(
            dataset,
            receiver=receiver,
            redis_url=redis_url,
            queue=queue,
            workers=workers,
            log_dir=run_dir / "logs",
        )
        tracker.track("naive worker main", worker.pid, children_role="naive worker child")
        tracker.start()
        quiet = wait_for_quiet(timeout=settle_seconds) if settle_seconds > 0 else None
        naive_pid = worker.pid
        meter = CpuMeter(
            {
                "worker children": lambda: children_of(naive_pid),
                "worker main": lambda: [naive_pid],
                **service_roles(make_url(dataset.url).database or "", receiver.child.pid),
            }
        )
        smtp_before = receiver.counters()
        embargo_at = datetime.now(UTC) + timedelta(seconds=lead_seconds)
        started = time.perf_counter()
        with publisher.producer_or_acquire() as producer:
            for outbox_id in ids:
                publisher.send_task(TASK_NAME, args=(outbox_id,), eta=embargo_at, producer=producer)
        publish_seconds = time.perf_counter() - started
        if datetime.now(UTC) > embargo_at:
            notes.append(f"queueing took {publish_seconds:.1f} s, past the embargo")

        wait = (embargo_at - datetime.now(UTC)).total_seconds()
        time.sleep(max(0.0, wait))
        meter.start()

        def unsent() -> int:
            meter.sample()
            with engine.connect() as connection:
                return int(
                    connection.scalar(select(func.count()).where(Outbox.state != "sent")) or 0
                )

        stopped = wait_until_final(
            unsent,
            embargo_at=embargo_at,
            timeout_seconds=max(120.0, count / 10),
            alive=lambda: worker is not None and worker.process.poll() is None,
        )
        if stopped is not None:
            notes.append(f"{stopped} (log in {worker.log_path})")
        cpu = meter.stop()
        memory = tracker.stop()
        receiver.wait_for_messages(count, since=smtp_before, timeout=10)
        smtp = receiver.counters() - smtp_before
        figures = outbox_figures(engine, embargo_at)
    finally:
        tracker.stop()
        if worker is not None:
            worker.stop()
        engine.dispose()
        publisher.close()
        purge_queue(redis_url, queue)
    return NaiveResult(
        size=count,
        workers=workers,
        publish_seconds=publish_seconds,
        message_bytes=message_bytes,
        figures=figures,
        smtp=smtp,
        memory=memory,
        cpu=cpu,
        quiet=quiet,
        notes=notes,
    )
