"""Server-rendered pages: the Jinja2 templates in templates/web and what every page shows.

The web templates are the app's own, always the bundled ones: DISTRIBUTOR_TEMPLATES_DIR
replaces the email templates only. Values are escaped (autoescape), undefined names fail,
and the pages carry no inline script or style, as the Content-Security-Policy demands.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import Response

from distributor.accounts.users import Account
from distributor.cli.status_view import until
from distributor.rendering.environment import bundled_templates_dir
from distributor.web.sessions import CSRF_FIELD, csrf_token, take_flash

STATIC_DIR = Path(__file__).resolve().parent / "static"
STYLESHEET = "app.css"


def web_templates_dir() -> Path:
    return bundled_templates_dir() / "web"


def in_zone(value: datetime | None, zone: str) -> str:
    """'Tue 1 Jul 2031, 09:00 BST': an instant as a person in `zone` reads it."""
    if value is None:
        return ""
    local = value.astimezone(ZoneInfo(zone))
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M} {local.tzname()}"


def in_utc(value: datetime | None) -> str:
    return "" if value is None else f"{value:%Y-%m-%d %H:%M} UTC"


def iso(value: datetime | None) -> str:
    return "" if value is None else value.isoformat()


def count(value: int) -> str:
    return f"{value:,}"


def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(web_templates_dir()),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(in_zone=in_zone, in_utc=in_utc, iso=iso, count=count)
    environment.globals.update(until=until, csrf_field=CSRF_FIELD)
    return environment


def _static_version() -> str:
    """A digest of the stylesheet, in its URL, so a browser never keeps an old one."""
    return hashlib.sha256((STATIC_DIR / STYLESHEET).read_bytes()).hexdigest()[:12]


class Pages:
    def __init__(self, *, site_name: str) -> None:
        self.templates = Jinja2Templates(env=_environment())
        self.site_name = site_name
        self.stylesheet = f"/static/{STYLESHEET}?v={_static_version()}"

    def render(
        self,
        request: Request,
        name: str,
        context: dict[str, Any] | None = None,
        *,
        status_code: int = 200,
        account: Account | None = None,
        with_forms: bool = True,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """The page, with what the layout needs: the stylesheet, the logged-in account, the
        CSRF token of its forms, and a message left by the previous request."""
        values: dict[str, Any] = {
            "stylesheet": self.stylesheet,
            "site_name": self.site_name,
            "account": account,
            "csrf_token": csrf_token(request) if with_forms else "",
            "flash": take_flash(request) if account is not None else None,
        }
        values.update(context or {})
        return self.templates.TemplateResponse(
            request, name, values, status_code=status_code, headers=headers
        )


def pages_of(request: Request) -> Pages:
    pages: Pages = request.app.state.pages
    return pages
