"""Rendering a release through the Jinja2 templates, once per send.

`prepare_release` renders the shared parts once (Markdown, the layout, inlined CSS) and
cuts the result at the recipient's personal values; `distributor.mail` joins the pieces
into one message per recipient.
"""

from distributor.rendering.environment import default_environment, make_environment
from distributor.rendering.markup import paragraphs
from distributor.rendering.problems import TemplateProblem
from distributor.rendering.render import (
    PreparedRelease,
    RenderedVariant,
    RenderSetup,
    check_release_renders,
    context_for,
    prepare_release,
)

__all__ = [
    "PreparedRelease",
    "RenderSetup",
    "RenderedVariant",
    "TemplateProblem",
    "check_release_renders",
    "context_for",
    "default_environment",
    "make_environment",
    "paragraphs",
    "prepare_release",
]
