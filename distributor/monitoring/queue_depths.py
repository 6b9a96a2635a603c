"""How many batch messages wait on the broker, per queue: work handed on that no worker has
taken yet. One reading for /metrics, the admin page and `status --watch`.

Asked through kombu, the library Celery itself talks to the broker with, so that Redis,
RabbitMQ and the embedded filesystem broker are asked the same way: a passive queue
declaration returns a queue's ready messages without creating or changing anything (on
Redis the length of the queue's lists, one per priority step; on RabbitMQ the messages not
yet handed to a consumer; on the embedded broker its files). A worker takes a batch message
as soon as it arrives and holds it until its ETA, so the ready count is mostly 0; Redis
keeps the messages workers took and have not finished apart, and they are counted too.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from distributor.monitoring.health_broker import (
    BROKER_TIMEOUT_SECONDS,
    BrokerUnreachableError,
    broker_connection,
    connect,
    installation_queues,
)
from distributor.settings import EMBEDDED_BROKER, Settings

log = logging.getLogger(__name__)

TAKEN_BY_WORKERS = "taken by workers, not finished"
# For a page or a terminal redrawn every second or two: a broker that is down must not
# hold each drawing up for long.
QUICK_TIMEOUT_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class QueueDepth:
    name: str
    # None when the broker did not answer.
    messages: int | None
    note: str = ""
    # The messages workers took from every queue and have not finished (Redis only), rather
    # than one queue's ready messages.
    taken_by_workers: bool = False


def queue_depths(
    settings: Settings, *, timeout: float = BROKER_TIMEOUT_SECONDS
) -> list[QueueDepth]:
    """Ready messages on each of the installation's queues (a queue no worker has declared
    yet holds nothing), and on Redis the messages workers hold; each queue's count is None,
    with a note saying why, when the broker does not answer."""
    names = installation_queues(settings)
    connection = broker_connection(settings, timeout)
    try:
        connect(connection)
        depths = [QueueDepth(name, _ready(connection, name)) for name in names]
        taken = _taken_by_workers(connection)
        if taken is not None:
            depths.append(QueueDepth(TAKEN_BY_WORKERS, taken, "every queue together", True))
        return depths
    except (BrokerUnreachableError, *connection.connection_errors, OSError) as exc:
        reason = exc if isinstance(exc, BrokerUnreachableError) else type(exc).__name__
        log.warning("cannot read the broker's queues: %s", exc)
        note = f"{_broker_name(settings)} did not answer ({reason})"
        return [QueueDepth(name, None, note) for name in names]
    finally:
        connection.release()


def _ready(connection: Any, queue: str) -> int:
    channel = connection.channel()
    try:
        return int(channel.queue_declare(queue=queue, passive=True)[1])
    except (*connection.channel_errors, OSError):
        # Not declared yet (RabbitMQ, or Redis with no list), or no folder yet (filesystem):
        # nothing waits on it. RabbitMQ closes the channel on this.
        return 0
    finally:
        # A channel the broker closed already (RabbitMQ, after a queue it does not have).
        with contextlib.suppress(Exception):
            channel.close()


def _taken_by_workers(connection: Any) -> int | None:
    """Redis: the messages delivered to workers and not yet acknowledged, kept in one hash
    (a worker holds each batch until its ETA, then until it finished sending)."""
    if connection.transport.driver_type != "redis":
        return None
    channel = connection.default_channel
    return int(channel.client.hlen(channel.unacked_key))


def _broker_name(settings: Settings) -> str:
    if settings.broker_url == EMBEDDED_BROKER:
        return "the embedded broker"
    if settings.broker_is_amqp:
        return "RabbitMQ"
    return "Redis" if settings.pacing_store_kind == "redis" else "the broker"
