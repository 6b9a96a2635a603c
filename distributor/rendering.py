"""Rendering a release through the Jinja2 templates, once per send."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from distributor.models import Release


@dataclass(frozen=True, slots=True)
class RenderedRelease:
    subject: str
    html: str
    text: str


def make_environment(templates_dir: Path) -> Environment:
    return Environment(
        loader=FileSystemLoader(templates_dir),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def paragraphs(text: str) -> list[str]:
    return [" ".join(block.split()) for block in text.split("\n\n") if block.strip()]


def render_release(
    environment: Environment, release: Release, *, embargo_at: datetime
) -> RenderedRelease:
    context: dict[str, Any] = {
        "headline": release.headline,
        "dateline": release.dateline,
        "body_paragraphs": paragraphs(release.body),
        "notes_paragraphs": paragraphs(release.notes_to_editors),
        "embargo_at": embargo_at,
    }
    return RenderedRelease(
        subject=release.headline,
        html=environment.get_template("release.html.j2").render(context),
        text=environment.get_template("release.txt.j2").render(context),
    )
