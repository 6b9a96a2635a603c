"""The whole flow on PostgreSQL and RabbitMQ, with real processes and a real SMTP server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from distributor.migrate import upgrade
from distributor.processes import ManagedProcess
from distributor.runtime import Runtime
from distributor.settings import Settings
from distributor.states import DeliveryState, SendState
from tests.support.services import (
    delete_rabbitmq_queue,
    fresh_postgres_database,
    fresh_rabbitmq_queue,
    purge_rabbitmq_queue,
)
from tests.support.smtp import RecordingSMTPServer
from tests.test_end_to_end import (
    assert_each_got_one_after,
    audience,
    delivery_counts,
    schedule,
    wait_for_send_state,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.rabbitmq]

Start = Callable[..., ManagedProcess]


@pytest.fixture
def stack(tmp_path: Path, smtp_server: RecordingSMTPServer) -> Iterator[Settings]:
    """PostgreSQL and a RabbitMQ queue of this test's own, both removed afterwards."""
    broker_url, queue = fresh_rabbitmq_queue()
    try:
        with fresh_postgres_database() as url:
            upgrade(url)
            yield Settings(
                database_url=url,
                broker_url=broker_url,
                queue_name=queue,
                data_dir=tmp_path / "var",
                smtp_url=smtp_server.url,
                batch_size=25,
                claim_chunk=10,
                scheduler_interval_seconds=0.2,
            )
    finally:
        delete_rabbitmq_queue(broker_url, queue)


def test_release_is_delivered_once_to_everyone_at_the_embargo(
    stack: Settings, smtp_server: RecordingSMTPServer, processes: Start
) -> None:
    # Given 90 journalists on two overlapping lists, two worker processes on RabbitMQ
    rt = Runtime(stack)
    try:
        release_id, emails = audience(rt, 90)
        processes("worker", stack, concurrency=2)
        processes("scheduler", stack)
        # When the release is scheduled a few seconds ahead
        send_id, embargo_ts = schedule(rt, release_id, 3)
        # Then every journalist gets exactly one message, none before the embargo
        wait_for_send_state(rt, send_id, SendState.COMPLETED, timeout=60)
        assert_each_got_one_after(smtp_server, emails, embargo_ts)
        assert delivery_counts(rt, send_id) == {DeliveryState.SENT: 90}
    finally:
        rt.close()


def test_purged_queue_is_dispatched_again_from_the_database(
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
        # When RabbitMQ loses every message it held
        assert purge_rabbitmq_queue(settings.broker_url, settings.queue_name) > 0
        processes("worker", settings, concurrency=1)
        # Then the database still knows the work, and it is all sent exactly once
        wait_for_send_state(rt, send_id, SendState.COMPLETED, timeout=60)
        assert_each_got_one_after(smtp_server, emails, embargo_ts)
        assert delivery_counts(rt, send_id) == {DeliveryState.SENT: 40}
    finally:
        rt.close()
