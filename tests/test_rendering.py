"""Rendering: safe HTML from release text, readable plain text, embargo wording, brand
colours, and templates that are checked, sandboxed and strict."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from distributor.releases.content import ReleaseContent
from distributor.releases.draft import BodyFormat, ReleaseDraft
from distributor.rendering import RenderSetup, TemplateProblem, make_environment
from distributor.rendering.brand import AA_CONTRAST, BrandColours, contrast
from distributor.rendering.embargo_notice import EmbargoNotice, describe_instant, known_zone
from distributor.rendering.environment import bundled_templates_dir
from distributor.rendering.markup import markdown_to_html, text_to_html
from distributor.rendering.personal import Variant
from distributor.rendering.plaintext import html_to_text
from distributor.rendering.render import GMAIL_CLIP_BYTES, check_release_renders
from tests.support.mail import EMBARGO, prepared, rich_content, sample_content

NOTICE = EmbargoNotice(at=EMBARGO, zone_name="Europe/London")
EVERYONE = Variant(embargoed=True, local_embargo=True, named=True, with_outlet=True)


def markdown(body: str, **changes: object) -> ReleaseContent:
    fields: dict[str, object] = {
        "headline": "Headline",
        "dateline": "",
        "body": body,
        "notes_to_editors": "",
        "body_format": BodyFormat.MARKDOWN,
    }
    fields.update(changes)
    return ReleaseContent(ReleaseDraft(**fields))  # type: ignore[arg-type]


# --- release text to HTML and back to text ------------------------------------------------


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        '<img src="x" onerror="alert(1)">',
        "[click](javascript:alert(1))",
        '<a href="JaVaScRiPt:alert(1)">click</a>',
        '<iframe src="https://evil.example"></iframe>',
        '<p style="background:url(https://tracker.example/p.gif)">styled</p>',
        '<form action="https://evil.example"><input name="password"></form>',
        "<svg onload=alert(1)>",
        '<a href="data:text/html;base64,PHNjcmlwdD4=">data</a>',
    ],
)
def test_markdown_html_is_sanitised(hostile: str) -> None:
    html = str(markdown_to_html(f"Before {hostile} after"))
    lowered = html.lower()
    for forbidden in ("<script", "onerror", "javascript:", "<iframe", "style=", "<form",
                      "<input", "onload", "data:"):  # fmt: skip
        assert forbidden not in lowered
    assert "Before" in html and "after" in html


def test_markdown_keeps_what_a_release_needs() -> None:
    html = str(
        markdown_to_html(
            "## Heading\n\n**Bold**, *emphasis* and [a link](https://example.org/a?b=1&c=2).\n\n"
            "- one\n- two\n\n> A quotation.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
        )
    )
    for expected in ("<h2>Heading</h2>", "<strong>Bold</strong>", "<em>emphasis</em>",
                     'href="https://example.org/a?b=1&amp;c=2"', "<li>one</li>",
                     "<blockquote>", "<table>", "<td>1</td>"):  # fmt: skip
        assert expected in html


def test_plain_text_bodies_become_paragraphs_quotes_and_links() -> None:
    html = str(
        text_to_html(
            "First <b>not bold</b> line\nsame paragraph.\n\n“A quotation.”\n\n"
            "See https://example.org/report. Mail press@example.org."
        )
    )
    assert "<p>First &lt;b&gt;not bold&lt;/b&gt; line same paragraph.</p>" in html
    assert "<blockquote><p>“A quotation.”</p></blockquote>" in html
    assert '<a href="https://example.org/report" rel="noopener noreferrer">' in html
    assert '<a href="mailto:press@example.org" rel="noopener noreferrer">' in html


def test_the_text_part_is_wrapped_with_links_lists_and_quotes_written_out() -> None:
    html = markdown_to_html(
        "A sentence that is long enough to need wrapping at seventy-two characters, as mail "
        "readers expect of plain text.\n\n"
        "- first item\n- second item\n\n"
        "> Quoted words.\n\n"
        "[The report](https://example.org/r) and <https://example.org/plain>.\n\n"
        "![A chart of the figures](https://example.org/chart.png)"
    )
    assert html_to_text(str(html)) == (
        "A sentence that is long enough to need wrapping at seventy-two\n"
        "characters, as mail readers expect of plain text.\n\n"
        "- first item\n- second item\n\n"
        "> Quoted words.\n\n"
        "The report <https://example.org/r> and https://example.org/plain.\n\n"
        "[A chart of the figures]"
    )


def test_release_images_in_the_body_are_shown_by_content_id_with_alt_text() -> None:
    release = prepared(rich_content())
    html = release.variant(EVERYONE).html.without_placeholders()

    (body_image,) = [i for i in release.shared.images if i.filename == "refuge.png"]
    assert f'alt="The garden of the refuge" width="552" src="cid:{body_image.content_id}"' in html
    assert release.shared.release.images == ()  # shown in the body, so not again below it
    logo = release.shared.brand.logo
    assert logo is not None and logo.alt == "SafeLives"


# --- embargo wording ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instant", "zone", "expected"),
    [
        (
            datetime(2017, 11, 14, 0, 1, tzinfo=UTC),
            "Europe/London",
            "00:01 GMT, Tuesday 14 November 2017",
        ),
        (
            datetime(2027, 7, 1, 8, 0, tzinfo=UTC),
            "Europe/London",
            "09:00 BST, Thursday 1 July 2027",
        ),
        (
            datetime(2027, 7, 1, 8, 0, tzinfo=UTC),
            "Europe/Paris",
            "10:00 CEST, Thursday 1 July 2027",
        ),
        (
            datetime(2027, 1, 1, 8, 0, tzinfo=UTC),
            "America/New_York",
            "03:00 EST, Friday 1 January 2027",
        ),
        (
            datetime(2027, 1, 1, 8, 0, tzinfo=UTC),
            "Asia/Kolkata",
            "13:30 IST, Friday 1 January 2027",
        ),
        (
            datetime(2027, 1, 1, 8, 0, tzinfo=UTC),
            "Asia/Dubai",
            "12:00 UTC+04, Friday 1 January 2027",
        ),
        (
            datetime(2027, 1, 1, 8, 0, tzinfo=UTC),
            "Asia/Kathmandu",
            "13:45 UTC+05:45, Friday 1 January 2027",
        ),
        (datetime(2027, 1, 1, 8, 0, tzinfo=UTC), None, "08:00 UTC, Friday 1 January 2027"),
    ],
)
def test_an_instant_is_written_with_the_abbreviation_in_force_that_day(
    instant: datetime, zone: str | None, expected: str
) -> None:
    assert describe_instant(instant, known_zone(zone)) == expected


def test_the_notice_gives_release_zone_utc_and_the_recipients_zone_only_when_it_adds() -> None:
    assert NOTICE.subject_prefix == "EMBARGOED UNTIL 00:01 GMT, Tuesday 14 November 2017"
    assert NOTICE.in_utc == "00:01 UTC, Tuesday 14 November 2017"
    assert NOTICE.in_zone_of("America/New_York") == "19:01 EST, Monday 13 November 2017"
    for same_or_unknown in ("Europe/London", "UTC", "Etc/UTC", "Not/AZone", "", None):
        assert NOTICE.in_zone_of(same_or_unknown) == ""
    in_utc = EmbargoNotice(at=EMBARGO, zone_name="UTC")
    assert (in_utc.subject_prefix, in_utc.in_utc) == (
        "EMBARGOED UNTIL 00:01 UTC, Tuesday 14 November 2017",
        "",
    )


def test_before_the_lift_the_banner_leads_both_parts_and_the_preheader() -> None:
    release = prepared(sample_content(), notice=NOTICE)
    shown = release.variant(EVERYONE)

    text = shown.text.fill(lambda slot: f"<{slot}>")
    assert text.startswith(
        "*** EMBARGOED UNTIL 00:01 GMT, Tuesday 14 November 2017 ***\n"
        "That is 00:01 UTC, Tuesday 14 November 2017.\n"
        "Where you are: <embargo.local>.\n"
    )
    html = shown.html.without_placeholders()
    assert html.index("EMBARGOED UNTIL") < html.index("SafeLives welcomes the publication")
    assert "Embargoed until 00:01 GMT, Tuesday 14 November 2017. SafeLives" in html
    lifted = release.variant(Variant(False, False, True, True))
    assert (
        "EMBARGOED" not in lifted.html.without_placeholders() + lifted.text.without_placeholders()
    )


# --- brand ---------------------------------------------------------------------------------


@pytest.mark.parametrize("primary", ["#ffd166", "#1d3557", "#00ff00", "#777777", "#ffffff"])
def test_brand_text_and_links_stay_readable_on_any_colour(primary: str) -> None:
    colours = BrandColours(primary=primary, accent=primary)
    assert contrast(colours.on_primary, primary) >= 4.5 or contrast(
        colours.on_primary, primary
    ) >= max(contrast("#ffffff", primary), contrast("#1a1a1a", primary))
    assert contrast(colours.link, "#ffffff") >= AA_CONTRAST


def test_the_organisations_brand_colours_are_used() -> None:
    html = prepared(rich_content()).variant(EVERYONE).html.without_placeholders()
    assert "background-color: #5b2c6f" in html or "background-color:#5b2c6f" in html
    assert "#c0392b" in html  # the accent: quote rules


# --- templates: errors, sandbox, personalisation -------------------------------------------


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    shutil.copytree(bundled_templates_dir(), folder)
    return folder


def edit(folder: Path, name: str, old: str, new: str) -> int:
    """Replace `old` in a template; returns the line number the change is on."""
    path = folder / name
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


def check(folder: Path, content: ReleaseContent | None = None) -> list[str]:
    setup = RenderSetup(environment=make_environment(folder))
    return check_release_renders(content or sample_content(), setup=setup, notice=NOTICE)


def test_the_bundled_templates_render_every_variant_without_warnings() -> None:
    assert check(bundled_templates_dir(), rich_content()) == []


def test_a_syntax_error_names_the_template_and_line(templates: Path) -> None:
    line = edit(templates, "release.html.j2", "{% if release.links %}", "{% iff release.links %}")

    with pytest.raises(TemplateProblem) as caught:
        check(templates)

    assert (caught.value.template, caught.value.line) == ("release.html.j2", line)
    assert "syntax error" in str(caught.value)
    assert f"template release.html.j2, line {line}:" in str(caught.value)


def test_a_syntax_error_in_the_layout_names_the_layout(templates: Path) -> None:
    line = edit(templates, "layout.txt.j2", "{% if test %}", "{% if test %}{{ }}")

    with pytest.raises(TemplateProblem) as caught:
        check(templates)

    assert (caught.value.template, caught.value.line) == ("layout.txt.j2", line)


def test_an_undefined_variable_names_template_line_and_variable(templates: Path) -> None:
    line = edit(templates, "release.txt.j2", "{{ release.body_text }}", "{{ release.body_txt }}")

    with pytest.raises(TemplateProblem, match="body_txt") as caught:
        check(templates)

    assert (caught.value.template, caught.value.line) == ("release.txt.j2", line)
    assert "undefined" in str(caught.value)


def test_an_undefined_variable_in_a_rare_branch_is_found_before_any_send(templates: Path) -> None:
    # Only recipients without a name reach this branch; every variant is rendered at once.
    edit(
        templates,
        "release.html.j2",
        '{% if recipient.name %}\n<p class="small">',
        "{% if not recipient.name %}{{ recipient.nickname }}{% endif %}"
        '{% if recipient.name %}\n<p class="small">',
    )

    with pytest.raises(TemplateProblem, match="nickname"):
        check(templates)


def test_a_missing_template_is_named(templates: Path) -> None:
    (templates / "release.txt.j2").unlink()
    with pytest.raises(TemplateProblem, match=r"release\.txt\.j2"):
        check(templates)


@pytest.mark.parametrize(
    "escape",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ release.__class__.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ lipsum.__globals__['os'] }}",
        "{{ recipient.__class__ }}",
        "{{ '{0.__class__.__mro__}'.format(release) }}",
        "{% set found = [] %}{{ found.append(1) }}",
        "{{ self._TemplateReference__context }}",
    ],
)
def test_the_sandbox_refuses_escape_attempts(templates: Path, escape: str) -> None:
    line = edit(templates, "release.html.j2", "{% block content %}", "{% block content %}" + escape)

    with pytest.raises(TemplateProblem) as caught:
        check(templates)

    message = str(caught.value)
    assert "unsafe" in message or "sandbox" in message or "undefined" in message
    assert (caught.value.template, caught.value.line) == ("release.html.j2", line)
    assert "subprocess" not in message and "uid=" not in message


def test_autoescape_is_on_for_html_templates(templates: Path) -> None:
    content = sample_content()
    draft = content.draft
    hostile = ReleaseContent(
        ReleaseDraft(
            headline="<script>alert(1)</script> & more",
            dateline=draft.dateline,
            body=draft.body,
            notes_to_editors="",
        )
    )
    html = prepared(hostile).variant(EVERYONE).html.without_placeholders()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html


def test_a_template_that_changes_a_personal_value_is_refused(templates: Path) -> None:
    edit(
        templates,
        "release.html.j2",
        "Dear {{ recipient.name }},",
        "Dear {{ recipient.name | upper }},",
    )

    with pytest.raises(TemplateProblem, match="changes a recipient's details") as caught:
        check(templates)

    assert caught.value.template == "release.html.j2"


def test_testing_personal_values_in_conditions_is_fine(templates: Path) -> None:
    edit(
        templates,
        "release.txt.j2",
        "Dear {{ recipient.name }},",
        "Dear {{ recipient.name or 'colleague' }}"
        "{% if recipient.outlet %} of {{ recipient.outlet }}{% endif %},",
    )
    assert check(templates) == []


def test_html_over_gmails_clipping_limit_is_warned_about() -> None:
    long_body = "\n\n".join(f"Paragraph {n}: " + "words " * 60 for n in range(400))
    warnings = check(bundled_templates_dir(), markdown(long_body))

    assert len(warnings) == 1
    assert "Gmail clips messages over 102 KB" in warnings[0]
    size = len(prepared(markdown(long_body)).variant(EVERYONE).html.without_placeholders())
    assert size > GMAIL_CLIP_BYTES


def test_a_template_broken_after_scheduling_fails_deliveries_visibly(templates: Path) -> None:
    # Workers record a ValueError from building as that delivery's failure.
    edit(templates, "release.txt.j2", "{{ release.body_text }}", "{{ release.gone }}")
    with pytest.raises(ValueError, match="gone"):
        prepared(setup=RenderSetup(environment=make_environment(templates))).variant(EVERYONE)
