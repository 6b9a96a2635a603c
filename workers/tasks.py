"""Celery tasks: thin wrappers that load ids and call the core."""

from __future__ import annotations

from functools import cache
from typing import Any

from distributor.engine.batch import deliver_batch
from distributor.runtime import Runtime
from distributor.settings import Settings
from workers.app import app
from workers.shutdown import stopping


@cache
def runtime() -> Runtime:
    """One runtime per worker process, built after the fork so no connection is shared."""
    return Runtime(Settings())


@app.task(name="distributor.send_batch")  # type: ignore[untyped-decorator]
def send_batch(send_id: int, batch_no: int) -> dict[str, Any]:
    rt = runtime()
    report = deliver_batch(
        rt.batch_job(send_id, batch_no),
        parts=rt.sending_parts(should_stop=stopping),
        connect=rt.connect_to_relay,
        connections=rt.settings.smtp_connections,
    )
    return {
        "sent": report.sent,
        "deferred": report.deferred,
        "failed": report.failed,
        "bounced": report.bounced,
        "handed_back": report.handed_back,
        "connections": report.connections,
        "round_trips": report.round_trips,
        "skipped": report.skipped_reason,
    }
