"""The core's problems with a release, each put beside the field of the editor it names.

The core reports a release's problems as sentences for a person ("quote 2 needs both the
words and who said them"); the editor shows each next to its field, and any it cannot place
at the top of the form.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from distributor.web.editor_form import GENERAL, EditorForm

_NUMBERED = {
    "quote": "quote",
    "press contact": "contact",
    "link": "link",
}
_FIELD_WORDS = (
    ("headline", "headline"),
    ("dateline", "dateline"),
    ("standfirst", "standfirst"),
    ("notes to editors", "notes_to_editors"),
    ("boilerplate", "boilerplate"),
    ("organisation", "organisation"),
    ("template name", "template"),
    ("template", "template"),
    ("body", "body"),
)
_NUMBERED_PATTERN = re.compile(r"\b(quote|press contact|link) (\d+)\b")
_TEMPLATE_FILE = re.compile(r"^template \S+\.j2\b")


def problem_lines(messages: Iterable[str]) -> list[str]:
    """Each problem on its own: the core lists several under one heading line."""
    lines = []
    for message in messages:
        parts = [part.strip() for part in message.split("\n") if part.strip()]
        if len(parts) > 1 and parts[0].endswith(":"):
            parts = parts[1:]
        lines.extend(parts)
    return lines


def field_of_problem(problem: str, form: EditorForm, *, upload_name: str = "") -> str:
    """The key of the field a problem names (see the template), or GENERAL."""
    text = problem.lower()
    if _TEMPLATE_FILE.match(text):
        return GENERAL  # the installation's template, not this form's field
    if text.startswith("the body") or " in the body " in text:
        return "body"
    numbered = _NUMBERED_PATTERN.search(text)
    if numbered:
        return f"{_NUMBERED[numbered.group(1)]}-{numbered.group(2)}"
    for number, link in enumerate(form.links, start=1):
        if link["url"].strip() and repr(link["url"].strip()).lower() in text:
            return f"link-{number}"
    for index, kept in enumerate(form.files):
        if kept.filename.lower() in text:
            return f"file-{index}"
    if upload_name and upload_name.lower() in text:
        return "new_file"
    if "images and attachments" in text:
        return "new_file"
    for words, key in _FIELD_WORDS:
        if text.startswith((f"the {words}", f"{words} ")) or f"the {words} " in text[:60]:
            return key
    if text.startswith("no organisation named"):
        return "organisation"
    return GENERAL


def place_problems(form: EditorForm, messages: Iterable[str], *, upload_name: str = "") -> None:
    for problem in problem_lines(messages):
        form.error(field_of_problem(problem, form, upload_name=upload_name), problem)
