"""The Jinja2 environment every email template runs in: sandboxed, autoescaped, strict.

Templates in the folder may be written by the people who run an installation, not only by
us, so every one of them runs in Jinja2's immutable sandbox: no attributes that start with
an underscore, no methods that change data, no `str.format` tricks. Undefined names fail
loudly (StrictUndefined), and HTML templates escape every value unless it is marked safe.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import ImmutableSandboxedEnvironment

BUNDLED_TEMPLATES = Path(__file__).resolve().parent.parent.parent / "templates"
INSTALLED_TEMPLATES = Path(__file__).resolve().parent.parent / "_templates"


def make_environment(templates_dir: Path) -> Environment:
    return ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(templates_dir),
        autoescape=select_autoescape(
            enabled_extensions=("html", "html.j2"), default_for_string=True, default=False
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def bundled_templates_dir() -> Path:
    return BUNDLED_TEMPLATES if BUNDLED_TEMPLATES.is_dir() else INSTALLED_TEMPLATES


@cache
def default_environment() -> Environment:
    """The bundled templates, for callers that were given no environment."""
    return make_environment(bundled_templates_dir())
