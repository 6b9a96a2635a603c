"""A graceful stop reaches the processes that are sending.

On a warm shutdown (SIGTERM, `celery control shutdown`, a deploy) Celery's main process
stops taking work and waits for its pool; the pool's processes would otherwise send their
whole batch first. This bootstep stops before the pool does and raises a flag that every
pool process inherited at fork, so each one finishes the message in flight, hands the rest
of its batch back, and the scheduler queues it for another worker at once.
"""

from __future__ import annotations

import logging
import multiprocessing
from typing import Any

from celery import bootsteps
from celery.signals import worker_shutting_down

log = logging.getLogger(__name__)
_stopping = multiprocessing.get_context("fork").Event()


def stopping() -> bool:
    return _stopping.is_set()


def _raise_flag() -> None:
    if not _stopping.is_set():
        log.info("worker stopping: each batch finishes its message in flight, hands back the rest")
        _stopping.set()


@worker_shutting_down.connect  # type: ignore[untyped-decorator]
def _on_signal(**_kwargs: Any) -> None:
    """SIGTERM or SIGINT to the main process: raised in the signal handler, at once."""
    _raise_flag()


class HandBackOnShutdown(bootsteps.StartStopStep):  # type: ignore[misc]
    """Any other warm shutdown (`celery control shutdown`): Celery closes its steps in boot
    order before it waits for the pool, and this step boots before the pool."""

    requires = {"celery.worker.components:Timer"}

    def close(self, worker: Any) -> None:
        _raise_flag()

    def stop(self, worker: Any) -> None:
        _raise_flag()

    def shutdown(self, worker: Any) -> None:
        _raise_flag()
