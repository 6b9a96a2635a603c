"""The installation's limits where they are kept: the Lua scripts on a real Redis (a database
of these tests' own), the embedded mode's file shared by two processes, and the arithmetic
of slowing down when the relay pushes back."""

from __future__ import annotations

import asyncio
import itertools
import math
import multiprocessing
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from distributor.clock import ManualClock
from distributor.engine import pacing_run
from distributor.engine.daily_quota import hold_reason, next_day_starts
from distributor.engine.domain_limits import read_domain_limits
from distributor.engine.pacing import (
    HORIZON_SECONDS,
    PACE,
    LimiterWaits,
    Limits,
    Pacer,
    PacingStore,
    WaitKind,
)
from distributor.engine.pacing_local import LocalPacingStore
from distributor.engine.pacing_redis import RedisPacingStore
from distributor.engine.pacing_run import StorePacing
from distributor.engine.relay_backoff import (
    RECOVERY_SECONDS,
    ConnectionBackoff,
    Pushback,
    RateBackoff,
    allowed_connections,
    allowed_rate,
    connections_after_refusal,
    pushback_of,
    rate_after_pushback,
)
from distributor.errors import ConfigurationError, RelayUnavailableError, TransportError
from distributor.runtime import Runtime
from distributor.settings import Settings
from distributor.states import DeliveryState
from distributor.status import send_statuses
from distributor.transport import Envelope
from distributor.transport.memory import InMemoryTransport
from tests.support.engine import EMBARGO, armed_send, batch_job, deliveries_by_email, run_batch
from tests.support.services import REDIS_URL, redis_available, require

SENT = DeliveryState.SENT

PACING_REDIS_URL = REDIS_URL.rsplit("/", 1)[0] + "/13"


