"""Asking the broker whether it answers, through kombu, the library Celery itself talks to
the broker with, so that Redis, RabbitMQ and the embedded filesystem broker are asked the
same way. What waits on its queues is read in queue_depths.py.
"""

from __future__ import annotations

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


def broker_connection(settings: Settings, timeout: float) -> Any:
    """A kombu connection, used untyped: kombu's type hints are partial."""
    options: dict[str, object] = {}
    if settings.broker_url == EMBEDDED_BROKER:
        # Where workers.app.broker_options puts the embedded broker's messages.
        folder = str(settings.broker_dir / "queue")
        options = {"data_folder_in": folder, "data_folder_out": folder}
    connection_class: Any = kombu.connection.Connection
    return connection_class(settings.broker_url, connect_timeout=timeout, transport_options=options)


def connect(connection: Any) -> None:
    """Connect now, or BrokerUnreachableError."""
    try:
        connection.ensure_connection(max_retries=0)
    except Exception as exc:
        # The URL may carry a password: name the kind of failure and the transport only.
        reason = f"{type(exc).__name__} from the {connection.transport_cls} broker"
        log.warning("the broker is unreachable: %s", exc)
        raise BrokerUnreachableError(reason) from None


def broker_problem(settings: Settings, *, timeout: float = BROKER_TIMEOUT_SECONDS) -> str | None:
    """Why the broker cannot be used now, or None when it answers."""
    connection = broker_connection(settings, timeout)
    try:
        connect(connection)
    except BrokerUnreachableError as exc:
        return f"unreachable ({exc})"
    finally:
        connection.release()
    return None
