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
import reprlib
import tomllib
from collections.abc import Callable, Mapping
from typing import Any

from distributor.errors import DistributorError
from distributor.files import (
    ATTACHMENT_TYPES,
    IMAGE_TYPES,
    checked_content_type,
    checked_image,
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
    check_draft_text,
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

# The front matter holds a headline and a few short fields: a few KB. Bounding its size and
# nesting keeps the TOML reader fast and within the stack (it recurses into arrays and inline
# tables, and its cost grows with the square of a dotted key's length).
MAX_FRONT_MATTER_CHARACTERS = 100_000
MAX_NESTING = 32
# How much of an unexpected value an error message shows.
_SHOWN = reprlib.Repr()
_SHOWN.maxstring = _SHOWN.maxother = _SHOWN.maxlong = 60
_SHOWN.maxlist = _SHOWN.maxdict = _SHOWN.maxtuple = _SHOWN.maxset = 4
_SHOWN.maxlevel = 2

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
    meta = read_front_matter(front)
    unknown = sorted(set(meta) - set(TEXT_KEYS) - set(FIELDS))
    if unknown:
        allowed = ", ".join((*TEXT_KEYS, *FIELDS))
        raise DistributorError(
            f"the front matter has unknown key(s) {_listed(unknown)}; it may hold {allowed}"
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
    draft = ReleaseDraft(
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
    return check_draft_text(draft)


def read_front_matter(front: str) -> dict[str, Any]:
    """The TOML front matter as data, or an error that says where it goes wrong."""
    if len(front) > MAX_FRONT_MATTER_CHARACTERS:
        raise DistributorError(
            f"the front matter is {len(front):,} characters long, more than the "
            f"{MAX_FRONT_MATTER_CHARACTERS:,} allowed; it holds the headline and short fields: "
            "put the text in the body, after the closing +++"
        )
    too_deep = _nesting_too_deep(front)
    if too_deep is not None:
        raise DistributorError(
            f"the front matter nests arrays, tables or dotted keys more than {MAX_NESTING} "
            f"deep (line {too_deep + 1}); a release needs at most [[quotes]] and its keys"
        )
    try:
        return tomllib.loads(front)
    except tomllib.TOMLDecodeError as exc:
        # Count lines from the top of the file: the opening fence is line 1.
        message = TOML_POSITION.sub(
            lambda m: f"(line {int(m.group(1)) + 1}, column {m.group(2)})", str(exc)
        )
        raise DistributorError(f"cannot read the front matter: {message}") from None
    except RecursionError:
        # Nesting the scan above did not see; the same answer.
        raise DistributorError(
            "the front matter nests arrays or tables too deeply; a release needs at most "
            "[[quotes]] and its keys"
        ) from None


def _nesting_too_deep(front: str) -> int | None:
    """The line (of the front matter, from 1) where brackets or a dotted key go deeper than
    MAX_NESTING, or None. Strings and comments are skipped, so their text does not count."""
    depth = dots = 0
    position = 0
    while position < len(front):
        char = front[position]
        if char in "\"'":
            position = _string_end(front, position)
            continue
        if char == "#":
            position = front.find("\n", position)
            if position < 0:
                return None
            continue
        if char in "[{":
            depth += 1
            dots = 0
        elif char in "]}":
            depth = max(depth - 1, 0)
            dots = 0
        elif char == ".":
            dots += 1
        elif not (char in " \t_-" or char.isalnum()):
            dots = 0  # anything else ends a dotted key
        if depth > MAX_NESTING or dots >= MAX_NESTING:
            return front.count("\n", 0, position) + 1
        position += 1
    return None


def _string_end(front: str, start: int) -> int:
    """The position just past the TOML string that starts at `start` (or the end of its
    line, for a string that is not closed: the TOML reader then says what is wrong)."""
    quote = front[start]
    if front.startswith(quote * 3, start):
        position = start + 3
        while position < len(front):
            if quote == '"' and front[position] == "\\":
                position += 2
            elif front.startswith(quote * 3, position):
                # Up to two more quotes belong to the string: """a""""" is 'a""'.
                end = position + 3
                while end < len(front) and end < position + 5 and front[end] == quote:
                    end += 1
                return end
            else:
                position += 1
        return len(front)
    position = start + 1
    while position < len(front) and front[position] != "\n":
        if quote == '"' and front[position] == "\\":
            position += 2
        elif front[position] == quote:
            return position + 1
        else:
            position += 1
    return position


def _listed(names: list[str]) -> str:
    shown = ", ".join(_SHOWN.repr(name) for name in names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _text(meta: Mapping[str, Any], key: str, where: str = "") -> str:
    value = meta.get(key, "")
    if not isinstance(value, str):
        raise DistributorError(f"{where}{key} must be text in quotes, not {_SHOWN.repr(value)}")
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
                f"{where}unknown key(s) {_listed(unknown)}; it may hold {', '.join(allowed)}"
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
    checked_image(filename, data, content_type=content_type)
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
    if content_type in IMAGE_TYPES:
        checked_image(filename, data, content_type=content_type)
    return AttachmentFile(filename=filename, content_type=content_type, data=data)
