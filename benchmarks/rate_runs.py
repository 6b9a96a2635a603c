"""The installation's rate limit in the send: what it costs, and how closely it is held.

- The limiter's own cost: COST_ACQUISITIONS message slots taken one at a time from the Lua
  script on the local Redis (and from the embedded mode's file), and the same number of
  messages cleared through a batch's pacing with the limit far away, where slots come a
  few dozen at a time, beside pacing with no limit.
- The send with a limit far above what this machine achieves, beside the unlimited send of
  the same size: the share of its throughput the limiter leaves.
- The send at a set limit: the rate achieved against it, and the most replies in any one
  second as the workers timed them (`deliveries.finished_at`).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, select

from benchmarks.dataset import Dataset, fresh_database, prepare
from benchmarks.ours import OursResult, run_ours
from benchmarks.sink import Receiver
from distributor.engine.pacing import Limits, Pacing, PacingStore
from distributor.engine.pacing_local import LocalPacingStore
from distributor.engine.pacing_redis import RedisPacingStore
from distributor.engine.pacing_run import StorePacing
from distributor.models import Delivery
from distributor.states import DeliveryState

Echo = Callable[[str], object]

FAR_ABOVE = 1_000_000.0  # msg/s: far above what any machine here sends
SET_LIMIT = 500.0  # msg/s
COST_ACQUISITIONS = 10_000
# With the limit far above the achievable rate, the send keeps at least this share of the
# unlimited send's throughput.
TARGET_SHARE = 0.95


@dataclass(frozen=True, slots=True)
class LimiterCost:
    acquisitions: int
    redis_script_us: float  # one slot from the Lua script, one call each
    local_script_us: float  # one slot from the embedded mode's file, one call each
    paced_message_us: float  # a message cleared through a batch's pacing, limit far away
    unlimited_message_us: float  # the same with no limit (no store call)


@dataclass
class LimitedSend:
    limit: float
    run: OursResult
    # replies in any window [t, t + 1 s), by the workers' clocks
    most_in_one_second: int | None = None

    @property
    def achieved(self) -> float | None:
        return self.run.figures.throughput


@dataclass
class RateResult:
    size: int
    cost: LimiterCost
    unlimited: OursResult
    unlimited_from_main: bool  # the main run of this size; else a send of its own
    far: LimitedSend
    at_limit: LimitedSend
    notes: list[str] = field(default_factory=list)

    @property
    def share(self) -> float | None:
        far, base = self.far.achieved, self.unlimited.figures.throughput
        return far / base if far is not None and base else None


def measure_cost(redis_url: str, *, count: int = COST_ACQUISITIONS) -> LimiterCost:
    redis_store = RedisPacingStore(redis_url, installation=f"bench-{uuid.uuid4().hex[:12]}")
    with tempfile.TemporaryDirectory(prefix="pacing-bench-") as folder:
        local_store = LocalPacingStore(Path(folder) / "pacing.sqlite3")
        try:
            redis_us = _per_call(redis_store, count)
            local_us = _per_call(local_store, count)
            paced_us = _per_message(
                StorePacing(
                    Limits(rate_per_second=FAR_ABOVE),
                    redis_store,
                    stopping=lambda: False,
                    observed_rate=lambda: 0.0,
                ),
                count,
            )
            unlimited_us = _per_message(Pacing(), count)
        finally:
            redis_store.clear()
            redis_store.close()
            local_store.close()
    return LimiterCost(count, redis_us, local_us, paced_us, unlimited_us)


def _per_call(store: PacingStore, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        store.take_messages("relay", rate=FAR_ABOVE, relay=True, want=1, horizon=0.05)
    return (time.perf_counter() - started) / count * 1e6


def _per_message(pacing: Pacing, count: int) -> float:
    async def clear_all() -> float:
        await pacing.start()
        started = time.perf_counter()
        for _ in range(count):
            await pacing.message("news.example.org")
        elapsed = time.perf_counter() - started
        await pacing.close()
        return elapsed

    return asyncio.run(clear_all()) / count * 1e6


def most_in_one_second(url: str, send_id: int) -> int | None:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            times = sorted(
                at.timestamp()
                for at in connection.scalars(
                    select(Delivery.finished_at).where(
                        Delivery.send_id == send_id,
                        Delivery.state == DeliveryState.SENT,
                        Delivery.finished_at.is_not(None),
                    )
                )
                if at is not None
            )
    finally:
        engine.dispose()
    if not times:
        return None
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


def run_rate_limits(
    *,
    size: int,
    main_runs: list[OursResult],
    postgres_url: str,
    redis_url: str,
    receiver: Receiver,
    workers: int,
    lead_seconds: float,
    arm_lead_seconds: float | None,
    settle_seconds: float,
    raw_dir: Path,
    keep_databases: bool,
    echo: Echo,
) -> RateResult:
    echo(f"[rate limit] the limiter's cost: {COST_ACQUISITIONS:,} acquisitions")
    cost = measure_cost(redis_url)
    echo(
        f"[rate limit] {cost.redis_script_us:.0f} us a slot from Redis, "
        f"{cost.paced_message_us:.1f} us a message through the pacing (limit far away)"
    )

    def send(label: str, limit: float | None) -> tuple[OursResult, int | None]:
        folder = raw_dir / f"rate-{label}-{size}"
        folder.mkdir(parents=True, exist_ok=True)
        with fresh_database(postgres_url, keep=keep_databases) as url:
            echo(f"[rate limit, {label}] loading {size:,} contacts into a fresh database")
            dataset: Dataset = prepare(url, size)
            echo(f"[rate limit, {label}] our send: {workers} workers")
            run = run_ours(
                dataset,
                settle_seconds=settle_seconds,
                receiver=receiver,
                redis_url=redis_url,
                workers=workers,
                lead_seconds=lead_seconds,
                run_dir=folder,
                arm_lead_seconds=arm_lead_seconds,
                extra_settings=None if limit is None else {"rate_per_second": limit},
            )
            busiest = most_in_one_second(dataset.url, run.send_id)
        achieved = run.figures.throughput
        echo(
            f"[rate limit, {label}] "
            + ("n/a" if achieved is None else f"{achieved:,.0f} msg/s")
            + ("" if busiest is None else f"; at most {busiest:,} in one second")
        )
        return run, busiest

    unlimited = next((r for r in main_runs if r.size == size), None)
    from_main = unlimited is not None
    if unlimited is None:
        unlimited, _ = send("unlimited", None)
    far_run, far_busiest = send("far-above", FAR_ABOVE)
    set_run, set_busiest = send("set", SET_LIMIT)
    return RateResult(
        size=size,
        cost=cost,
        unlimited=unlimited,
        unlimited_from_main=from_main,
        far=LimitedSend(FAR_ABOVE, far_run, far_busiest),
        at_limit=LimitedSend(SET_LIMIT, set_run, set_busiest),
    )
