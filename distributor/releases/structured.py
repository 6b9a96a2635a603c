"""Reading a structured release: Markdown with TOML front matter between `+++` lines.

+++
headline = "Charity opens refuge"
standfirst = "One sentence that tells the story."
organisation = "SafeLives"

[[quotes]]
text = "We are delighted."
name = "Diana Barran"
role = "Chief Executive"

[[images]]
file = "refuge.jpg"
alt = "The new refuge's front door"
+++

The body, in Markdown. ![The garden](garden.png) shows an image in place.

## Notes to editors

More, in Markdown.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from typing import Any

from distributor.errors import DistributorError
from distributor.files import (
    ATTACHMENT_TYPES,
    IMAGE_TYPES,
    checked_content_type,
    clean_filename,
)
from distributor.releases.draft import (
    AttachmentFile,
    BodyFormat,
    ImageFile,
    Link,
    PressContact,
    Quote,
    ReleaseDraft,
)
from distributor.releases.plain_text import clean_pasted_text, split_notes

FENCE = "+++"
MARKDOWN_NOTES_HEADING = re.compile(
    r"^[ \t]*(?:#{1,6}[ \t]*)?notes to editors?[ \t]*:?[ \t]*#*[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")

# What each table of the front matter may hold, and which of its keys must be given.
FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "quotes": (("text", "name", "role"), ("text", "name")),
    "contacts": (("name", "role", "email", "phone"), ("name",)),
    "links": (("label", "url"), ("label", "url")),
    "images": (("file", "alt", "caption"), ("file", "alt")),
    "attachments": (("file",), ("file",)),
}
TEXT_KEYS = (
    "headline",
    "dateline",
    "standfirst",
    "organisation",
    "template",
    "boilerplate",
    "notes_to_editors",
)

ReadFile = Callable[[str], bytes]


def is_structured(text: str) -> bool:
    return clean_pasted_text(text).lstrip("\n").startswith(FENCE)


def split_front_matter(text: str) -> tuple[str, str]:
    """The TOML between the fences and the Markdown after them."""
    text = clean_pasted_text(text).lstrip("\n")
    lines = text.split("\n")
    if not lines or lines[0].strip() != FENCE:
        raise DistributorError(f"a structured release starts with a line {FENCE}")
    for index, line in enumerate(lines[1:], start=1):
        if line.strip() == FENCE:
            return "\n".join(lines[1:index]), "\n".join(lines[index + 1 :])
    raise DistributorError(
        f"the front matter is not closed: add a line {FENCE} after it, before the body"
    )


def parse_release_markdown(text: str, *, read_file: ReadFile) -> ReleaseDraft:
    """A draft from Markdown with front matter; `read_file` reads images and attachments."""
    front, body_text = split_front_matter(text)
    try:
        meta = tomllib.loads(front)
    except tomllib.TOMLDecodeError as exc:
        # Count lines from the top of the file: the opening fence is line 1.
        message = TOML_POSITION.sub(
            lambda m: f"(line {int(m.group(1)) + 1}, column {m.group(2)})", str(exc)
        )
        raise DistributorError(f"cannot read the front matter: {message}") from None
    unknown = sorted(set(meta) - set(TEXT_KEYS) - set(FIELDS))
    if unknown:
        allowed = ", ".join((*TEXT_KEYS, *FIELDS))
        raise DistributorError(
            f"the front matter has unknown key(s) {', '.join(unknown)}; it may hold {allowed}"
        )
    texts = {key: _text(meta, key) for key in TEXT_KEYS}
    body, notes = split_notes(body_text, MARKDOWN_NOTES_HEADING)
    if texts["notes_to_editors"]:
        if notes.strip():
            raise DistributorError(
                "notes to editors are given twice: in the front matter and under a heading "
                "in the body; keep one"
            )
        notes = texts["notes_to_editors"]
    if not texts["headline"]:
        raise DistributorError('the front matter needs a headline: headline = "..."')
    if not body.strip():
        raise DistributorError("the release has a headline but no body text after the front matter")
    return ReleaseDraft(
        headline=texts["headline"],
        dateline=texts["dateline"],
        standfirst=texts["standfirst"],
        body=body.strip(),
        body_format=BodyFormat.MARKDOWN,
        notes_to_editors=notes.strip(),
        boilerplate=texts["boilerplate"],
        organisation=texts["organisation"],
        template=texts["template"] or "release",
        quotes=tuple(Quote(**row) for row in _table(meta, "quotes")),
        press_contacts=tuple(PressContact(**row) for row in _table(meta, "contacts")),
        links=tuple(Link(**row) for row in _table(meta, "links")),
        images=tuple(_image(row, read_file) for row in _table(meta, "images")),
        attachments=tuple(_attachment(row, read_file) for row in _table(meta, "attachments")),
    )


def _text(meta: Mapping[str, Any], key: str, where: str = "") -> str:
    value = meta.get(key, "")
    if not isinstance(value, str):
        raise DistributorError(f"{where}{key} must be text in quotes, not {value!r}")
    return value.strip()


def _table(meta: Mapping[str, Any], name: str) -> list[dict[str, str]]:
    rows = meta.get(name, [])
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise DistributorError(f"{name} must be a list of tables: write each as [[{name}]]")
    allowed, required = FIELDS[name]
    result = []
    for number, row in enumerate(rows, start=1):
        where = f"[[{name}]] number {number}: "
        unknown = sorted(set(row) - set(allowed))
        if unknown:
            raise DistributorError(
                f"{where}unknown key(s) {', '.join(unknown)}; it may hold {', '.join(allowed)}"
            )
        values = {key: _text(row, key, where) for key in allowed}
        missing = [key for key in required if not values[key]]
        if missing:
            raise DistributorError(f"{where}give {', '.join(missing)}")
        result.append(values)
    return result


def _read(row: Mapping[str, str], read_file: ReadFile) -> tuple[str, bytes]:
    return clean_filename(row["file"]), read_file(row["file"])


def _image(row: Mapping[str, str], read_file: ReadFile) -> ImageFile:
    filename, data = _read(row, read_file)
    content_type = checked_content_type(filename, data, allowed=IMAGE_TYPES)
    return ImageFile(
        filename=filename,
        content_type=content_type,
        data=data,
        alt=row["alt"],
        caption=row["caption"],
    )


def _attachment(row: Mapping[str, str], read_file: ReadFile) -> AttachmentFile:
    filename, data = _read(row, read_file)
    content_type = checked_content_type(filename, data, allowed=ATTACHMENT_TYPES)
    return AttachmentFile(filename=filename, content_type=content_type, data=data)
