"""Sending one batch under its lease: claim a chunk, build and transmit each message, and
commit each outcome before the next message is accepted.

Whatever happens, every delivery ends somewhere that says why: sent with the relay's reply;
deferred with the reply and the next attempt; failed or bounced with the reason; or handed
back, untouched and without an attempt charged, when the worker stops, loses its lease or
finds the relay down.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from distributor.engine.claims import load_send
from distributor.engine.connections import BlockingConnection, Connection, ConnectionFactory
from distributor.engine.db_retry import with_database
from distributor.engine.dbclock import (
    CorrectedClock,
    measure_offset,
    read_database_time,
    warn_if_skewed,
)
from distributor.engine.dispatch import BatchRef
from distributor.engine.heartbeats import beat
from distributor.engine.jobs import BatchJob, BatchReport, BuildMessage, SendingParts
from distributor.engine.lanes import LaneSender
from distributor.engine.leases import (
    LeaseKeeper,
    batch_has_due_work,
    hand_back,
    lease_holder,
    release_batch,
    take_batch,
)
from distributor.models import Send
from distributor.states import SendState
from distributor.transport import MailTransport

__all__ = ["BatchJob", "BatchReport", "BuildMessage", "SendingParts", "deliver_batch"]

log = logging.getLogger(__name__)


def deliver_batch(
    job: BatchJob,
    *,
    parts: SendingParts,
    transport: MailTransport | None = None,
    connect: ConnectionFactory | None = None,
    connections: int = 1,
) -> BatchReport:
    """Send one batch, and then any other batch of the send that no worker holds.

    Give either a (blocking) `transport`, sent over as one connection, or `connect`, a
    factory of relay connections of which `connections` are kept busy at once.
    """
    if connect is None:
        if transport is None:
            raise ValueError("deliver_batch needs a transport or a connection factory")
        connect, connections = _one_connection_over(transport), 1
    report = BatchReport(job.send_id, job.batch_no)
    ids = {"send_id": job.send_id, "batch_no": job.batch_no}
    with parts.sessions() as session:
        snapshot = load_send(session, job.send_id)
    if snapshot is None or snapshot.state is not SendState.ARMED:
        report.skipped_reason = (
            f"send is {snapshot.state.value}, not armed" if snapshot else "send does not exist"
        )
        log.info("batch skipped: %s", report.skipped_reason, extra=ids)
        return report
    with parts.sessions.begin() as session:
        offset = measure_offset(session, parts.database_clock, parts.local_clock)
        now = read_database_time(session, parts.database_clock)
        beat(session, name=parts.owner, kind="worker", now=now, offset=offset, detail=str(ids))
        due = batch_has_due_work(session, job.batch, now)
        taken = due and take_batch(
            session, batch=job.batch, owner=parts.owner, now=now, lease=job.lease
        )
        holder = None if taken or not due else lease_holder(session, job.batch)
    warn_if_skewed(offset, process=parts.owner)
    if not taken:
        # Sent already (by a worker that helped), or held by a live worker: a broker message
        # delivered twice, or one a helping worker got ahead of. No connection is opened.
        report.skipped_reason = f"held by {holder}" if holder else "nothing due"
        log.info("batch skipped: %s", report.skipped_reason, extra=ids)
        return report
    log.info("batch started", extra=ids)
    held = [job.batch]
    try:
        with LeaseKeeper(
            parts.sessions,
            parts.database_clock,
            batch=job.batch,
            owner=parts.owner,
            lease=job.lease,
            on_renewal=lambda s: beat(
                s,
                name=parts.owner,
                kind="worker",
                now=read_database_time(s, parts.database_clock),
                offset=offset,
                detail=str(ids),
            ),
        ) as keeper:
            lanes = LaneSender(
                job,
                parts,
                snapshot=snapshot,
                keeper=keeper,
                clock=CorrectedClock(parts.local_clock, offset),
                report=report,
                held=held,
            )
            asyncio.run(lanes.run(connect, connections))
    finally:
        _give_back(job, parts, report, held)
    log.info(
        "batch finished: %d sent, %d deferred, %d failed, %d bounced, %d handed back; "
        "%d batch(es), %d connection(s), %d round trip(s)%s",
        report.sent,
        report.deferred,
        report.failed,
        report.bounced,
        report.handed_back,
        len(held),
        report.connections,
        report.round_trips,
        f" ({report.stopped_reason})" if report.stopped_reason else "",
        extra=ids,
    )
    return report


def _one_connection_over(transport: MailTransport) -> ConnectionFactory:
    made = False

    def connect() -> Connection:
        nonlocal made
        if made:
            raise ValueError("one blocking transport makes one connection")
        made = True
        return BlockingConnection(transport)

    return connect


def _give_back(
    job: BatchJob, parts: SendingParts, report: BatchReport, held: list[BatchRef]
) -> None:
    """Hand back whatever is claimed but unsent, and release the leases, so that the
    scheduler can queue the rest at once rather than after the leases run out."""

    def give_back(session: Session) -> None:
        now = read_database_time(session, parts.database_clock)
        cancelled = session.scalar(select(Send.state).where(Send.id == job.send_id)) is (
            SendState.CANCELLED
        )
        for batch in held:
            report.handed_back += hand_back(
                session,
                batch=batch,
                owner=parts.owner,
                now=now,
                detail=f"handed back unsent: {report.stopped_reason or 'batch ended'}",
                cancelled=cancelled,
            )
            release_batch(session, batch=batch, owner=parts.owner)

    try:
        with_database(parts.sessions, give_back, write=True, patience=parts.db_patience)
    except (OperationalError, DBAPIError):
        log.exception(
            "cannot hand back send %s batch %s; its lease will expire and it will be taken over",
            job.send_id,
            job.batch_no,
            extra={"send_id": job.send_id, "batch_no": job.batch_no},
        )
