"""What filters and mail programs punish, told to the press officer when a release is saved."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from distributor.releases.content import ReleaseContent
from distributor.releases.structured import parse_release_markdown
from distributor.rendering import RenderSetup, default_environment
from distributor.rendering.content_checks import content_warnings
from distributor.rendering.environment import bundled_templates_dir, make_environment
from tests.support.mail import FIXTURES, rich_content, sample_content

BODY = (
    "The refuge opens today in Bristol. It has forty family rooms, a nursery for "
    "under-fives, legal advice on site and a garden where children can play safely. "
    "Places are referred through the national helpline, which is open day and night, "
    "and every family is met by a support worker on the day they arrive."
)


def release(*, headline: str = "Charity opens its largest refuge", body: str = BODY,
            images: str = "") -> ReleaseContent:  # fmt: skip
    text = f'+++\nheadline = "{headline}"\n{images}+++\n\n{body}\n'
    draft = parse_release_markdown(text, read_file=lambda name: (FIXTURES / name).read_bytes())
    return ReleaseContent(draft)


PICTURE = '[[images]]\nfile = "refuge.png"\nalt = "The refuge\'s garden"\n'


def warnings_for(content: ReleaseContent, setup: RenderSetup | None = None) -> list[str]:
    return content_warnings(content, setup=setup or RenderSetup(environment=default_environment()))


@pytest.mark.parametrize(
    "content",
    [sample_content(), rich_content(), release(), release(images=PICTURE)],
    ids=["plain-text sample", "Markdown sample", "words", "words and a picture"],
)
def test_a_well_made_release_draws_no_warning(content: ReleaseContent) -> None:
    assert warnings_for(content) == []


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            release(headline="CHARITY OPENS ITS LARGEST REFUGE TODAY"),
            "is in capitals: filters score all-caps subjects",
        ),
        (
            release(body=BODY + "\n\n![](https://www.charity.example.org/photo.jpg)"),
            "1 picture(s) without alt text",
        ),
        (
            release(body="See the picture.\n\n![The garden](refuge.png)", images=PICTURE),
            "the release is mostly pictures (",
        ),
        (
            release(body=BODY + "\n\n[www.charity.example.org](https://login.example.net/x)"),
            "shows charity.example.org but the link goes to login.example.net",
        ),
        (
            release(body=BODY + "\n\n[press@charity.example.org](mailto:press@example.net)"),
            "shows charity.example.org but the link goes to example.net",
        ),
        (
            release(body=BODY + "\n\nThe [full report](https://bit.ly/3abcd) is online."),
            "links through a URL shortener (bit.ly)",
        ),
    ],
    ids=["all caps", "no alt text", "image only", "link text domain", "mailto", "shortener"],
)
def test_each_problem_is_told_with_what_to_do(content: ReleaseContent, expected: str) -> None:
    warnings = warnings_for(content)

    assert len(warnings) == 1, warnings
    assert expected in warnings[0]
    assert ";" in warnings[0]  # what was found; what to do


def test_a_link_whose_text_names_its_own_site_is_fine() -> None:
    body = BODY + (
        "\n\n[www.charity.example.org/report](https://charity.example.org/report) and "
        "[press.charity.example.org](https://press.charity.example.org)"
    )

    assert warnings_for(release(body=body)) == []


def test_a_template_that_leaves_the_plain_text_part_empty_is_told(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(bundled_templates_dir(), templates)
    (templates / "release.txt.j2").write_text("{{ release.headline }}\n", encoding="utf-8")
    setup = RenderSetup(environment=make_environment(templates))

    warnings = warnings_for(release(), setup)

    assert len(warnings) == 1, warnings
    assert "the plain-text part has" in warnings[0]
    assert "release.txt.j2" in warnings[0]
