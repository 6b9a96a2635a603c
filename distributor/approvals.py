"""A second person's approval before anything of a release is armed.

An organisation may require it (`organisation set --require-approval`). Its sends are then
scheduled `awaiting_approval`, and the tick leaves them alone. `approve_release`, by an
approver or admin who neither scheduled the send nor wrote the release's latest text,
approves that version and moves the waiting sends on to `scheduled`. Editing the release
afterwards withdraws the approval and sends them back to wait.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from distributor.acting import actor_of
from distributor.actors import Actor, require_approver
from distributor.audit import record_action
from distributor.errors import InvalidStateError, NotFoundError, PermissionDeniedError
from distributor.models import Release, ReleaseApproval, ReleaseVersion, Send
from distributor.releases.store import get_release
from distributor.releases.versions import (
    current_version,
    diff_versions,
    get_version,
    save_version,
)
from distributor.states import SendState


@dataclass(frozen=True, slots=True)
class Approval:
    release_id: int
    version: int
    send_ids: tuple[int, ...]


def approval_required(release: Release) -> bool:
    return bool(release.organisation and release.organisation.require_approval)


def first_state(release: Release) -> SendState:
    """The state a new send of the release starts in."""
    return SendState.AWAITING_APPROVAL if approval_required(release) else SendState.SCHEDULED


def name_in(label: str | None) -> str:
    """The person's name in an actor's label, "Pat (press_officer)" -> "Pat"."""
    return (label or "").rsplit(" (", 1)[0]


def approve_release(
    session: Session, *, release_id: int, now: datetime, note: str = ""
) -> Approval:
    """Approve the release's latest version and every send of it awaiting approval."""
    actor = actor_of(session)
    require_approver(actor, action="approve a send")
    release = get_release(session, release_id)
    waiting = session.scalars(
        select(Send)
        .where(Send.release_id == release_id, Send.state == SendState.AWAITING_APPROVAL)
        .order_by(Send.id)
        .with_for_update()
    ).all()
    if not waiting:
        raise InvalidStateError(
            f"release {release_id} has no send awaiting approval"
            + ("" if approval_required(release) else "; its organisation does not require one")
        )
    version = current_version(session, release_id)
    if version:
        _refuse_own_work(
            actor, release_id, waiting, author=get_version(session, release_id, version)
        )
    else:  # stored before versions were kept: what is approved is the text as it stands
        _refuse_own_work(actor, release_id, waiting, author=None)
        version = save_version(session, release, now=now)
    for send in waiting:
        if send.parent_send_id is None and send.embargo_at <= now:
            passed = (
                f"the embargo of send {send.id} ({send.embargo_at:%Y-%m-%d %H:%M} UTC) passed "
                "while it awaited approval"
            )
            raise InvalidStateError(
                f"{passed}; move it first (`release move`), then approve",
                on_page=f"{passed}; move the embargo first, then approve",
            )
    session.execute(
        update(Send)
        .where(Send.id.in_([s.id for s in waiting]))
        .values(state=SendState.SCHEDULED)
        .execution_options(synchronize_session="fetch")
    )
    session.add(
        ReleaseApproval(
            release_id=release_id,
            version=version,
            approved_at=now,
            approved_by=actor.label,
            note=note,
        )
    )
    for send in waiting:
        record_action(
            session,
            "send.approved",
            f"send {send.id}",
            at=now,
            release_id=release_id,
            before={"state": SendState.AWAITING_APPROVAL},
            after={"state": SendState.SCHEDULED, "version": version},
            detail=note,
        )
    session.flush()
    return Approval(release_id=release_id, version=version, send_ids=tuple(s.id for s in waiting))


def _refuse_own_work(
    actor: Actor, release_id: int, waiting: Sequence[Send], *, author: ReleaseVersion | None
) -> None:
    for send in waiting:
        if name_in(send.scheduled_by) == actor.name:
            raise PermissionDeniedError(
                f"{actor.name} scheduled send {send.id}, so another person must approve it: "
                "that is what approval is for"
            )
    if author is not None and name_in(author.saved_by) == actor.name:
        raise PermissionDeniedError(
            f"{actor.name} wrote the latest version of release {release_id}, so another "
            "person must approve it: that is what approval is for"
        )


def withdraw_approval(session: Session, *, release: Release, now: datetime, reason: str) -> int:
    """Withdraw the release's approval (if any) and send its approved, not yet armed sends
    back to await approval; returns how many went back."""
    if not approval_required(release):
        return 0
    session.execute(
        update(ReleaseApproval)
        .where(ReleaseApproval.release_id == release.id, ReleaseApproval.withdrawn_at.is_(None))
        .values(withdrawn_at=now, withdrawn_reason=reason)
    )
    sends = session.scalars(
        select(Send).where(Send.release_id == release.id, Send.state == SendState.SCHEDULED)
    ).all()
    for send in sends:
        send.state = SendState.AWAITING_APPROVAL
        record_action(
            session,
            "send.approval_withdrawn",
            f"send {send.id}",
            at=now,
            release_id=release.id,
            before={"state": SendState.SCHEDULED},
            after={"state": SendState.AWAITING_APPROVAL},
            detail=reason,
        )
    session.flush()
    return len(sends)


def awaiting_sends(session: Session, release_id: int) -> list[int]:
    return list(
        session.scalars(
            select(Send.id)
            .where(Send.release_id == release_id, Send.state == SendState.AWAITING_APPROVAL)
            .order_by(Send.id)
        )
    )


def latest_approval(session: Session, release_id: int) -> ReleaseApproval | None:
    return session.scalar(
        select(ReleaseApproval)
        .where(ReleaseApproval.release_id == release_id)
        .order_by(ReleaseApproval.id.desc())
        .limit(1)
    )


@dataclass(frozen=True, slots=True)
class ReleaseDiff:
    from_version: int
    to_version: int
    # Why these two: "since version 2, approved by Ada" or "since the version before".
    basis: str
    lines: tuple[str, ...]


def release_diff(
    session: Session, release_id: int, *, since_version: int | None = None
) -> ReleaseDiff:
    """What changed in the release's text: since `since_version`, else since the version
    last approved, else since the version before the latest."""
    get_release(session, release_id)
    latest = current_version(session, release_id)
    if latest == 0:
        raise NotFoundError(f"release {release_id} has no saved versions to compare")
    if since_version is not None:
        base, basis = since_version, f"since version {since_version}"
    else:
        approval = latest_approval(session, release_id)
        if approval is not None:
            state = "approval withdrawn" if approval.withdrawn_at else "approved"
            base = approval.version
            basis = f"since version {base} ({state}, by {approval.approved_by})"
        else:
            base, basis = max(latest - 1, 1), "since the version before (never approved)"
    old = get_version(session, release_id, base)
    new = get_version(session, release_id, latest)
    return ReleaseDiff(
        from_version=old.version,
        to_version=new.version,
        basis=basis,
        lines=tuple(diff_versions(old, new)),
    )
