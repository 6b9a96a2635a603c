"""Security headers on every response.

The pages load one stylesheet from /static and no script at all, so the policy allows
exactly that; a page that needs more (an iframe for a preview, a script for live counts)
adds its source here, not an 'unsafe-inline'.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = {
    "default-src": "'none'",
    "style-src": "'self'",
    # data: for the empty favicon the layout declares, so browsers ask for no other.
    "img-src": "'self' data:",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
}
STATIC_PREFIX = "/static/"
HSTS_SECONDS = 365 * 24 * 3600


def csp_header() -> str:
    return "; ".join(f"{name} {value}" for name, value in CONTENT_SECURITY_POLICY.items())


def common_headers(*, https: bool) -> list[tuple[str, str]]:
    headers = [
        ("Content-Security-Policy", csp_header()),
        ("X-Content-Type-Options", "nosniff"),
        # Unsubscribe links carry a token in their path: never hand it to another site.
        ("Referrer-Policy", "no-referrer"),
        ("X-Frame-Options", "DENY"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
        ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()"),
    ]
    if https:
        headers.append(("Strict-Transport-Security", f"max-age={HSTS_SECONDS}"))
    return headers


class SecurityHeaders:
    """Adds the headers to every response (a route may set its own values first), and
    `Cache-Control: no-store` to everything but the static files: pages and API answers
    are personal, and a shared cache must not keep them."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.headers = common_headers(https=https)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith(STATIC_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers:
                    headers.setdefault(name, value)
                if not static:
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)