@pytest.fixture(params=["redis", "local"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PacingStore]:
    if request.param == "redis":
        require(redis_available(), "Redis")
        redis_store = RedisPacingStore(PACING_REDIS_URL, installation=uuid.uuid4().hex)
        yield redis_store
        redis_store.clear()
        redis_store.close()
        return
    local = LocalPacingStore(tmp_path / "pacing.sqlite3")
    yield local
    local.close()


def slot_times(store: PacingStore, *, rate: float, seconds: float) -> list[float]:
    """Take every slot offered for `seconds`, as a busy worker would; their times by the
    store's clock."""
    slots: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        grant = store.take_messages("relay", rate=rate, relay=True, want=64, horizon=0.05)
        if grant.count == 0:
            time.sleep(grant.first_in)
            continue
        slots.extend(grant.at + grant.first_in + i * grant.interval for i in range(grant.count))
        time.sleep(grant.first_in + grant.count * grant.interval * 0.6)
    return slots


def most_in_one_second(times: list[float]) -> int:
    times = sorted(times)
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0 - 1e-6:  # a window [t, t + 1 s), to the microsecond
            start += 1
        most = max(most, end - start + 1)
    return most


# -- the store: message slots ---------------------------------------------------------------


def test_message_slots_are_one_interval_apart_and_never_more_than_the_rate(
    store: PacingStore,
) -> None:
    slots = slot_times(store, rate=200, seconds=1.6)
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    # spaced for a little under the rate, so that messages a little late do not bunch above it
    assert min(gaps) == pytest.approx(1 / (200 * PACE), abs=1e-5)
    assert most_in_one_second(slots) <= 200 * PACE + 1
    assert 200 * PACE * 1.4 <= len(slots) <= 200 * 1.7


def test_no_burst_after_an_idle_spell(store: PacingStore) -> None:
    store.take_messages("relay", rate=100, relay=True, want=1, horizon=HORIZON_SECONDS)
    time.sleep(0.3)  # a token bucket would have saved up thirty
    grant = store.take_messages("relay", rate=100, relay=True, want=64, horizon=HORIZON_SECONDS)
    assert grant.interval == pytest.approx(1 / (100 * PACE), rel=1e-3)
    # the first, and the horizon's worth after it
    assert grant.count == math.floor(HORIZON_SECONDS / grant.interval) + 1 < 30


def test_a_limit_far_away_hands_out_what_is_asked_for(store: PacingStore) -> None:
    grant = store.take_messages("relay", rate=1e6, relay=True, want=64, horizon=HORIZON_SECONDS)
    assert grant.count == 64
    unlimited = store.take_messages("relay", rate=None, relay=True, want=7, horizon=0.05)
    assert (unlimited.count, unlimited.interval) == (7, 0.0)


def test_each_domain_has_slots_of_its_own(store: PacingStore) -> None:
    def take(domain: str) -> tuple[int, float]:
        grant = store.take_messages(
            f"domain:{domain}", rate=1, relay=False, want=5, horizon=HORIZON_SECONDS
        )
        return grant.count, grant.first_in

    assert take("gmail.com") == (1, 0)
    count, wait = take("gmail.com")
    # the next one a second on (and a little), less the horizon it may be taken ahead
    assert count == 0 and wait == pytest.approx(1 / PACE - HORIZON_SECONDS, abs=0.05)
    assert take("example.org") == (1, 0)


def test_the_window_counts_a_message_until_a_second_after_its_reply(store: PacingStore) -> None:
    def open_(message: str) -> float:
        return store.open_window("relay", message, rate=3, relay=True, hold=30)

    assert [open_(m) for m in ("a", "b", "c")] == [0.0, 0.0, 0.0]
    # full: one still in flight counts however long it takes
    assert open_("d") > 0.5
    store.close_window("relay", ["a", "b"])
    assert open_("d") == pytest.approx(1.0, abs=0.1)  # a second after those replies
    time.sleep(1.05)
    # "a" and "b" have left; "c" is still in flight
    assert [open_("d"), open_("e")] == [0.0, 0.0]
    assert open_("f") > 0.5


# -- the store: connection slots ------------------------------------------------------------


def test_connection_slots_are_capped_and_come_back_when_released(store: PacingStore) -> None:
    assert store.take_connection("a", configured=2, ttl=20).held
    assert store.take_connection("b", configured=2, ttl=20).held
    refused = store.take_connection("c", configured=2, ttl=20)
    assert (refused.held, refused.holders, refused.allowed) == (False, 2, 2)
    assert store.take_connection("a", configured=2, ttl=20).held  # a holder keeps its own
    store.release_connections(["b"])
    assert store.take_connection("c", configured=2, ttl=20).held


def test_a_killed_process_slots_come_back_when_they_expire(store: PacingStore) -> None:
    assert store.take_connection("killed", configured=1, ttl=0.3).held
    assert not store.take_connection("waiting", configured=1, ttl=0.3).held
    time.sleep(0.4)  # the holder stopped renewing
    assert store.take_connection("waiting", configured=1, ttl=0.3).held


def test_a_renewed_slot_stays_held(store: PacingStore) -> None:
    assert store.take_connection("alive", configured=1, ttl=0.3).held
    for _ in range(3):
        time.sleep(0.15)
        store.renew_connections(["alive"], ttl=0.3)
    assert not store.take_connection("waiting", configured=1, ttl=0.3).held
    assert store.read().connections_held == 1


def test_a_refused_connection_lowers_the_allowance_to_what_the_relay_took(
    store: PacingStore,
) -> None:
    for holder in "abcde":
        assert store.take_connection(holder, configured=None, ttl=20).held
    assert store.refused_connection("e", configured=None) == 5
    reading = store.read()
    backoff = reading.connection_backoff
    assert backoff is not None and backoff.ceiling == 4
    # halved from the four the relay took, then one more every couple of seconds
    assert allowed_connections(None, backoff, reading.now) == 2
    store.release_connections(["c", "d", "e"])
    assert not store.take_connection("f", configured=None, ttl=20).held


def test_a_relay_that_refuses_a_lone_connection_teaches_nothing(store: PacingStore) -> None:
    assert store.take_connection("only", configured=None, ttl=20).held
    assert store.refused_connection("only", configured=None) == 1
    assert store.read().connection_backoff is None


# -- the store: the relay pushing back, the daily quota ------------------------------------


def test_a_pushback_halves_the_rate_for_everyone_then_it_recovers(store: PacingStore) -> None:
    store.push_back_rate(configured=300, observed=0)
    assert store.relay_rate(300) == pytest.approx(150, rel=0.01)
    store.push_back_rate(configured=300, observed=0)  # within a second: the same refusal
    assert store.relay_rate(300) == pytest.approx(150, rel=0.01)
    slots = store.take_messages("relay", rate=300, relay=True, want=64, horizon=0.05)
    assert slots.interval == pytest.approx(1 / (150 * PACE), rel=0.01)
    reading = store.read()
    assert reading.rate_backoff is not None
    # the scripts and the Python functions agree on the way back
    later = reading.now + RECOVERY_SECONDS / 2
    assert allowed_rate(300, reading.rate_backoff, later) == pytest.approx(225, rel=0.01)


def test_without_a_set_rate_a_pushback_limits_to_half_of_what_was_sent(
    store: PacingStore,
) -> None:
    assert store.relay_rate(None) is None
    store.push_back_rate(configured=None, observed=800)
    assert store.relay_rate(None) == pytest.approx(400, rel=0.01)


def test_the_daily_quota_is_shared_and_unused_units_come_back(store: PacingStore) -> None:
    first = store.take_quota(quota=10, want=8)
    second = store.take_quota(quota=10, want=8)
    assert (first.granted, second.granted) == (8, 2)
    spent = store.take_quota(quota=10, want=8)
    assert spent.granted == 0
    renews = datetime.fromtimestamp(spent.renews_at, UTC)
    assert (renews.hour, renews.minute) == (0, 0) and renews > datetime.now(UTC)
    store.return_quota(second.day, 2)
    assert store.read().quota_used_today == 8
    assert store.take_quota(quota=10, want=8).granted == 2


# -- one batch's pacing ---------------------------------------------------------------------


def test_lanes_of_a_batch_go_at_the_rate_and_stop_when_the_quota_is_spent(
    store: PacingStore,
) -> None:
    pacing = StorePacing(
        Limits(rate_per_second=100, daily_quota=30),
        store,
        stopping=lambda: False,
        observed_rate=lambda: 0.0,
    )
    went: list[float] = []

    async def lane() -> None:
        while await pacing.message("news.example.org"):
            went.append(time.monotonic())

    async def scenario() -> None:
        await pacing.start()
        await asyncio.gather(*(lane() for _ in range(4)))
        await pacing.close()

    asyncio.run(scenario())
    assert len(went) == 30
    assert went[-1] - went[0] == pytest.approx(29 / (100 * PACE), abs=0.03)
    assert pacing.quota_renews_at is not None
    assert store.read().quota_used_today == 30


def test_a_domain_limit_paces_its_domain_only(store: PacingStore) -> None:
    pacing = StorePacing(
        Limits(domains={"gmail.com": 20}),
        store,
        stopping=lambda: False,
        observed_rate=lambda: 0.0,
    )
    went: dict[str, list[float]] = {"gmail.com": [], "example.org": []}

    async def lane(domain: str) -> None:
        for _ in range(10):
            assert await pacing.message(domain)
            went[domain].append(time.monotonic())

    async def scenario() -> None:
        await pacing.start()
        await asyncio.gather(lane("gmail.com"), lane("gmail.com"), lane("example.org"))
        await pacing.close()

    asyncio.run(scenario())
    gmail = sorted(went["gmail.com"])
    assert gmail[-1] - gmail[0] == pytest.approx(19 / (20 * PACE), abs=0.05)
    others = went["example.org"]
    assert others[-1] - others[0] < 0.05  # not held back by gmail.com's limit


@pytest.mark.parametrize(("rate", "announced"), [(100, False), (1_000_000, True)])
def test_a_message_is_announced_ahead_only_while_the_limit_is_far_away(
    store: PacingStore, rate: float, announced: bool
) -> None:
    # at the limit a message announced ahead would go later than its slot, and bunch
    pacing = StorePacing(
        Limits(rate_per_second=rate), store, stopping=lambda: False, observed_rate=lambda: 0.0
    )

    async def scenario() -> bool:
        for _ in range(30):  # long enough to tell whether the limit is near
            assert await pacing.message("a.example")
        ready = await pacing.message_ready("a.example")
        await pacing.close()
        return ready

    assert asyncio.run(scenario()) is announced


# -- the embedded mode: one file, two processes ---------------------------------------------


def _take_from_file(path: str, seconds: float, found: multiprocessing.Queue[list[float]]) -> None:
    local = LocalPacingStore(Path(path))
    slots: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        grant = local.take_messages("relay", rate=150, relay=True, want=8, horizon=0.05)
        if grant.count == 0:
            time.sleep(grant.first_in)
            continue
        slots.extend(grant.at + grant.first_in + i * grant.interval for i in range(grant.count))
    local.close()
    found.put(slots)


def test_two_local_processes_share_one_rate(tmp_path: Path) -> None:
    path = tmp_path / "pacing.sqlite3"
    LocalPacingStore(path).close()
    context = multiprocessing.get_context("spawn")
    found: multiprocessing.Queue[list[float]] = context.Queue()
    workers = [
        context.Process(target=_take_from_file, args=(str(path), 1.5, found)) for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    per_process = [found.get(timeout=30) for _ in workers]
    for worker in workers:
        worker.join(timeout=10)
    assert all(per_process), "each process took slots"
    slots = sorted(per_process[0] + per_process[1])
    assert most_in_one_second(slots) <= 150
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert min(gaps) == pytest.approx(1 / (150 * PACE), abs=1e-5)


def _hold_connections(path: str, holders: list[str], found: multiprocessing.Queue[int]) -> None:
    local = LocalPacingStore(Path(path))
    found.put(sum(local.take_connection(h, configured=3, ttl=20).held for h in holders))
    local.close()


def test_two_local_processes_share_one_connection_cap(tmp_path: Path) -> None:
    path = tmp_path / "pacing.sqlite3"
    context = multiprocessing.get_context("spawn")
    found: multiprocessing.Queue[int] = context.Queue()
    first = context.Process(target=_hold_connections, args=(str(path), ["a1", "a2"], found))
    first.start()
    assert found.get(timeout=30) == 2
    first.join(timeout=10)
    second = context.Process(target=_hold_connections, args=(str(path), ["b1", "b2"], found))
    second.start()
    assert found.get(timeout=30) == 1
    second.join(timeout=10)


# -- slowing down and recovering ------------------------------------------------------------


def test_a_cut_halves_and_recovers_in_steps_to_the_set_rate() -> None:
    cut = rate_after_pushback(300, None, observed=0, now=100.0)
    assert cut == RateBackoff(base=300, cut_at=100.0)
    assert allowed_rate(300, cut, 100.0) == 150
    assert allowed_rate(300, cut, 100.0 + RECOVERY_SECONDS / 2) == pytest.approx(225)
    assert allowed_rate(300, cut, 100.0 + RECOVERY_SECONDS) == 300
    # a second refusal while slowed down halves what is in force then
    again = rate_after_pushback(300, cut, observed=0, now=105.0)
    assert again is not None and again.base == pytest.approx(187.5)
    assert rate_after_pushback(300, cut, observed=0, now=100.5) is None  # the same refusal


def test_without_a_set_rate_the_limit_lifts_once_recovered() -> None:
    cut = rate_after_pushback(None, None, observed=1000, now=0.0)
    assert cut is not None
    assert allowed_rate(None, cut, 0.0) == 500
    assert allowed_rate(None, cut, RECOVERY_SECONDS) is None


def test_the_connection_allowance_settles_at_the_ceiling_the_relay_showed() -> None:
    first = connections_after_refusal(None, None, holders=16, now=0.0)
    assert first == ConnectionBackoff(base=15, cut_at=0.0, ceiling=15, ceiling_at=0.0)
    # the other lanes refused at the same moment narrow the ceiling, not the allowance again
    narrower = connections_after_refusal(None, first, holders=7, now=0.5)
    assert narrower is not None and (narrower.base, narrower.ceiling) == (15, 6)
    assert allowed_connections(None, narrower, 0.5) == 6
    assert allowed_connections(None, narrower, 600.0) == 6  # climbs no higher while remembered
    assert allowed_connections(4, narrower, 10.0) == 4  # a set cap still holds


def test_what_counts_as_the_relay_pushing_back() -> None:
    assert pushback_of(RelayUnavailableError("421 4.7.0 Too many connections", code=421)) is (
        Pushback.CONNECTIONS
    )
    assert pushback_of(TransportError("454 Throttling failure", code=454)) is Pushback.RATE
    assert pushback_of(RelayUnavailableError("421 4.3.2 try later", code=421)) is Pushback.RATE
    assert pushback_of(TransportError("451 4.3.0 Try again later", code=451)) is None
    assert pushback_of(RelayUnavailableError("cannot connect: refused")) is None


# -- settings -------------------------------------------------------------------------------


def test_domain_limits_are_read_from_a_small_file(tmp_path: Path) -> None:
    path = tmp_path / "domains.toml"
    path.write_text('[domains]\n"Gmail.com" = 20\n"outlook.com" = 7.5\n', encoding="utf-8")
    assert read_domain_limits(path) == {"gmail.com": 20.0, "outlook.com": 7.5}


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ('[domains]\n"gmail.com" = 0\n', "above 0"),
        ('[domains]\n"gmail.com" = "fast"\n', "number of messages"),
        ('[domain]\n"gmail.com" = 20\n', "unknown table"),
        ('[domains]\n"me@gmail.com" = 20\n', "not a domain"),
        ("[domains\n", "not valid TOML"),
    ],
)
def test_a_wrong_domain_limits_file_is_refused_with_the_reason(
    tmp_path: Path, text: str, complaint: str
) -> None:
    path = tmp_path / "domains.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError, match=complaint):
        read_domain_limits(path)
    with pytest.raises(ValueError, match="DISTRIBUTOR_DOMAIN_LIMITS_PATH"):
        Settings(domain_limits_path=path)


