"""What every page of the release editor shares: its script and stylesheet, and the
Content-Security-Policy that lets exactly those in.

The app's policy allows no script and no frame; the editor's pages run one script of their
own (the live preview, count and countdown) from /static, fetch from this site, and frame
the preview served by this site. Nothing inline, still.
"""

from __future__ import annotations

import hashlib
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from starlette.requests import Request
from starlette.responses import Response

from distributor.embargo import NOT_PLACES
from distributor.web.auth import Caller
from distributor.web.pages import STATIC_DIR, pages_of
from distributor.web.security import CONTENT_SECURITY_POLICY

SCRIPT = "editor.js"
STYLESHEET = "editor.css"
EDITOR_POLICY = {
    **CONTENT_SECURITY_POLICY,
    "script-src": "'self'",
    "connect-src": "'self'",
    "frame-src": "'self'",
}


def policy_header(policy: dict[str, str]) -> str:
    return "; ".join(f"{name} {value}".strip() for name, value in policy.items())


@cache
def asset_url(name: str) -> str:
    """The file's URL with a digest of its content, so a browser never keeps an old one."""
    digest = hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]
    return f"/static/{name}?v={digest}"


@cache
def zone_names() -> tuple[str, ...]:
    """The IANA zones an embargo may be given in, for the zone fields' suggestions."""
    return tuple(sorted(available_timezones() - NOT_PLACES))


def render_editor_page(
    request: Request,
    caller: Caller,
    name: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
) -> Response:
    values = {"editor_script": asset_url(SCRIPT), "editor_stylesheet": asset_url(STYLESHEET)}
    values.update(context)
    return pages_of(request).render(
        request,
        name,
        values,
        account=caller.account,
        status_code=status_code,
        headers={"Content-Security-Policy": policy_header(EDITOR_POLICY)},
    )
