"""A workaround for kombu's Redis transport when the Redis server restarts.

When the connection to Redis is lost, kombu closes the channel and first tries to put the
messages the worker holds unacknowledged back on the queue. The connection is already
released by then, so kombu raises AttributeError ('NoneType' object has no attribute
'hostname'), and Celery takes that for an unrecoverable error and stops the worker
(kombu 5.7.0). Returning those messages is only a courtesy here: the database knows every
batch, and the scheduler queues again whatever no live worker holds. So the failure is
logged and the worker reconnects as it would after any other connection error.

The same happens when a batch that was running across the restart finishes and Celery
acknowledges its message on the closed channel: the restarted Redis no longer holds that
message, so there is nothing to acknowledge, and the failure is logged, not fatal.
"""

from __future__ import annotations

import logging
from typing import Any

from kombu.transport import redis as kombu_redis

log = logging.getLogger(__name__)

_restore_unacked = kombu_redis.QoS.restore_unacked
_ack = kombu_redis.QoS.ack


def _restore_unacked_or_leave_it(self: Any, client: Any = None) -> None:
    try:
        _restore_unacked(self, client)  # type: ignore[no-untyped-call]
    except AttributeError as exc:
        log.warning(
            "could not return unacknowledged batch messages to Redis (%s); the scheduler "
            "queues their batches again from the database",
            exc,
        )


def _ack_or_leave_it(self: Any, delivery_tag: Any) -> None:
    try:
        _ack(self, delivery_tag)  # type: ignore[no-untyped-call]
    except AttributeError as exc:
        log.warning(
            "could not acknowledge a batch message on a connection that was lost (%s); the "
            "restarted broker no longer holds it",
            exc,
        )


def tolerate_redis_restarts() -> None:
    kombu_redis.QoS.restore_unacked = _restore_unacked_or_leave_it  # type: ignore[method-assign]
    kombu_redis.QoS.ack = _ack_or_leave_it  # type: ignore[method-assign]
