"""The whole flow with real worker and scheduler processes, a real broker and a real SMTP server."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select

from distributor.contacts_import import ContactRow, ParsedContacts, import_contacts
from distributor.lists import add_to_list, create_list, remove_from_list
from distributor.migrate import upgrade
from distributor.models import SendBatch
from distributor.processes import ManagedProcess
from distributor.releases import create_release
from distributor.runtime import Runtime
from distributor.scheduling import cancel_send, schedule_send
from distributor.settings import Settings
from distributor.states import DeliveryState, SendState
from distributor.status import send_statuses
from distributor.suppression import SuppressionReason, suppress
from tests.conftest import SAMPLE_DRAFT, now, seconds_from_now
from tests.support.services import fresh_postgres_database, fresh_redis_queue
from tests.support.smtp import RecordingSMTPServer

pytestmark = pytest.mark.slow

Start = Callable[..., ManagedProcess]


@pytest.fixture(
    params=[
        "sqlite+filesystem",
        pytest.param("postgres+redis", marks=[pytest.mark.postgres, pytest.mark.redis]),
    ]
)
def stack(
    request: pytest.FixtureRequest, tmp_path: Path, smtp_server: RecordingSMTPServer
) -> Iterator[Settings]:
    common = {
        "data_dir": tmp_path / "var",
        "smtp_url": smtp_server.url,
        "batch_size": 25,
        "claim_chunk": 10,
        "scheduler_interval_seconds": 0.2,
    }
    if request.param == "sqlite+filesystem":
        settings = Settings(database_url=f"sqlite:///{tmp_path / 'e2e.sqlite3'}", **common)
        upgrade(settings.effective_database_url)
        yield settings
        return
    broker_url, queue = fresh_redis_queue()
    with fresh_postgres_database() as url:
        upgrade(url)
        yield Settings(database_url=url, broker_url=broker_url, queue_name=queue, **common)
    redis.Redis.from_url(broker_url).delete(queue)


@pytest.fixture
def stack_runtime(stack: Settings) -> Iterator[Runtime]:
    rt = Runtime(stack)
    yield rt
    rt.close()


def audience(rt: Runtime, count: int) -> tuple[int, list[str]]:
    """`count` contacts over two overlapping lists, and a release."""
    rows = [
        ContactRow(
            line=i + 2,
            email=f"reporter{i}@desk{i % 4}.example.org",
            name=f"Reporter {i}",
            outlet="Example News",
        )
        for i in range(count)
    ]
    emails = [r.email for r in rows]
    with rt.sessions.begin() as session:
        import_contacts(session, ParsedContacts(rows=rows), now=now())
        create_list(session, "Home affairs", now=now())
        create_list(session, "Crime", now=now())
        add_to_list(session, "Home affairs", emails[: count * 2 // 3])
        add_to_list(session, "Crime", emails[count // 3 :])
        release_id = create_release(session, SAMPLE_DRAFT, now=now()).id
    return release_id, emails


def schedule(rt: Runtime, release_id: int, seconds_ahead: float) -> tuple[int, float]:
    embargo_at = seconds_from_now(seconds_ahead)
    with rt.sessions.begin() as session:
        scheduled = schedule_send(
            session,
            release_id=release_id,
            list_names=["Home affairs", "Crime"],
            embargo_at=embargo_at,
            embargo_zone="Europe/London",
            now=now(),
            batch_size=rt.settings.batch_size,
        )
    return scheduled.send_id, embargo_at.timestamp()


def wait_for_send_state(rt: Runtime, send_id: int, state: SendState, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with rt.sessions() as session:
            (status,) = send_statuses(session, send_id)
        if status.state is state:
            return
        time.sleep(0.1)
    raise AssertionError(f"send {send_id} is {status.state} after {timeout} s, not {state}")


def wait_until_queued(rt: Runtime, send_id: int, *, timeout: float) -> None:
    """Until the scheduler has handed every batch of the send to the broker (it arms a send
    in one transaction and queues its batches in a later one)."""
    unqueued = select(func.count()).where(
        SendBatch.send_id == send_id, SendBatch.queued_at.is_(None)
    )
    deadline = time.monotonic() + timeout
    while True:
        with rt.sessions() as session:
            if session.scalar(unqueued) == 0:
                return
        assert time.monotonic() < deadline, f"send {send_id}'s batches not queued in {timeout} s"
        time.sleep(0.1)


def delivery_counts(rt: Runtime, send_id: int) -> dict[DeliveryState, int]:
    with rt.sessions() as session:
        (status,) = send_statuses(session, send_id)
    return status.counts


def assert_each_got_one_after(
    smtp_server: RecordingSMTPServer, emails: list[str], embargo_ts: float
) -> None:
    received = smtp_server.received
    early = [r for r in received if r.arrived < embargo_ts]
    assert early == [], f"{len(early)} message(s) reached the server before the embargo"
    per_recipient = Counter(r.recipient for r in received)
    assert set(per_recipient) == set(emails)
    assert max(per_recipient.values()) == 1, "someone received a second copy"


def test_release_is_delivered_once_to_everyone_at_the_embargo(
    stack_runtime: Runtime, smtp_server: RecordingSMTPServer, processes: Start
) -> None:
    # Given 90 journalists on two overlapping lists and two worker processes
    rt = stack_runtime
    release_id, emails = audience(rt, 90)
    processes("worker", rt.settings, concurrency=2)
    processes("scheduler", rt.settings)
    # When the release is scheduled a few seconds ahead
    send_id, embargo_ts = schedule(rt, release_id, 3)
    # Then every journalist gets exactly one message, none before the embargo
    wait_for_send_state(rt, send_id, SendState.COMPLETED, timeout=60)
    assert_each_got_one_after(smtp_server, emails, embargo_ts)
    assert delivery_counts(rt, send_id) == {DeliveryState.SENT: 90}
    message = smtp_server.received[0].parsed()
    assert message.get_content_type() == "multipart/alternative"
    assert message["Subject"] == SAMPLE_DRAFT.headline


def test_cancelled_send_sends_nothing(
    stack_runtime: Runtime, smtp_server: RecordingSMTPServer, processes: Start
) -> None:
    # Given a send that is armed: its batches already sit with the workers
    rt = stack_runtime
    release_id, _emails = audience(rt, 30)
    worker = processes("worker", rt.settings, concurrency=1)
    processes("scheduler", rt.settings)
    send_id, _ = schedule(rt, release_id, 2.5)
    wait_for_send_state(rt, send_id, SendState.ARMED, timeout=10)
    wait_until_queued(rt, send_id, timeout=10)
    # When it is cancelled before the embargo
    with rt.sessions.begin() as session:
        cancel_send(session, send_id=send_id, now=now())
    # Then the workers wake at the embargo, find it cancelled, and send nothing
    worker.wait_for_log("not armed", timeout=20)
    assert smtp_server.received == []
    assert delivery_counts(rt, send_id) == {DeliveryState.CANCELLED: 30}


def test_two_schedulers_still_send_one_message_each(
    stack_runtime: Runtime, smtp_server: RecordingSMTPServer, processes: Start
) -> None:
    rt = stack_runtime
    release_id, emails = audience(rt, 60)
    processes("worker", rt.settings, concurrency=2)
    processes("scheduler", rt.settings, interval=0.05)
    processes("scheduler", rt.settings, interval=0.05)
    send_id, embargo_ts = schedule(rt, release_id, 2)
    wait_for_send_state(rt, send_id, SendState.COMPLETED, timeout=60)
    assert_each_got_one_after(smtp_server, emails, embargo_ts)
    assert delivery_counts(rt, send_id) == {DeliveryState.SENT: 60}


def test_the_release_goes_to_the_lists_as_they_stand_at_the_lift(
    stack_runtime: Runtime, smtp_server: RecordingSMTPServer, processes: Start
) -> None:
    # Given a send scheduled while nothing runs
    rt = stack_runtime
    release_id, emails = audience(rt, 30)
    send_id, embargo_ts = schedule(rt, release_id, 4)
    # When, before the lift, a journalist joins a list, one is taken off both lists and one
    # unsubscribes
    joiner = "newcomer@desk9.example.org"
    leaver, unsubscriber = emails[0], emails[-1]
    with rt.sessions.begin() as session:
        import_contacts(
            session,
            ParsedContacts(rows=[ContactRow(line=2, email=joiner, name="New Comer")]),
            now=now(),
        )
        add_to_list(session, "Crime", [joiner])
        remove_from_list(session, "Home affairs", [leaver])
        remove_from_list(session, "Crime", [leaver])
        suppress(
            session,
            email=unsubscriber,
            reason=SuppressionReason.UNSUBSCRIBED,
            source="test",
            now=now(),
        )
    processes("worker", rt.settings, concurrency=2)
    processes("scheduler", rt.settings)
    wait_for_send_state(rt, send_id, SendState.COMPLETED, timeout=60)
    # Then the newcomer gets it, the leaver and the unsubscriber do not, and each says why
    expected = [e for e in emails if e not in (leaver, unsubscriber)] + [joiner]
    assert_each_got_one_after(smtp_server, expected, embargo_ts)
    assert delivery_counts(rt, send_id) == {
        DeliveryState.SENT: 29,
        DeliveryState.CANCELLED: 1,
        DeliveryState.SUPPRESSED: 1,
    }


def purge_queue(settings: Settings) -> int:
    """Lose every message the broker holds, as a broker crash without persistence would."""
    if settings.broker_url.startswith("redis"):
        client = redis.Redis.from_url(settings.broker_url)
        lost = int(client.llen(settings.queue_name))
        client.delete(settings.queue_name)
        return lost
    queue_dir = settings.broker_dir / "queue"
    lost = len(list(queue_dir.iterdir()))
    shutil.rmtree(queue_dir)
    queue_dir.mkdir()
    return lost


def test_lost_broker_messages_are_dispatched_again(
    stack: Settings, smtp_server: RecordingSMTPServer, processes: Start
) -> None:
    # Given a scheduler that re-dispatches idle work after a few seconds, and no worker yet
    settings = stack.model_copy(update={"arm_lead_seconds": 1.0, "redispatch_after_seconds": 3.5})
    rt = Runtime(settings)
    try:
        release_id, emails = audience(rt, 40)
        send_id, embargo_ts = schedule(rt, release_id, 1.5)
        scheduler = processes("scheduler", settings)
        scheduler.wait_for_log("dispatched", timeout=10)
        # When the broker loses every message it carried
        assert purge_queue(settings) > 0
        processes("worker", settings, concurrency=1)
        # Then the database still knows the work, and it is all sent exactly once
        wait_for_send_state(rt, send_id, SendState.COMPLETED, timeout=60)
        assert_each_got_one_after(smtp_server, emails, embargo_ts)
    finally:
        rt.close()
