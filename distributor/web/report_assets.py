"""The report's and contacts pages' own static files, and the policy that lets them load.

The layout links the app's stylesheet; these pages add their own in its head block, with a
digest in the URL as the layout does. Their scripts poll the server, so their
Content-Security-Policy adds the site's own scripts and fetches to the app's policy.
"""

from __future__ import annotations

import hashlib
from functools import cache

from distributor.web.pages import STATIC_DIR
from distributor.web.security import CONTENT_SECURITY_POLICY


@cache
def static_url(name: str) -> str:
    digest = hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]
    return f"/static/{name}?v={digest}"


def scripted_policy() -> str:
    """The app's policy, with the site's own scripts and fetches allowed."""
    policy = {**CONTENT_SECURITY_POLICY, "script-src": "'self'", "connect-src": "'self'"}
    return "; ".join(f"{name} {value}" for name, value in policy.items())


def scripted_headers() -> dict[str, str]:
    return {"Content-Security-Policy": scripted_policy()}