def test_limits_without_a_store_to_share_them_are_refused() -> None:
    with pytest.raises(ValueError, match="DISTRIBUTOR_RATE_PER_SECOND"):
        Settings(rate_per_second=300, broker_url="amqp://guest:guest@127.0.0.1:5672//")
    with pytest.raises(ValueError, match="greater than 0"):
        Settings(rate_per_second=0)
    assert Settings(rate_per_second=300, max_connections=8, daily_quota=50_000).has_limits


# -- the sending lanes under the limits -----------------------------------------------------


def test_what_is_over_the_daily_quota_is_held_until_the_next_day_visibly(
    runtime: Runtime, tmp_path: Path
) -> None:
    send_id, _ = armed_send(runtime, 10)
    transport = InMemoryTransport()
    pacer = Pacer(Limits(daily_quota=4), LocalPacingStore(tmp_path / "pacing.sqlite3"))
    report = run_batch(
        runtime, batch_job(runtime, send_id), ManualClock(EMBARGO), transport, pacer=pacer
    )
    assert len(transport.sent) == report.sent == 4
    held = [d for d in deliveries_by_email(runtime, send_id).values() if d.state is not SENT]
    assert len(held) == 6
    tomorrow = next_day_starts(time.time())
    for delivery in held:
        assert delivery.state is DeliveryState.DEFERRED
        assert delivery.next_attempt_at == tomorrow.replace(tzinfo=delivery.next_attempt_at.tzinfo)
        assert delivery.attempts == 0  # held, not tried
        assert delivery.error == hold_reason(4, tomorrow)
    assert report.stopped_reason is not None and "daily quota" in report.stopped_reason
    with runtime.sessions() as session:
        (status,) = send_statuses(session, send_id)
    assert status.failures_by_reason == [(hold_reason(4, tomorrow), 6)]
    pacer.close()


