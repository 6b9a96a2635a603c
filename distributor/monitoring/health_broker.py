"""Asking the broker whether it answers, and how many batch messages wait on each queue.

Through kombu, the library Celery itself talks to the broker with, so that Redis, RabbitMQ and
the embedded filesystem broker are asked the same way: a passive queue declaration returns
a queue's ready messages without creating or changing anything. On Redis that is the length
of the queue's lists; on RabbitMQ, the messages not yet handed to a consumer. A batch
message a worker has taken and holds until its ETA is not counted (Redis keeps those apart,
unacknowledged): the database's figure of batches waiting for a worker says more.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import kombu.connection

from distributor.engine.dispatch import notice_queue_name
from distributor.settings import EMBEDDED_BROKER, Settings

log = logging.getLogger(__name__)

BROKER_TIMEOUT_SECONDS = 2.0


class BrokerUnreachableError(Exception):
    """The broker did not answer; the message says why, without credentials."""


def installation_queues(settings: Settings) -> list[str]:
    """The Celery queues this installation's batches travel on."""
    return [settings.queue_name, notice_queue_name(settings.queue_name)]


def _connection(settings: Settings, timeout: float) -> Any:
    """A kombu connection, used untyped: kombu's type hints are partial."""
    options: dict[str, object] = {}
    if settings.broker_url == EMBEDDED_BROKER:
        # Where workers.app.broker_options puts the embedded broker's messages.
        folder = str(settings.broker_dir / "queue")
        options = {"data_folder_in": folder, "data_folder_out": folder}
    connection_class: Any = kombu.connection.Connection
    return connection_class(settings.broker_url, connect_timeout=timeout, transport_options=options)


def _connect(connection: Any) -> None:
    try:
        connection.ensure_connection(max_retries=0)
    except Exception as exc:
        # The URL may carry a password: name the kind of failure and the transport only.
        reason = f"{type(exc).__name__} from the {connection.transport_cls} broker"
        log.warning("the broker is unreachable: %s", exc)
        raise BrokerUnreachableError(reason) from None


def broker_problem(settings: Settings, *, timeout: float = BROKER_TIMEOUT_SECONDS) -> str | None:
    """Why the broker cannot be used now, or None when it answers."""
    connection = _connection(settings, timeout)
    try:
        _connect(connection)
    except BrokerUnreachableError as exc:
        return f"unreachable ({exc})"
    finally:
        connection.release()
    return None


def queue_lengths(settings: Settings, *, timeout: float = BROKER_TIMEOUT_SECONDS) -> dict[str, int]:
    """Ready messages on each of the installation's queues; BrokerUnreachableError when the
    broker does not answer. A queue no worker has declared yet holds nothing."""
    connection = _connection(settings, timeout)
    try:
        _connect(connection)
        lengths = {}
        for queue in installation_queues(settings):
            channel = connection.channel()
            try:
                lengths[queue] = int(channel.queue_declare(queue=queue, passive=True)[1])
            except (*connection.channel_errors, OSError):
                # Not declared yet (RabbitMQ, or Redis with no list), or no folder yet
                # (filesystem): nothing waits on it. RabbitMQ closes the channel on this.
                lengths[queue] = 0
            finally:
                _close_quietly(channel)
        return lengths
    except (*connection.connection_errors, OSError) as exc:
        log.warning("cannot read the broker's queues: %s", exc)
        raise BrokerUnreachableError(f"{type(exc).__name__} reading the queues") from None
    finally:
        connection.release()


def _close_quietly(channel: Any) -> None:
    # A channel the broker closed already (RabbitMQ, after a queue it does not have).
    with contextlib.suppress(Exception):
        channel.close()
