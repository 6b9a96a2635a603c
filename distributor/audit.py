"""The audit trail: every change people make, appended in the same transaction as the change.

An entry names the session's actor (see distributor.acting), what was done, to what, and
the values before and after where they apply. Entries are only ever added; the database
refuses updates and deletes (migration 0009). Personal data (addresses, names) is never
written here: a contact is named by its id.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from distributor.acting import actor_of
from distributor.actors import require_change_allowed
from distributor.models import AuditEntry

Values = Mapping[str, Any]


def jsonable(value: Any) -> Any:
    """A value as JSON can hold it: datetimes in ISO 8601, enums by value."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    return value


def record_action(
    session: Session,
    action: str,
    target: str,
    *,
    at: datetime | None = None,
    release_id: int | None = None,
    before: Values | None = None,
    after: Values | None = None,
    detail: str = "",
) -> AuditEntry:
    """Append one entry in the session's actor's name; a viewer is refused (and so is the
    change the caller made in this transaction, which rolls back with the error)."""
    actor = actor_of(session)
    require_change_allowed(actor, action=f"do this ({action})")
    entry = AuditEntry(
        at=at or datetime.now(UTC),
        actor=actor.name,
        actor_role=actor.role.value,
        action=action,
        target=target[:300],
        release_id=release_id,
        before=jsonable(dict(before)) if before is not None else None,
        after=jsonable(dict(after)) if after is not None else None,
        detail=detail,
    )
    session.add(entry)
    return entry


def changed_values(before: Values, after: Values) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the fields that differ, before and after."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


@dataclass(frozen=True, slots=True)
class AuditQuery:
    release_id: int | None = None
    since: datetime | None = None
    actor: str | None = None
    action_prefix: str | None = None
    limit: int = 200


def audit_entries(session: Session, query: AuditQuery) -> Sequence[AuditEntry]:
    """The newest `limit` entries matching the query, oldest first."""
    statement = select(AuditEntry)
    if query.release_id is not None:
        statement = statement.where(AuditEntry.release_id == query.release_id)
    if query.since is not None:
        statement = statement.where(AuditEntry.at >= query.since)
    if query.actor:
        statement = statement.where(AuditEntry.actor == query.actor)
    if query.action_prefix:
        statement = statement.where(AuditEntry.action.startswith(query.action_prefix))
    newest = session.scalars(statement.order_by(AuditEntry.id.desc()).limit(query.limit)).all()
    return list(reversed(newest))