def test_a_relay_pushing_back_fails_nobody_and_slows_everyone_down(
    runtime: Runtime, tmp_path: Path
) -> None:
    send_id, emails = armed_send(runtime, 6)
    refusals = iter(range(3))

    def throttle(envelope: Envelope) -> TransportError | None:
        if next(refusals, None) is None:
            return None
        return TransportError("454 4.7.0 Throttling failure: rate exceeded", code=454)

    transport = InMemoryTransport(refuse=throttle)
    store = LocalPacingStore(tmp_path / "pacing.sqlite3")
    pacer = Pacer(Limits(rate_per_second=100), store)
    report = run_batch(
        runtime, batch_job(runtime, send_id), ManualClock(EMBARGO), transport, pacer=pacer
    )
    assert report.sent == 6 and report.deferred == report.failed == 0
    assert sorted(e.recipient for e in transport.sent) == sorted(emails)
    assert {d.attempts for d in deliveries_by_email(runtime, send_id).values()} == {1}
    assert store.relay_rate(100) == pytest.approx(50, rel=0.05)  # halved for every worker
    pacer.close()


def test_with_nothing_sent_and_no_limit_set_a_refusal_sets_no_rate(store: PacingStore) -> None:
    # a relay refusing everything at the lift is an outage, not a rate to halve
    store.push_back_rate(configured=None, observed=0)
    assert store.relay_rate(None) is None


