"""Template errors as the person who wrote the template needs to read them."""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from jinja2 import Environment, FileSystemLoader, TemplateError, TemplateSyntaxError
from jinja2.exceptions import SecurityError, TemplateNotFound, UndefinedError

from distributor.errors import DistributorError


class TemplateProblem(DistributorError, ValueError):
    """A template that cannot render a release: named, with the line and what is wrong.

    Also a ValueError, so that should templates change between scheduling and sending, a
    worker records each delivery as failed with this message instead of stopping.
    """

    def __init__(self, message: str, *, template: str, line: int | None) -> None:
        self.template = template
        self.line = line
        self.detail = message
        where = f"template {template}" + (f", line {line}" if line else "")
        super().__init__(
            f"{where}: {message} — fix the template, then save or schedule the release again"
        )


def _template_name(filename: str, environment: Environment) -> str:
    loader = environment.loader
    if isinstance(loader, FileSystemLoader):
        for root in loader.searchpath:
            try:
                return Path(os.path.relpath(filename, root)).as_posix()
            except ValueError:
                continue
    return Path(filename).name


def _last_template_frame(
    traceback: TracebackType | None, environment: Environment
) -> tuple[str, int] | None:
    """The innermost frame that is template code (Jinja2 rewrites them to template lines)."""
    found = None
    while traceback is not None:
        filename = traceback.tb_frame.f_code.co_filename
        if filename.endswith(".j2") or filename == "<template>":
            found = (_template_name(filename, environment), traceback.tb_lineno)
        traceback = traceback.tb_next
    return found


def describe(exc: Exception, environment: Environment, *, rendering: str) -> TemplateProblem:
    """A TemplateProblem for an exception raised while rendering the template `rendering`.

    Not only Jinja2's own errors: `{{ 1 / 0 }}` raises ZeroDivisionError from template code.
    """
    if isinstance(exc, TemplateSyntaxError):
        name = exc.name or (
            _template_name(exc.filename, environment) if exc.filename else rendering
        )
        return TemplateProblem(
            f"syntax error: {exc.message}", template=name, line=exc.lineno or None
        )
    if isinstance(exc, TemplateNotFound):
        return TemplateProblem(
            f"the template {exc.name!r} does not exist in the templates folder",
            template=rendering,
            line=None,
        )
    frame = _last_template_frame(exc.__traceback__, environment)
    template, line = frame if frame else (rendering, None)
    if isinstance(exc, SecurityError):
        message = f"refused by the sandbox: {exc}"
    elif isinstance(exc, UndefinedError):
        message = f"undefined value: {exc}"
    elif isinstance(exc, TemplateError):
        message = str(exc)
    else:
        message = f"{type(exc).__name__}: {exc}"
    return TemplateProblem(message, template=template, line=line)
