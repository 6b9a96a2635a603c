"""The figures read from the database and the broker, as Prometheus metric families.

Names follow Prometheus' conventions: `distributor_` first, counters end in `_total`, times
in seconds, rates as ratios. Labels are states, kinds, queue names and send ids: never an
address, a name or a headline, and nothing per recipient.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from distributor.engine.pacing import LimiterWaits, WaitKind
from distributor.monitoring.metrics_reading import DatabaseFigures
from distributor.monitoring.metrics_sends import SendFigures
from distributor.monitoring.queue_depths import QueueDepth
from distributor.settings import Settings
from distributor.states import DeliveryState

# Counters of history rows: messages the relay accepted, deferred, failed and bounced.
MESSAGE_COUNTERS = {
    DeliveryState.SENT: "Messages the relay accepted (a delivery moved to sent).",
    DeliveryState.DEFERRED: "Temporary failures: a delivery deferred to a later attempt.",
    DeliveryState.FAILED: "Deliveries that failed for good.",
    DeliveryState.BOUNCED: "Deliveries that bounced, at the relay or back to the return path.",
}
SEND_LABELS = ["send_id", "kind"]


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def database_families(figures: DatabaseFigures, settings: Settings) -> Iterator[Metric]:
    yield from _message_counters(figures)
    yield from _send_families(figures)
    yield from _reputation_limits(settings)
    yield from _process_families(figures)
    yield from _relay_families(figures)
    yield from _queue_families(figures)


def _message_counters(figures: DatabaseFigures) -> Iterator[Metric]:
    transitions = figures.totals.transitions
    for state, documentation in MESSAGE_COUNTERS.items():
        yield CounterMetricFamily(
            f"distributor_messages_{state.value}",
            documentation,
            value=transitions.get(state, 0),
        )
    replies = CounterMetricFamily(
        "distributor_smtp_replies",
        "The relay's replies to every attempt by class: 2xx accepted, 4xx try again later "
        "(each deferral counted, also when a later attempt succeeds), 5xx refused.",
        labels=["class"],
    )
    for reply_class, n in figures.totals.replies.items():
        replies.add_metric([reply_class], n)
    yield replies
    yield CounterMetricFamily(
        "distributor_lease_takeover_deliveries",
        "Deliveries put back in line because the worker holding their batch stopped renewing "
        "its lease (it died or stalled); each may have reached the relay twice.",
        value=figures.totals.taken_over,
    )


def _send_families(figures: DatabaseFigures) -> Iterator[Metric]:
    sends = GaugeMetricFamily("distributor_sends", "Sends by state.", labels=["state"])
    for state, n in figures.sends_by_state.items():
        sends.add_metric([state.value], n)
    yield sends
    deliveries = GaugeMetricFamily(
        "distributor_send_deliveries",
        "Deliveries of each watched send (active, or due or finished within a day) by state.",
        labels=[*SEND_LABELS, "state"],
    )
    delivered = GaugeMetricFamily(
        "distributor_send_delivered_messages",
        "Messages of the send the relay accepted (sent, or bounced later).",
        labels=SEND_LABELS,
    )
    first = GaugeMetricFamily(
        "distributor_send_embargo_to_first_delivery_seconds",
        "From the send's embargo to the first message the relay accepted.",
        labels=SEND_LABELS,
    )
    last = GaugeMetricFamily(
        "distributor_send_embargo_to_last_delivery_seconds",
        "From the send's embargo to the last message the relay accepted so far.",
        labels=SEND_LABELS,
    )
    lag = GaugeMetricFamily(
        "distributor_send_lag_seconds",
        "Seconds since the embargo of an armed or held send while some of its deliveries "
        "have not been tried yet; 0 otherwise.",
        labels=SEND_LABELS,
    )
    bounce = GaugeMetricFamily(
        "distributor_send_bounce_ratio",
        "Hard bounces of the send, as a fraction of its delivered messages.",
        labels=SEND_LABELS,
    )
    complaint = GaugeMetricFamily(
        "distributor_send_complaint_ratio",
        "Spam complaints about the send, as a fraction of its delivered messages.",
        labels=SEND_LABELS,
    )
    for send in figures.sends:
        labels = _send_labels(send)
        for delivery_state in DeliveryState:
            deliveries.add_metric(
                [*labels, delivery_state.value], send.deliveries.get(delivery_state, 0)
            )
        delivered.add_metric(labels, send.reputation.delivered)
        if send.first_delivery_seconds is not None:
            first.add_metric(labels, send.first_delivery_seconds)
        if send.last_delivery_seconds is not None:
            last.add_metric(labels, send.last_delivery_seconds)
        lag.add_metric(labels, send.lag_seconds(figures.now))
        bounce.add_metric(labels, send.reputation.bounce_rate)
        complaint.add_metric(labels, send.reputation.complaint_rate)
    yield from (deliveries, delivered, first, last, lag, bounce, complaint)
    replies = GaugeMetricFamily(
        "distributor_smtp_last_replies",
        "Deliveries of the watched sends by the class of the relay's last reply to them.",
        labels=["class"],
    )
    for reply_class, n in figures.replies.items():
        replies.add_metric([reply_class], n)
    yield replies


def _send_labels(send: SendFigures) -> list[str]:
    return [str(send.send_id), send.kind.value]


def _reputation_limits(settings: Settings) -> Iterator[Metric]:
    yield _gauge(
        "distributor_bounce_ratio_limit",
        "The hard-bounce rate past which a send pauses itself (DISTRIBUTOR_BOUNCE_RATE_LIMIT).",
        settings.bounce_rate_limit,
    )
    yield _gauge(
        "distributor_complaint_ratio_limit",
        "The complaint rate past which a send pauses itself (DISTRIBUTOR_COMPLAINT_RATE_LIMIT).",
        settings.complaint_rate_limit,
    )
    yield _gauge(
        "distributor_reputation_minimum_delivered_messages",
        "Delivered messages a send needs before its rates are judged "
        "(DISTRIBUTOR_REPUTATION_MINIMUM_DELIVERED).",
        settings.reputation_minimum_delivered,
    )


def _process_families(figures: DatabaseFigures) -> Iterator[Metric]:
    workers, schedulers = figures.workers, figures.schedulers
    yield _gauge(
        "distributor_workers_alive",
        "Worker processes with a heartbeat within two leases: each worker's main process, "
        "which beats idle or not, and each of its pool's processes that is sending.",
        len(workers.alive),
    )
    yield _gauge(
        "distributor_worker_heartbeat_age_seconds",
        "Age of the youngest worker heartbeat, by the database's clock (+Inf: none in an hour).",
        workers.age_seconds,
    )
    yield _gauge(
        "distributor_schedulers_alive",
        "Scheduler processes with a heartbeat within 10 s (or three ticks).",
        len(schedulers.alive),
    )
    yield _gauge(
        "distributor_scheduler_heartbeat_age_seconds",
        "Age of the scheduler's last tick, by the database's clock (+Inf: none in an hour).",
        schedulers.age_seconds,
    )
    latest = schedulers.latest
    if latest is not None:
        yield _gauge(
            "distributor_scheduler_last_tick_timestamp_seconds",
            "When the scheduler last ticked (Unix time, by the database's clock).",
            latest.seen_at.timestamp(),
        )
    offsets = GaugeMetricFamily(
        "distributor_clock_offset_seconds",
        "The largest clock offset from the database's among the live processes of a kind.",
        labels=["kind"],
    )
    for liveness in (workers, schedulers):
        largest = liveness.largest_offset_seconds()
        if largest is not None:
            offsets.add_metric([liveness.kind], largest)
    yield offsets


def _relay_families(figures: DatabaseFigures) -> Iterator[Metric]:
    relay, pacing = figures.relay, figures.pacing
    yield _gauge(
        "distributor_relay_consecutive_outages",
        "Times in a row workers found the mail relay refusing or unreachable (0: it answers).",
        relay.consecutive_outages,
    )
    yield _gauge(
        "distributor_relay_resting",
        "1 while no batch is handed out because the relay was found down, else 0.",
        1.0 if relay.is_resting(figures.now) else 0.0,
    )
    yield _gauge(
        "distributor_delivery_rate_messages_per_second",
        "Messages that reached a final reply a second, over the last five seconds.",
        pacing.recent_rate,
    )
    yield _gauge(
        "distributor_pacing_backing_off",
        "1 while the installation is slowed down after the relay pushed back, else 0.",
        1.0 if pacing.backing_off else 0.0,
    )
    optional = {
        "distributor_rate_limit_messages_per_second": (
            "The installation's rate limit in force, after any backoff.",
            pacing.rate_in_force,
        ),
        "distributor_relay_connections_allowed": (
            "Relay connections the installation may hold at once, after any backoff.",
            pacing.connections_in_force,
        ),
        "distributor_relay_connections_held": (
            "Relay connection slots held now.",
            pacing.connections_held,
        ),
        "distributor_daily_quota_used_messages": (
            "Messages counted against today's quota (UTC).",
            pacing.quota_used_today,
        ),
        "distributor_daily_quota_messages": (
            "The daily quota (DISTRIBUTOR_DAILY_QUOTA).",
            pacing.limits.daily_quota,
        ),
    }
    for name, (documentation, value) in optional.items():
        if value is not None:
            yield _gauge(name, documentation, value)
    yield from _wait_families(pacing.waits)


def _wait_families(waits: Mapping[WaitKind, LimiterWaits] | None) -> Iterator[Metric]:
    """What the limits held messages and lanes back, recorded in the pacing store (absent
    when there is none, or it did not answer)."""
    if waits is None:
        return
    count = CounterMetricFamily(
        "distributor_rate_limiter_waits",
        "Times a message waited for a slot of a rate limit (rate: the installation's or the "
        "relay's backoff; domain: a recipient domain's), or a lane for a relay connection "
        "under the cap (connections).",
        labels=["limit"],
    )
    seconds = CounterMetricFamily(
        "distributor_rate_limiter_wait_seconds",
        "How long those waits lasted in all, summed over every lane of every worker.",
        labels=["limit"],
    )
    for kind in WaitKind:
        recorded = waits.get(kind, LimiterWaits())
        count.add_metric([kind.value], recorded.count)
        seconds.add_metric([kind.value], recorded.seconds)
    yield count
    yield seconds


def _queue_families(figures: DatabaseFigures) -> Iterator[Metric]:
    waiting = GaugeMetricFamily(
        "distributor_queue_batches_waiting",
        "Batches queued for a worker, due, and not yet taken by one (from the database).",
        labels=["queue"],
    )
    oldest = GaugeMetricFamily(
        "distributor_queue_oldest_batch_age_seconds",
        "How long the batch that has waited longest for a worker has been due (0: none).",
        labels=["queue"],
    )
    for queue in figures.queues:
        waiting.add_metric([queue.queue], queue.batches_waiting)
        oldest.add_metric([queue.queue], queue.oldest_age_seconds(figures.now))
    yield waiting
    yield oldest


def queue_families(depths: list[QueueDepth]) -> Iterator[Metric]:
    messages = GaugeMetricFamily(
        "distributor_queue_messages",
        "Messages ready on each Celery queue of the installation, as the broker counts them.",
        labels=["queue"],
    )
    for depth in depths:
        if not depth.taken_by_workers and depth.messages is not None:
            messages.add_metric([depth.name], depth.messages)
    yield messages
    for depth in depths:
        if depth.taken_by_workers and depth.messages is not None:
            yield _gauge(
                "distributor_queue_unacknowledged_messages",
                "Batch messages workers took from Redis and have not finished: each is held "
                "until its ETA, just before the embargo, then while its batch is sent.",
                depth.messages,
            )
