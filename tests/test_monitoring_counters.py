"""Counters /metrics reads from where every worker process leaves them: the relay's reply to
each attempt (from the deliveries' history) and the waits the rate limits caused (from the
pacing store)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from distributor.clock import ManualClock
from distributor.engine.pacing import LimiterWaits, WaitKind
from distributor.engine.pacing_local import LocalPacingStore
from distributor.errors import TransportError
from distributor.monitoring.send_counts import replies_since
from distributor.runtime import Runtime
from distributor.transport import Envelope, InMemoryTransport
from distributor.web.app import create_app
from tests.support.engine import EMBARGO, armed_send, batch_job, run_batch, run_tick

GREYLISTED = TransportError("451 4.7.1 greylisted, try again later", code=451, temporary=True)
NO_MAILBOX = TransportError("550 5.1.1 no such mailbox here", code=550, temporary=False)
DROPPED = TransportError("connection lost during the transaction", temporary=True)


def scraped(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime)) as test_client:
        yield test_client


def test_every_reply_is_counted_by_class_deferrals_that_later_succeed_included(
    runtime: Runtime, client: TestClient
) -> None:
    # Given five journalists: one greylisted twice, one whose mailbox is gone, and one whose
    # connection drops once (no reply at all)
    send_id, emails = armed_send(runtime, 5)
    greylisted, gone, dropped = emails[0], emails[1], emails[2]
    tries = {greylisted: 0, dropped: 0}

    def refuse(envelope: Envelope) -> TransportError | None:
        if envelope.recipient == gone:
            return NO_MAILBOX
        if envelope.recipient in tries:
            tries[envelope.recipient] += 1
            if envelope.recipient == greylisted and tries[greylisted] <= 2:
                return GREYLISTED
            if envelope.recipient == dropped and tries[dropped] == 1:
                return DROPPED
        return None

    transport = InMemoryTransport(refuse=refuse)

    # When the batch goes, and goes again each time a retry is due
    at = EMBARGO
    for _ in range(3):
        run_batch(runtime, batch_job(runtime, send_id), ManualClock(at), transport)
        at += timedelta(hours=1)
        run_tick(runtime, at)
    samples = scraped(client)

    # Then each attempt's reply is counted once: 4 accepted at last, the two greylistings
    # although that delivery was sent in the end, the refusal; the dropped connection had no
    # reply to count
    assert value(samples, "distributor_smtp_replies_total", **{"class": "2xx"}) == 4
    assert value(samples, "distributor_smtp_replies_total", **{"class": "4xx"}) == 2
    assert value(samples, "distributor_smtp_replies_total", **{"class": "5xx"}) == 1
    assert value(samples, "distributor_messages_deferred_total") == 3
    # while each delivery keeps its last reply only
    assert value(samples, "distributor_smtp_last_replies", **{"class": "4xx"}) == 0
    assert value(samples, "distributor_smtp_last_replies", **{"class": "2xx"}) == 4
    assert not [labels for (_, labels) in samples if any("@" in v for _, v in labels)]

    # And the admin page's count of the last quarter of an hour reads the same history
    with runtime.sessions() as session:
        assert replies_since(session, [send_id], since=EMBARGO) == {
            "2xx": 4,
            "4xx": 2,
            "5xx": 1,
        }
        assert replies_since(session, [send_id], since=at) == {"2xx": 0, "4xx": 0, "5xx": 0}


def test_the_rate_limiters_waits_are_read_from_the_pacing_store(
    runtime: Runtime, client: TestClient
) -> None:
    # The embedded mode keeps its limits, and their waits, in a file every worker shares.
    samples = scraped(client)
    for kind in WaitKind:
        assert value(samples, "distributor_rate_limiter_waits_total", limit=kind.value) == 0
        assert value(samples, "distributor_rate_limiter_wait_seconds_total", limit=kind.value) == 0

    store = LocalPacingStore(runtime.settings.pacing_store_path)
    try:
        store.record_waits({WaitKind.RATE: LimiterWaits(12, 1.5)})
        store.record_waits(
            {WaitKind.RATE: LimiterWaits(3, 0.5), WaitKind.DOMAIN: LimiterWaits(1, 0.25)}
        )
    finally:
        store.close()

    samples = scraped(client)
    assert value(samples, "distributor_rate_limiter_waits_total", limit="rate") == 15
    assert value(samples, "distributor_rate_limiter_wait_seconds_total", limit="rate") == 2.0
    assert value(samples, "distributor_rate_limiter_waits_total", limit="domain") == 1
    assert value(samples, "distributor_rate_limiter_waits_total", limit="connections") == 0