# -- the waits the limits cause, for /metrics ------------------------------------------------


def test_waits_add_up_in_the_store_whichever_process_records_them(store: PacingStore) -> None:
    assert store.read().waits == {}
    store.record_waits({WaitKind.RATE: LimiterWaits(3, 0.25)})
    store.record_waits(
        {WaitKind.RATE: LimiterWaits(2, 0.5), WaitKind.CONNECTIONS: LimiterWaits(1, 2.0)}
    )
    waits = store.read().waits
    assert waits[WaitKind.RATE].count == 5
    assert waits[WaitKind.RATE].seconds == pytest.approx(0.75)
    assert (waits[WaitKind.CONNECTIONS].count, waits[WaitKind.CONNECTIONS].seconds) == (1, 2.0)
    assert WaitKind.DOMAIN not in waits


def run_lanes(pacing: StorePacing, domains: list[str], messages: int) -> None:
    async def lane(domain: str) -> None:
        for _ in range(messages):
            assert await pacing.message(domain, lane=domain)

    async def scenario() -> None:
        await pacing.start()
        await asyncio.gather(*(lane(d) for d in domains))
        await pacing.close()

    asyncio.run(scenario())


def test_each_wait_for_a_rate_slot_is_recorded_with_its_length(store: PacingStore) -> None:
    # Four lanes, 20 messages at 50 a second: every message but the first waits its turn.
    pacing = StorePacing(
        Limits(rate_per_second=50), store, stopping=lambda: False, observed_rate=lambda: 0.0
    )
    started = time.monotonic()
    run_lanes(pacing, [f"d{i}.example" for i in range(4)], 5)
    elapsed = time.monotonic() - started
    waits = store.read().waits
    assert 15 <= waits[WaitKind.RATE].count <= 20
    # At every moment at least one lane waited, and never more than the four.
    span = 19 / (50 * PACE)
    assert 0.8 * span <= waits[WaitKind.RATE].seconds <= 4 * elapsed
    assert WaitKind.DOMAIN not in waits


