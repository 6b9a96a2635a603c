"""Changing a release's text before anything has gone out.

An edit is checked and rendered exactly as a new release is. It is refused once any send of
the release is armed (workers may already hold its content) or any copy has gone out (a
pre-brief, or a send that was resumed), because two journalists must never be sent two
different versions under one release.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from distributor.approvals import withdraw_approval
from distributor.audit import record_action
from distributor.errors import InvalidStateError
from distributor.models import Delivery, Release, Send
from distributor.releases.draft import ReleaseDraft
from distributor.releases.store import (
    DEFAULT_MAX_ASSET_BYTES,
    check_release_for_sending,
    checked_release,
    get_release,
)
from distributor.releases.versions import current_version, save_version, version_content
from distributor.states import SendState

# Sends in these states may still take a new text: nothing of them has reached a worker.
EDITABLE_SEND_STATES = frozenset(
    {SendState.AWAITING_APPROVAL, SendState.SCHEDULED, SendState.CANCELLED}
)
CONTENT_FIELDS = (
    "headline",
    "dateline",
    "standfirst",
    "body",
    "body_format",
    "notes_to_editors",
    "boilerplate",
    "quotes",
    "press_contacts",
    "links",
    "template",
    "organisation",
)


def edit_release(
    session: Session,
    release_id: int,
    draft: ReleaseDraft,
    *,
    now: datetime,
    max_asset_bytes: int = DEFAULT_MAX_ASSET_BYTES,
    on_warning: Callable[[str], object] | None = None,
) -> Release:
    """Replace the release's content with the draft's; returns the release."""
    release = get_release(session, release_id)
    # Locked, so that a scheduler cannot arm a send between this check and the commit: it
    # waits, and then arms the new text.
    sends = session.scalars(
        select(Send).where(Send.release_id == release_id).order_by(Send.id).with_for_update()
    ).all()
    _refuse_if_gone_out(session, release_id, sends)
    replacement = checked_release(
        session, draft, now=now, max_asset_bytes=max_asset_bytes, on_warning=on_warning
    )
    if replacement in session:
        session.expunge(replacement)
    old_text = version_content(release)
    for name in CONTENT_FIELDS:
        setattr(release, name, getattr(replacement, name))
    release.assets = list(replacement.assets)
    release.edited_at = now
    session.flush()
    new_text = version_content(release)
    changed = [name for name in new_text if new_text[name] != old_text.get(name)]
    before = current_version(session, release_id)
    version = save_version(session, release, now=now)
    record_action(
        session,
        "release.edited",
        f"release {release_id}",
        at=now,
        release_id=release_id,
        before={"version": before},
        after={"version": version},
        detail="changed: " + (", ".join(changed) or "nothing"),
    )
    withdraw_approval(
        session, release=release, now=now, reason=f"release edited (version {version})"
    )
    # Each waiting send renders the new text with its own embargo before anything is kept.
    for send in sends:
        if send.state in (SendState.SCHEDULED, SendState.AWAITING_APPROVAL):
            warnings = check_release_for_sending(
                session,
                release_id=release_id,
                embargo_at=send.embargo_at,
                embargo_zone=send.embargo_zone,
            )
            for warning in warnings:
                if on_warning is not None:
                    on_warning(warning)
    return release


def _refuse_if_gone_out(session: Session, release_id: int, sends: Sequence[Send]) -> None:
    beyond = [s for s in sends if s.state not in EDITABLE_SEND_STATES]
    if beyond:
        listed = ", ".join(f"send {s.id} is {s.state.value}" for s in beyond)
        raise InvalidStateError(
            f"release {release_id} can no longer be edited: {listed}; what workers hold must "
            "be what goes out. Cancel the send first, or create a new release for a correction"
        )
    gone_out = session.scalar(
        select(
            exists().where(
                Delivery.send_id.in_([s.id for s in sends]),
                Delivery.first_claimed_at.is_not(None),
            )
        )
    )
    if gone_out:
        raise InvalidStateError(
            f"release {release_id} can no longer be edited: copies of it have already gone "
            "out; create a new release for a correction"
        )
