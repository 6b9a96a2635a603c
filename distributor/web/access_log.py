"""One log line a request, naming the route rather than the path.

A path can hold a secret (the token of an unsubscribe link) and a query string can hold
anything, so the line names the route's pattern, `/u/{token}`, and never the values in it.
Uvicorn's own access log, which prints the path, is turned off by `distributor web`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("distributor.web.access")


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def watch(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            route = getattr(scope.get("route"), "path", None) or "(no route)"
            log.info(
                "%s %s %d %.1f ms",
                scope.get("method", "?"),
                route,
                status,
                (time.perf_counter() - started) * 1000,
            )
