"""Reading a plain-text release: headline, dateline, body and notes to editors."""

from __future__ import annotations

from pathlib import Path

import pytest

from distributor.errors import DistributorError
from distributor.releases import ReleaseDraft, parse_release_text

DEMO_DIR = Path(__file__).resolve().parent.parent / "demo"
DEMO_RELEASE = DEMO_DIR / "safelives-police-response-2017-11-14.txt"


@pytest.fixture(scope="module")
def demo() -> ReleaseDraft:
    return parse_release_text(DEMO_RELEASE.read_text(encoding="utf-8"))


def test_demo_headline(demo: ReleaseDraft) -> None:
    assert demo.headline == (
        "SafeLives welcomes progress report on the police response to domestic abuse"
    )


def test_demo_dateline(demo: ReleaseDraft) -> None:
    assert demo.dateline == "14th November 2017"


def test_demo_body_runs_from_the_first_paragraph_to_the_notes(demo: ReleaseDraft) -> None:
    assert demo.body.startswith("SafeLives welcomes the publication of Her Majesty's Inspectorate")
    assert demo.body.endswith(
        "Read the HMIC progress report on the police response to domestic abuse"
    )
    assert "Notes to editors" not in demo.body
    assert "14th November 2017" not in demo.body
    assert "“The police play a critical role" in demo.body


def test_demo_notes_to_editors(demo: ReleaseDraft) -> None:
    assert demo.notes_to_editors.startswith("About the HMIC report")
    assert demo.notes_to_editors.endswith("natalie.mantle@safelives.org.uk")
    assert "About SafeLives" in demo.notes_to_editors


def test_windows_line_endings_and_a_byte_order_mark_read_the_same(demo: ReleaseDraft) -> None:
    text = DEMO_RELEASE.read_text(encoding="utf-8").replace("\n", "\r\n")
    assert parse_release_text("\ufeff" + text) == demo


def test_release_without_dateline_or_notes() -> None:
    draft = parse_release_text("Charity opens new refuge\n\nThe refuge opens today.\n\nMore.\n")
    assert draft == ReleaseDraft(
        headline="Charity opens new refuge",
        dateline="",
        body="The refuge opens today.\n\nMore.",
        notes_to_editors="",
    )


@pytest.mark.parametrize("dateline", ["1 March 2027", "2027-03-01", "March 1, 2027"])
def test_other_dateline_spellings(dateline: str) -> None:
    draft = parse_release_text(f"Headline\n\n{dateline}\n\nBody text.\n\nNotes to editor:\nAbout")
    assert (draft.dateline, draft.body, draft.notes_to_editors) == (dateline, "Body text.", "About")


@pytest.mark.parametrize("text", ["", "   \n\n \t\n", "\ufeff"])
def test_empty_text_is_refused(text: str) -> None:
    with pytest.raises(DistributorError, match="the release is empty"):
        parse_release_text(text)


@pytest.mark.parametrize(
    "text",
    [
        "Headline only",
        "Headline only\n\n\n",
        "Headline\n\n14th November 2017\n",
        "Headline\n\n14th November 2017\n\nNotes to editors\n\nAbout the charity",
    ],
)
def test_headline_without_body_is_refused(text: str) -> None:
    with pytest.raises(DistributorError, match="has a headline but no body text"):
        parse_release_text(text)
