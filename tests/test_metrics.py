"""/metrics: the installation's figures, read from the database and the broker by the web app.

A real send goes through the engine to a loopback SMTP server; the web app is then scraped
as Prometheus would, and what it says is compared with the deliveries table.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import kombu.connection
import pytest
import redis
from fastapi.testclient import TestClient
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy import func, select

from distributor.cli.context import load_settings
from distributor.clock import ManualClock
from distributor.contacts_import import ContactRow, ParsedContacts, import_contacts
from distributor.engine.dispatch import RecordingDispatcher, notice_queue_name
from distributor.errors import ConfigurationError
from distributor.lists import add_to_list
from distributor.migrate import upgrade
from distributor.models import Delivery, Send
from distributor.runtime import Runtime
from distributor.settings import Settings
from distributor.states import DeliveryState
from distributor.web.app import create_app
from tests.support.engine import (
    EMBARGO,
    LIST_NAME,
    NOW,
    add_audience,
    batch_job,
    claim_for_test,
    run_batch,
    run_tick,
    schedule,
)
from tests.support.services import (
    delete_rabbitmq_queue,
    fresh_rabbitmq_queue,
    fresh_redis_queue,
    rabbitmq_queue,
)
from tests.support.smtp import RecordingSMTPServer

TOKEN = "a-long-random-token-for-the-scraper"
# RecordingSMTPServer refuses these at RCPT with 550 5.1.1: a hard bounce.
DEAD_MAILBOXES = ["refuse-a@gone.example.net", "refuse-b@gone.example.net"]


@dataclass
class Scrape:
    text: str
    content_type: str
    samples: list[Sample] = field(default_factory=list)
    family_names: set[str] = field(default_factory=set)

    def value(self, name: str, **labels: str) -> float:
        found = [
            s.value
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]
        assert len(found) == 1, f"{name}{labels}: {len(found)} sample(s) in\n{self.text}"
        return found[0]

    def values(self, name: str) -> list[Sample]:
        return [s for s in self.samples if s.name == name]


def scrape(client: TestClient, **headers: str) -> Scrape:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    result = Scrape(response.text, response.headers["content-type"])
    for family in text_string_to_metric_families(response.text):
        result.family_names.add(family.name)
        result.samples.extend(family.samples)
    return result


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime)) as test_client:
        yield test_client


@pytest.fixture
def sqlite_client(tmp_path: Path) -> Iterator[TestClient]:
    """For what does not depend on the kind of database."""
    database = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    upgrade(database)
    rt = Runtime(Settings(database_url=database, data_dir=tmp_path / "var"))
    with TestClient(create_app(rt)) as test_client:
        yield test_client
    rt.close()


def table_counts(rt: Runtime, send_id: int) -> Counter[DeliveryState]:
    with rt.sessions() as session:
        rows = session.execute(
            select(Delivery.state, func.count())
            .where(Delivery.send_id == send_id)
            .group_by(Delivery.state)
        ).all()
    return Counter({state: n for state, n in rows})


def sent_times(rt: Runtime, send_id: int) -> list[float]:
    with rt.sessions() as session:
        send = session.get_one(Send, send_id)
        finished = session.scalars(
            select(Delivery.finished_at).where(
                Delivery.send_id == send_id, Delivery.state == DeliveryState.SENT
            )
        ).all()
        return sorted((f - send.embargo_at).total_seconds() for f in finished if f is not None)


def test_after_a_real_send_the_counters_match_the_deliveries_table(
    runtime: Runtime, smtp_server: RecordingSMTPServer, client: TestClient
) -> None:
    # Given a send to eight journalists and two dead mailboxes, armed by the scheduler
    rt = runtime
    release_id, emails = add_audience(rt, 8)
    with rt.sessions.begin() as session:
        rows = [ContactRow(line=i + 2, email=e) for i, e in enumerate(DEAD_MAILBOXES)]
        import_contacts(session, ParsedContacts(rows=rows), now=NOW)
        add_to_list(session, LIST_NAME, DEAD_MAILBOXES)
    send_id = schedule(rt, release_id, batch_size=4)
    assert run_tick(rt, EMBARGO - timedelta(seconds=10)).armed == [send_id]
    before = scrape(client)
    assert before.value("distributor_sends", state="armed") == 1
    assert before.value("distributor_send_deliveries", send_id=str(send_id), state="pending") == 10

    # When a worker sends every batch to the loopback relay, and the scheduler closes the send
    transport = rt.open_transport()
    try:
        run_batch(
            rt, batch_job(rt, send_id), ManualClock(EMBARGO + timedelta(seconds=1)), transport
        )
    finally:
        transport.close()
    smtp_server.wait_for(8, timeout=10)
    run_tick(rt, EMBARGO + timedelta(seconds=5))
    after = scrape(client)

    # Then the counters and the per-send figures are the deliveries table's
    counts = table_counts(rt, send_id)
    assert counts == {DeliveryState.SENT: 8, DeliveryState.BOUNCED: 2}
    assert after.value("distributor_messages_sent_total") == counts[DeliveryState.SENT]
    assert after.value("distributor_messages_bounced_total") == counts[DeliveryState.BOUNCED]
    assert after.value("distributor_messages_failed_total") == 0
    assert after.value("distributor_messages_deferred_total") == 0
    for state in DeliveryState:
        shown = after.value("distributor_send_deliveries", send_id=str(send_id), state=state.value)
        assert shown == counts[state], state
    assert after.value("distributor_sends", state="completed") == 1
    assert after.value("distributor_send_delivered_messages", send_id=str(send_id)) == 10
    assert after.value("distributor_send_bounce_ratio", send_id=str(send_id)) == pytest.approx(0.2)
    assert after.value("distributor_send_lag_seconds", send_id=str(send_id)) == 0
    times = sent_times(rt, send_id)
    first = after.value("distributor_send_embargo_to_first_delivery_seconds", send_id=str(send_id))
    last = after.value("distributor_send_embargo_to_last_delivery_seconds", send_id=str(send_id))
    assert (first, last) == pytest.approx((times[0], times[-1]))
    assert 0 <= first <= last
    assert after.value("distributor_smtp_last_replies", **{"class": "2xx"}) == 8
    assert after.value("distributor_smtp_last_replies", **{"class": "5xx"}) == 2
    assert after.value("distributor_database_up") == 1
    assert after.value("distributor_broker_up") == 1

    # And no address, nor any part of one, is in what Prometheus stores
    for address in [*emails, *DEAD_MAILBOXES]:
        assert address not in after.text
        assert address.split("@")[1] not in after.text
    assert not [s for s in after.samples if any("@" in v for v in s.labels.values())]


def test_the_exposition_parses_in_both_formats_and_every_name_is_distributors(
    sqlite_client: TestClient,
) -> None:
    client = sqlite_client
    classic = scrape(client)
    assert classic.content_type.startswith("text/plain; version=0.0.4")
    own = {n for n in classic.family_names if not n.startswith(("process_", "python_"))}
    assert own and all(n.startswith("distributor_") for n in own), own
    counters = {s.name for s in classic.samples if s.name.startswith("distributor_messages_")}
    assert counters == {
        "distributor_messages_sent_total",
        "distributor_messages_deferred_total",
        "distributor_messages_failed_total",
        "distributor_messages_bounced_total",
    }
    response = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    parsed = openmetrics_families(response.text)  # type: ignore[no-untyped-call]
    families = {f.name: f for f in parsed}
    assert families["distributor_messages_sent"].type == "counter"
    assert families["distributor_sends"].type == "gauge"


def test_a_dead_workers_deliveries_taken_over_are_counted(
    runtime: Runtime, client: TestClient
) -> None:
    # Given a worker that claimed three deliveries and then stopped renewing its lease
    rt = runtime
    release_id, _ = add_audience(rt, 5)
    send_id = schedule(rt, release_id)
    run_tick(rt, EMBARGO - timedelta(seconds=10))
    claimed_at = EMBARGO + timedelta(seconds=1)
    with rt.sessions.begin() as session:
        assert len(claim_for_test(session, send_id, 0, claimed_at, 3)) == 3

    # When the scheduler ticks after the lease expired
    report = run_tick(rt, claimed_at + timedelta(seconds=30))
    assert [t.deliveries for t in report.takeovers] == [3]

    # Then the takeover is counted, as deliveries deferred
    scraped = scrape(client)
    assert scraped.value("distributor_lease_takeover_deliveries_total") == 3
    assert scraped.value("distributor_messages_deferred_total") == 3


def test_batches_waiting_for_a_worker_are_counted_on_their_queue(
    runtime: Runtime, client: TestClient
) -> None:
    rt = runtime
    release_id, _ = add_audience(rt, 30)
    send_id = schedule(rt, release_id, batch_size=10)
    dispatcher = RecordingDispatcher()
    run_tick(rt, EMBARGO - timedelta(seconds=10), dispatcher)
    assert len(dispatcher.dispatched) == 3
    scraped = scrape(client)
    queue = rt.settings.queue_name
    assert scraped.value("distributor_queue_batches_waiting", queue=queue) == 3
    assert scraped.value("distributor_queue_batches_waiting", queue=notice_queue_name(queue)) == 0
    # Due only two seconds before the embargo, years from now: it has not waited yet.
    assert scraped.value("distributor_queue_oldest_batch_age_seconds", queue=queue) == 0
    assert scraped.value("distributor_send_lag_seconds", send_id=str(send_id)) == 0


def test_an_unreachable_database_is_reported_not_an_error(tmp_path: Path) -> None:
    settings = Settings(
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/none", data_dir=tmp_path / "var"
    )
    rt = Runtime(settings)
    try:
        with TestClient(create_app(rt)) as client:
            scraped = scrape(client)
    finally:
        rt.close()
    assert scraped.value("distributor_database_up") == 0
    assert scraped.value("distributor_broker_up") == 1
    assert "distributor_messages_sent_total" not in {s.name for s in scraped.samples}


@pytest.mark.parametrize("broker", ["redis", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
def test_queue_depth_is_what_the_broker_holds(broker: str, tmp_path: Path) -> None:
    # Given three messages waiting on the installation's queue of a real broker
    url, queue = fresh_redis_queue() if broker == "redis" else fresh_rabbitmq_queue()
    database = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    upgrade(database)
    rt = Runtime(Settings(database_url=database, broker_url=url, queue_name=queue))
    try:
        connection_class: Any = kombu.connection.Connection
        with connection_class(url) as connection:
            producer = connection.Producer()
            # Declared as Celery declares its queues, on either broker.
            declared = rabbitmq_queue(queue)
            for n in range(3):
                producer.publish(
                    {"n": n}, exchange=declared.exchange, routing_key=queue, declare=[declared]
                )
        with TestClient(create_app(rt)) as client:
            # Then /metrics reports them (RabbitMQ counts a publish a moment later)
            deadline = time.monotonic() + 10
            while (depth := scrape(client).value("distributor_queue_messages", queue=queue)) < 3:
                assert time.monotonic() < deadline, f"the broker shows {depth} of 3"
                time.sleep(0.05)
            assert depth == 3
            notices = notice_queue_name(queue)
            assert scrape(client).value("distributor_queue_messages", queue=notices) == 0
    finally:
        rt.close()
        if broker == "redis":
            redis.Redis.from_url(url).delete(queue)
        else:
            delete_rabbitmq_queue(url, queue)


def test_with_a_token_set_only_a_scraper_that_sends_it_reads_the_metrics(
    tmp_path: Path,
) -> None:
    database = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    upgrade(database)
    rt = Runtime(Settings(database_url=database, data_dir=tmp_path / "var", metrics_token=TOKEN))
    try:
        with TestClient(create_app(rt)) as client:
            refused = client.get("/metrics")
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"].startswith("Bearer")
            wrong = client.get("/metrics", headers={"Authorization": "Bearer wrong"})
            assert wrong.status_code == 401
            scraped = scrape(client, Authorization=f"Bearer {TOKEN}")
            assert scraped.value("distributor_database_up") == 1
    finally:
        rt.close()


def test_a_short_token_stops_the_settings_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTRIBUTOR_METRICS_TOKEN", "short")
    with pytest.raises(ConfigurationError, match="DISTRIBUTOR_METRICS_TOKEN is 5 characters long"):
        load_settings()
