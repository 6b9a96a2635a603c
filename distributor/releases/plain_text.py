"""Reading a plain-text release: headline, dateline, body and notes to editors."""

from __future__ import annotations

import re

from distributor.errors import DistributorError
from distributor.releases.draft import ReleaseDraft, check_draft_text

NOTES_HEADING = re.compile(r"^\s*notes to editors?\s*:?\s*$", re.IGNORECASE | re.MULTILINE)
DATELINE = re.compile(
    r"^\s*(\d{1,2}(st|nd|rd|th)?\s+\w+\s+\d{4}|\d{4}-\d{2}-\d{2}|\w+\s+\d{1,2},?\s+\d{4})\s*$"
)


def clean_pasted_text(text: str) -> str:
    """Text pasted from a web page or a word processor, made plain.

    It brings a byte order mark, Windows line endings and no-break spaces between words;
    none of them belongs in an email.
    """
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ")


def split_notes(text: str, heading: re.Pattern[str] = NOTES_HEADING) -> tuple[str, str]:
    """The text before a 'Notes to editors' heading line, and the text after it."""
    found = heading.search(text)
    if found is None:
        return text, ""
    return text[: found.start()], text[found.end() :]


def parse_release_text(text: str) -> ReleaseDraft:
    """First non-empty line: headline; a date on its own line next: dateline; then the body,
    with everything after a 'Notes to editors' line kept as notes."""
    lines = [line.rstrip() for line in clean_pasted_text(text).strip().split("\n")]
    if not lines or not lines[0].strip():
        raise DistributorError("the release is empty: the first line should be its headline")
    headline = lines[0].strip()
    rest = "\n".join(lines[1:]).strip("\n")
    dateline = ""
    first, _, remainder = rest.lstrip("\n").partition("\n")
    if DATELINE.match(first):
        dateline, rest = first.strip(), remainder
    body, notes = split_notes(rest)
    if not body.strip():
        raise DistributorError("the release has a headline but no body text")
    return check_draft_text(
        ReleaseDraft(
            headline=headline, dateline=dateline, body=body.strip(), notes_to_editors=notes.strip()
        )
    )
