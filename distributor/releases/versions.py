"""Each saved text of a release, numbered, so that an approver sees what changed since the
version they approved."""

from __future__ import annotations

import difflib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from distributor.acting import actor_of
from distributor.errors import NotFoundError
from distributor.models import Release, ReleaseVersion

# Text fields a reader sees, in the order a diff shows them.
TEXT_FIELDS = (
    "headline",
    "dateline",
    "standfirst",
    "body",
    "body_format",
    "notes_to_editors",
    "boilerplate",
    "template",
)
RECORD_FIELDS = ("quotes", "press_contacts", "links")


def version_content(release: Release) -> dict[str, Any]:
    """What the version keeps: the text, the small records, the organisation, the files."""
    content: dict[str, Any] = {name: getattr(release, name) or "" for name in TEXT_FIELDS}
    for name in RECORD_FIELDS:
        content[name] = list(getattr(release, name) or [])
    content["organisation"] = release.organisation.name if release.organisation else ""
    content["assets"] = [
        {
            "kind": a.kind,
            "filename": a.filename,
            "alt_text": a.alt_text,
            "caption": a.caption,
            "sha256": a.sha256,
        }
        for a in release.assets
    ]
    return content


def save_version(session: Session, release: Release, *, now: datetime) -> int:
    """Keep the release's current text as its next version; returns the version's number."""
    number = current_version(session, release.id) + 1
    session.add(
        ReleaseVersion(
            release_id=release.id,
            version=number,
            saved_at=now,
            saved_by=actor_of(session).label,
            content=version_content(release),
        )
    )
    session.flush()
    return number


def current_version(session: Session, release_id: int) -> int:
    """The number of the release's latest version (0 when none was kept)."""
    return (
        session.scalar(
            select(func.max(ReleaseVersion.version)).where(ReleaseVersion.release_id == release_id)
        )
        or 0
    )


def get_version(session: Session, release_id: int, version: int) -> ReleaseVersion:
    found = session.scalar(
        select(ReleaseVersion).where(
            ReleaseVersion.release_id == release_id, ReleaseVersion.version == version
        )
    )
    if found is None:
        latest = current_version(session, release_id)
        raise NotFoundError(
            f"release {release_id} has no version {version}; its versions are 1 to {latest}"
            if latest
            else f"release {release_id} has no saved versions"
        )
    return found


def _lines(content: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for name in TEXT_FIELDS:
        lines.append(f"## {name}")
        lines.extend(str(content.get(name, "")).splitlines() or [""])
    for name in (*RECORD_FIELDS, "assets"):
        lines.append(f"## {name}")
        for item in content.get(name, []):
            lines.append(json.dumps(item, ensure_ascii=False, sort_keys=True))
    lines.append("## organisation")
    lines.append(str(content.get("organisation", "")))
    return lines


def diff_versions(old: ReleaseVersion, new: ReleaseVersion) -> list[str]:
    """A unified diff, field by field, from one version's text to another's."""
    return list(
        difflib.unified_diff(
            _lines(old.content),
            _lines(new.content),
            fromfile=f"version {old.version} ({old.saved_by}, {old.saved_at:%Y-%m-%d %H:%M} UTC)",
            tofile=f"version {new.version} ({new.saved_by}, {new.saved_at:%Y-%m-%d %H:%M} UTC)",
            lineterm="",
        )
    )
