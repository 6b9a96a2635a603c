"""Releases: reading plain text and structured Markdown, checking and storing them."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from distributor.contacts_import import ContactRow, ParsedContacts, import_contacts
from distributor.database import make_engine
from distributor.errors import DistributorError, NotFoundError
from distributor.lists import add_to_list, create_list
from distributor.migrate import upgrade
from distributor.models import Release, Send
from distributor.organisations import LogoFile, save_organisation
from distributor.releases import (
    AttachmentFile,
    BodyFormat,
    ImageFile,
    InvalidReleaseError,
    Link,
    PressContact,
    Quote,
    ReleaseDraft,
    content_of,
    create_release,
    get_release,
    is_structured,
    parse_release_markdown,
    parse_release_text,
)
from distributor.rendering import TemplateProblem
from distributor.rendering.environment import bundled_templates_dir
from distributor.runtime import Runtime
from distributor.scheduling import schedule_send
from distributor.settings import Settings
from tests.conftest import SAMPLE_DRAFT

DEMO_DIR = Path(__file__).resolve().parent.parent / "demo"
DEMO_RELEASE = DEMO_DIR / "safelives-police-response-2017-11-14.txt"
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


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


# --- structured releases: Markdown with TOML front matter ---------------------------------

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def read_fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def structured(front: str, body: str = "The body.") -> str:
    return f"+++\n{front}\n+++\n\n{body}\n"


def test_a_structured_release_carries_every_rich_field() -> None:
    draft = parse_release_markdown(
        (FIXTURES / "refuge-release.md").read_text(encoding="utf-8"), read_file=read_fixture
    )

    assert draft.body_format is BodyFormat.MARKDOWN
    assert draft.headline == "Charity opens its largest refuge, with room for 40 families"
    assert draft.standfirst.startswith("The refuge in Bristol doubles")
    assert draft.organisation == "SafeLives"
    assert draft.quotes == (
        Quote(
            text="Every family that walks through this door will be safe.",
            name="Diana Barran",
            role="Chief Executive, SafeLives",
        ),
    )
    assert draft.press_contacts[0].phone == "0117 403 3220"
    assert draft.links[0].url.endswith("?format=pdf&lang=en")
    (image,) = draft.images
    assert (image.filename, image.content_type, image.alt) == (
        "refuge.png",
        "image/png",
        "The refuge's front garden, with a play area",
    )
    (attachment,) = draft.attachments
    assert (attachment.filename, attachment.content_type) == ("report.pdf", "application/pdf")
    assert draft.body.startswith("The refuge opens **today** in Bristol.")
    assert draft.notes_to_editors == (
        "Places are referred through the national helpline, 0808 2000 247."
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("+++\nheadline = 'x'\n", "not closed"),
        # The fence is line 1 of the file, so the front matter's line 2 is the file's line 3.
        (structured("headline = 'x'\ndateline 'y'"), r"front matter: .*\(line 3, column 10\)"),
        (structured("headline = 'x'\ncolour = 'red'"), "unknown key.*colour"),
        (structured("headline = 3"), "headline must be text"),
        (structured("dateline = 'today'"), "needs a headline"),
        (structured("headline = 'x'", body=""), "no body text"),
        (
            structured("headline = 'x'\n[[quotes]]\ntext = 'Hi'"),
            r"\[\[quotes\]\] number 1: give name",
        ),
        (structured("headline = 'x'\n[[images]]\nfile = 'refuge.png'"), "give alt"),
        (
            structured("headline = 'x'\n[[images]]\nfile = 'report.pdf'\nalt = 'A'"),
            "report.pdf is a application/pdf file",
        ),
        (structured("headline = 'x'\n[[attachments]]\nfile = 'refuge-release.md'"), "unknown type"),
        (
            structured(
                "headline = 'x'\nnotes_to_editors = 'a'", "Body.\n\n## Notes to editors\n\nb"
            ),
            "given twice",
        ),
    ],
)
def test_a_structured_release_with_a_mistake_is_refused_with_what_to_do(
    text: str, message: str
) -> None:
    with pytest.raises(DistributorError, match=message):
        parse_release_markdown(text, read_file=read_fixture)


def test_is_structured_tells_the_two_formats_apart() -> None:
    assert is_structured("\ufeff\n+++\nheadline = 'x'\n+++\nBody")
    assert not is_structured(DEMO_RELEASE.read_text(encoding="utf-8"))


# --- storing a release ---------------------------------------------------------------------


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime(Settings(database_url=database_url, data_dir=tmp_path / "var"))
    yield rt
    rt.close()


def rich_draft() -> ReleaseDraft:
    return parse_release_markdown(
        (FIXTURES / "refuge-release.md").read_text(encoding="utf-8"), read_file=read_fixture
    )


def add_safelives(rt: Runtime) -> None:
    with rt.sessions.begin() as session:
        save_organisation(
            session,
            name="SafeLives",
            now=NOW,
            website="https://safelives.example.org",
            about="We are a national charity.",
            primary_colour="#5B2C6F",
            logo=LogoFile("logo.png", read_fixture("logo.png"), alt="SafeLives"),
        )


def test_a_rich_release_is_stored_whole_and_read_back_the_same(store: Runtime) -> None:
    add_safelives(store)
    draft = rich_draft()
    with store.sessions.begin() as session:
        release_id = create_release(session, draft, now=NOW).id

    with store.sessions() as session:
        content = content_of(get_release(session, release_id))

    assert content.draft == draft
    assert content.organisation is not None
    assert content.organisation.primary_colour == "#5b2c6f"
    assert content.organisation.logo is not None
    assert content.organisation.logo.data == read_fixture("logo.png")
    assert content.boilerplate == "We are a national charity."


def test_a_release_for_an_unknown_organisation_is_refused(store: Runtime) -> None:
    with (
        pytest.raises(NotFoundError, match="organisation set 'SafeLives'"),
        store.sessions.begin() as session,
    ):
        create_release(session, rich_draft(), now=NOW)


def test_every_problem_of_a_draft_is_listed_and_nothing_is_stored(store: Runtime) -> None:
    png = read_fixture("refuge.png")
    draft = ReleaseDraft(
        headline="x" * 301,
        dateline="",
        body="See ![](chart.png)",
        notes_to_editors="",
        body_format=BodyFormat.MARKDOWN,
        quotes=(Quote(text="", name="Someone"),),
        press_contacts=(PressContact(name="Nat", email="not an address"),),
        links=(Link(label="Report", url="javascript:alert(1)"),),
        images=(
            ImageFile("a.png", "image/png", png, alt=" "),
            ImageFile("a.png", "image/png", png, alt="A"),
        ),
        attachments=(AttachmentFile("fake.pdf", "application/pdf", b"MZ\x90\x00"),),
        template="../etc/passwd",
    )
    with pytest.raises(InvalidReleaseError) as caught, store.sessions.begin() as session:
        create_release(session, draft, now=NOW, max_asset_bytes=1000)

    problems = "\n".join(caught.value.problems)
    for expected in (
        "headline is 301 characters",
        "template name '../etc/passwd'",
        "quote 1 needs both",
        "press contact 1: 'not an address'",
        "the link 'javascript:alert(1)' must be a full https://",
        "two files are called 'a.png'",
        "the image a.png needs alt text",
        "fake.pdf is not a PDF or an image",
        "more than the 1,000 allowed",
        "the picture chart.png in the body needs alt text",
        "the body shows 'chart.png', which is not one of the release's images",
    ):
        assert expected in problems
    with store.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Release)) == 0


def broken_templates(tmp_path: Path, name: str, old: str, new: str) -> Path:
    folder = tmp_path / "templates"
    shutil.copytree(bundled_templates_dir(), folder)
    path = folder / name
    path.write_text(path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("name", "old", "new", "message"),
    [
        (
            "release.html.j2",
            "{% if release.links %}",
            "{% if release.links %}{% endfor %}",
            "syntax error",
        ),
        ("release.txt.j2", "{{ release.body_text }}", "{{ release.body_txt }}", "body_txt"),
    ],
    ids=["syntax error", "undefined variable"],
)
def test_a_template_error_is_reported_when_the_release_is_saved(
    database_url: str, tmp_path: Path, name: str, old: str, new: str, message: str
) -> None:
    templates = broken_templates(tmp_path, name, old, new)
    rt = Runtime(Settings(database_url=database_url, templates_dir=templates))
    try:
        with (
            pytest.raises(TemplateProblem, match=message) as caught,
            rt.sessions.begin() as session,
        ):
            create_release(session, SAMPLE_DRAFT, now=NOW)
        assert caught.value.template == name
        assert caught.value.line is not None
        with rt.sessions() as session:
            assert session.scalar(select(func.count()).select_from(Release)) == 0
    finally:
        rt.close()


def test_a_template_error_is_reported_when_the_release_is_scheduled(
    database_url: str, tmp_path: Path
) -> None:
    # Given a release saved while the templates were fine, and contacts to send it to
    good = Runtime(Settings(database_url=database_url))
    try:
        with good.sessions.begin() as session:
            release_id = create_release(session, SAMPLE_DRAFT, now=NOW).id
            import_contacts(
                session,
                ParsedContacts(
                    rows=[ContactRow(line=2, email="a@example.com", name="A", outlet="")]
                ),
                now=NOW,
            )
            create_list(session, "Desk", now=NOW)
            add_to_list(session, "Desk", ["a@example.com"])
    finally:
        good.close()
    # When the templates are broken afterwards and the release is scheduled
    templates = broken_templates(
        tmp_path, "release.html.j2", "{{ recipient.name }}", "{{ recipient.name.first }}"
    )
    rt = Runtime(Settings(database_url=database_url, templates_dir=templates))
    try:
        with (
            pytest.raises(TemplateProblem, match="first") as caught,
            rt.sessions.begin() as session,
        ):
            schedule_send(
                session,
                release_id=release_id,
                list_names=["Desk"],
                embargo_at=NOW + timedelta(days=1),
                embargo_zone="Europe/London",
                now=NOW,
                batch_size=10,
            )
        # Then the template and line are named, and no send was made
        assert caught.value.template == "release.html.j2"
        with rt.sessions() as session:
            assert session.scalar(select(func.count()).select_from(Send)) == 0
    finally:
        rt.close()


def test_releases_stored_before_the_rich_fields_read_as_plain_text(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    upgrade(url, "0001")
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO releases (headline, dateline, body, notes_to_editors, created_at) "
                "VALUES ('Old headline', '', 'Old body.', 'Old notes.', '2026-01-01 00:00:00')"
            )
        )
    engine.dispose()

    upgrade(url)

    rt = Runtime(Settings(database_url=url))
    try:
        with rt.sessions() as session:
            content = content_of(get_release(session, 1))
    finally:
        rt.close()
    assert content.draft == ReleaseDraft(
        headline="Old headline", dateline="", body="Old body.", notes_to_editors="Old notes."
    )
    assert content.organisation is None


def test_an_organisation_is_created_then_changed_field_by_field(store: Runtime) -> None:
    add_safelives(store)
    with store.sessions.begin() as session:
        changed = save_organisation(session, name=" SafeLives ", now=NOW, accent_colour="#C0392B")
        assert (changed.primary_colour, changed.accent_colour) == ("#5b2c6f", "#c0392b")
        assert changed.logo_data == read_fixture("logo.png")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"primary_colour": "purple"}, "not a colour: write it as #rrggbb"),
        ({"website": "safelives.org"}, "must start with https://"),
        ({"logo": LogoFile("logo.png", b"GIF89a" + b"\0" * 600_000, alt="x")}, "under 500,000"),
        ({"logo": LogoFile("logo.png", read_fixture("report.pdf"), alt="x")}, "application/pdf"),
        ({"logo": LogoFile("logo.png", read_fixture("logo.png"), alt=" ")}, "needs alt text"),
        ({"name": "  "}, "needs a name"),
    ],
)
def test_an_organisation_with_a_mistake_is_refused(
    store: Runtime, changes: dict[str, object], message: str
) -> None:
    arguments: dict[str, object] = {"name": "SafeLives", "now": NOW}
    arguments.update(changes)
    with pytest.raises(DistributorError, match=message), store.sessions.begin() as session:
        save_organisation(session, **arguments)  # type: ignore[arg-type]
