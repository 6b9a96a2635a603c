"""Celery tasks: thin wrappers that load ids and call the core."""

from __future__ import annotations

from functools import cache
from typing import Any

from celery.utils.log import get_task_logger

from distributor.runtime import Runtime
from distributor.sending import deliver_batch
from distributor.settings import Settings
from workers.app import app

log = get_task_logger(__name__)


@cache
def runtime() -> Runtime:
    """One runtime per worker process, built after the fork so no connection is shared."""
    return Runtime(Settings())


@app.task(name="distributor.send_batch")  # type: ignore[untyped-decorator]
def send_batch(send_id: int, batch_no: int) -> dict[str, Any]:
    rt = runtime()
    transport = rt.open_transport()
    try:
        report = deliver_batch(
            rt.batch_job(send_id, batch_no),
            sessions=rt.sessions,
            transport=transport,
            make_builder=rt.make_builder,
            clock=rt.clock,
        )
    finally:
        transport.close()
    log.info(
        "send %s batch %s: %s sent, %s failed%s",
        send_id,
        batch_no,
        report.sent,
        report.failed,
        f" ({report.skipped_reason})" if report.skipped_reason else "",
    )
    return {"sent": report.sent, "failed": report.failed}
