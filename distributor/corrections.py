"""Corrections: the corrected text, at once, to everyone who received the release.

The correction is a release of its own (`corrects_release_id` names the original, which stays
as it was sent), checked and rendered as any release, with the press officer's note shown
at the top and "CORRECTION:" before the subject. It goes as a send of kind `correction`
under the original's public send, to everyone who was sent the release, embargoed copy or
public (see audience_rules.py), suppressions applying as ever.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from distributor.approvals import first_state
from distributor.audience_rules import recipients_of_release
from distributor.audit import record_action
from distributor.errors import InvalidStateError
from distributor.models import Send
from distributor.releases.draft import ReleaseDraft
from distributor.releases.store import DEFAULT_MAX_ASSET_BYTES, checked_release, get_release
from distributor.releases.versions import save_version
from distributor.scheduling import open_child_send
from distributor.states import SendKind, SendState
from distributor.visible_text import check_visible

MAX_NOTE = 1_000


@dataclass(frozen=True, slots=True)
class CorrectionSent:
    release_id: int  # the corrected release
    send_id: int
    recipients: int
    awaiting_approval: bool = False


def correct_release(
    session: Session,
    *,
    release_id: int,
    draft: ReleaseDraft,
    note: str,
    now: datetime,
    batch_size: int,
    max_asset_bytes: int = DEFAULT_MAX_ASSET_BYTES,
    on_warning: Callable[[str], object] | None = None,
) -> CorrectionSent:
    original = get_release(session, release_id)
    note = " ".join(note.split())
    check_visible(note, field="correction note")
    if len(note) > MAX_NOTE:
        raise InvalidStateError(f"the correction note is {len(note)} characters; keep it to 1000")
    public = session.scalar(
        select(Send)
        .where(Send.release_id == original.id, Send.kind == SendKind.PUBLIC)
        .order_by(Send.id.desc())
        .limit(1)
    )
    received = session.scalar(
        select(func.count()).select_from(recipients_of_release(original.id).subquery())
    )
    if public is None or not received:
        raise InvalidStateError(
            f"nobody has received release {release_id} yet, so there is nothing to correct: "
            "change it with `release edit` (before a send is armed) or cancel the send"
        )
    corrected = checked_release(
        session, draft, now=now, max_asset_bytes=max_asset_bytes, on_warning=on_warning
    )
    corrected.corrects_release_id = original.id
    corrected.correction_note = note
    session.add(corrected)
    session.flush()
    save_version(session, corrected, now=now)
    send, count = open_child_send(
        session,
        parent=public,
        kind=SendKind.CORRECTION,
        release_id=corrected.id,
        now=now,
        batch_size=batch_size,
        state=first_state(corrected),
    )
    for concerned in (original.id, corrected.id):
        record_action(
            session,
            "release.corrected",
            f"release {original.id}",
            at=now,
            release_id=concerned,
            after={
                "correction_release": corrected.id,
                "send": send.id,
                "state": send.state,
                "recipients": count,
            },
            detail=note,
        )
    return CorrectionSent(
        release_id=corrected.id,
        send_id=send.id,
        recipients=count,
        awaiting_approval=send.state == SendState.AWAITING_APPROVAL,
    )