def test_a_domains_waits_are_told_apart_from_the_rates(store: PacingStore) -> None:
    pacing = StorePacing(
        Limits(domains={"gmail.com": 20}), store, stopping=lambda: False, observed_rate=lambda: 0.0
    )
    run_lanes(pacing, ["gmail.com", "gmail.com", "example.org"], 5)
    waits = store.read().waits
    assert 7 <= waits[WaitKind.DOMAIN].count <= 10
    assert waits[WaitKind.DOMAIN].seconds >= 0.8 * 9 / (20 * PACE)
    assert WaitKind.RATE not in waits


def test_a_lane_waiting_for_a_connection_under_the_cap_is_recorded(store: PacingStore) -> None:
    pacing = StorePacing(
        Limits(max_connections=1), store, stopping=lambda: False, observed_rate=lambda: 0.0
    )

    async def scenario() -> None:
        await pacing.start()
        assert await pacing.connection("lane-a")
        assert not await pacing.connection("lane-b")
        await asyncio.sleep(0.2)
        await pacing.release("lane-a")
        assert await pacing.connection("lane-b")
        await pacing.close()

    asyncio.run(scenario())
    waits = store.read().waits
    assert waits[WaitKind.CONNECTIONS].count == 1
    assert 0.2 <= waits[WaitKind.CONNECTIONS].seconds < 1.0


def test_waits_reach_the_store_while_a_long_batch_runs(
    store: PacingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pacing_run, "WAITS_FLUSH_SECONDS", 0.05)
    pacing = StorePacing(
        Limits(rate_per_second=20), store, stopping=lambda: False, observed_rate=lambda: 0.0
    )

    async def scenario() -> int:
        await pacing.start()
        for _ in range(4):
            assert await pacing.message("a.example", lane="a")
        deadline = time.monotonic() + 5
        while not (recorded := (await asyncio.to_thread(store.read)).waits):
            assert time.monotonic() < deadline, "no wait reached the store before the end"
            await asyncio.sleep(0.02)
        await pacing.close()
        return recorded[WaitKind.RATE].count

    assert asyncio.run(scenario()) >= 1
