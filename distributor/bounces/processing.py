"""One message that came back, from bytes to its effect: read it, find its delivery, apply
it and let the reputation guard look at the send, all in one transaction."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from distributor.bounces.classify import classify
from distributor.bounces.kinds import BounceKind
from distributor.bounces.matching import Matched, Unmatched, find_delivery
from distributor.bounces.recording import record_bounce
from distributor.bounces.reputation import ReputationLimits, guard_send
from distributor.clock import Clock
from distributor.engine.db_retry import with_database
from distributor.logs import log_ids
from distributor.mail.verp import VerpAddresses

log = logging.getLogger(__name__)

# Kinds the reputation guard counts.
GUARDED = frozenset({BounceKind.HARD, BounceKind.COMPLAINT})


@dataclass(frozen=True, slots=True)
class Processed:
    bounce_id: int
    kind: BounceKind
    summary: str
    delivery_id: int | None
    send_id: int | None
    outcome: str
    duplicate: bool = False
    forged: bool = False
    # Why the report paused its send, when it did.
    paused: str | None = None

    @property
    def matched(self) -> bool:
        return self.delivery_id is not None


def process_message(
    session: Session,
    data: bytes,
    *,
    verp: VerpAddresses,
    message_id_domain: str,
    now: datetime,
    source: str,
    envelope_recipients: Sequence[str] = (),
    limits: ReputationLimits | None = None,
) -> Processed:
    report = classify(data)
    match = find_delivery(
        session,
        report,
        verp=verp,
        message_id_domain=message_id_domain,
        envelope_recipients=envelope_recipients,
    )
    recorded = record_bounce(session, report, match, now=now, source=source)
    matched = match if isinstance(match, Matched) else None
    paused = None
    if matched is not None and not recorded.duplicate and report.kind in GUARDED:
        paused = guard_send(
            session, send_id=matched.send_id, limits=limits or ReputationLimits(), now=now
        )
    processed = Processed(
        bounce_id=recorded.bounce_id,
        kind=report.kind,
        summary=report.summary,
        delivery_id=matched.delivery_id if matched else None,
        send_id=matched.send_id if matched else None,
        outcome=recorded.outcome,
        duplicate=recorded.duplicate,
        forged=isinstance(match, Unmatched) and match.forged,
        paused=paused,
    )
    log.info(
        "bounce %d (%s, %s): %s",
        processed.bounce_id,
        processed.kind.value,
        report.summary,
        processed.outcome,
        extra=log_ids(send_id=processed.send_id, delivery_id=processed.delivery_id),
    )
    return processed


@dataclass(frozen=True)
class BounceProcessor:
    """Processes messages over the sessions of a process, riding out a short outage."""

    sessions: sessionmaker[Session]
    verp: VerpAddresses
    message_id_domain: str
    clock: Clock
    limits: ReputationLimits = field(default_factory=ReputationLimits)
    patience: float = 20.0

    def process(
        self, data: bytes, *, source: str, envelope_recipients: Sequence[str] = ()
    ) -> Processed:
        return with_database(
            self.sessions,
            lambda session: process_message(
                session,
                data,
                verp=self.verp,
                message_id_domain=self.message_id_domain,
                now=self.clock.now(),
                source=source,
                envelope_recipients=envelope_recipients,
                limits=self.limits,
            ),
            write=True,
            patience=self.patience,
        )
