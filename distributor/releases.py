"""Release content: reading a plain-text release and storing it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from distributor.errors import DistributorError, NotFoundError
from distributor.models import Release

NOTES_HEADING = re.compile(r"^\s*notes to editors?\s*:?\s*$", re.IGNORECASE | re.MULTILINE)
DATELINE = re.compile(
    r"^\s*(\d{1,2}(st|nd|rd|th)?\s+\w+\s+\d{4}|\d{4}-\d{2}-\d{2}|\w+\s+\d{1,2},?\s+\d{4})\s*$"
)


@dataclass(frozen=True, slots=True)
class ReleaseDraft:
    headline: str
    dateline: str
    body: str
    notes_to_editors: str


def parse_release_text(text: str) -> ReleaseDraft:
    """First non-empty line: headline; a date on its own line next: dateline; then the body,
    with everything after a 'Notes to editors' line kept as notes."""
    # Text pasted from a web page or a word processor brings a byte order mark, no-break
    # spaces between words and trailing spaces; none of them belongs in an email.
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ")
    lines = [line.rstrip() for line in text.strip().split("\n")]
    if not lines or not lines[0].strip():
        raise DistributorError("the release is empty: the first line should be its headline")
    headline = lines[0].strip()
    rest = "\n".join(lines[1:]).strip("\n")
    dateline = ""
    first, _, remainder = rest.lstrip("\n").partition("\n")
    if DATELINE.match(first):
        dateline, rest = first.strip(), remainder
    body, notes = rest, ""
    heading = NOTES_HEADING.search(rest)
    if heading:
        body, notes = rest[: heading.start()], rest[heading.end() :]
    if not body.strip():
        raise DistributorError("the release has a headline but no body text")
    return ReleaseDraft(
        headline=headline, dateline=dateline, body=body.strip(), notes_to_editors=notes.strip()
    )


def create_release(session: Session, draft: ReleaseDraft, *, now: datetime) -> Release:
    if len(draft.headline) > 300:
        raise DistributorError(
            f"the headline is {len(draft.headline)} characters long; keep it to 300"
        )
    release = Release(
        headline=draft.headline,
        dateline=draft.dateline,
        body=draft.body,
        notes_to_editors=draft.notes_to_editors,
        created_at=now,
    )
    session.add(release)
    session.flush()
    return release


def get_release(session: Session, release_id: int) -> Release:
    release = session.get(Release, release_id)
    if release is None:
        raise NotFoundError(f"no release with id {release_id}; see `distributor status`")
    return release
