"""The FastAPI app: built from a Runtime, so that everything it uses is passed in."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from distributor.runtime import Runtime
from distributor.web import (
    admin,
    api,
    contacts_pages,
    dashboard,
    editor,
    health,
    newsroom,
    public,
    report,
)
from distributor.web.access_log import AccessLog
from distributor.web.pages import STATIC_DIR, Pages
from distributor.web.problems import ErrorBoundary, document_problems, install_error_handlers
from distributor.web.security import SecurityHeaders
from distributor.web.sessions import add_session_middleware, served_over_https

TITLE = "distributor"
DESCRIPTION = (
    "Press releases under embargo: the releases, their sends and their approval. "
    "Authenticate with `Authorization: Bearer TOKEN` (`distributor users token EMAIL`). "
    "Errors are RFC 9457 problem details naming the field at fault."
)


def create_app(runtime: Runtime) -> FastAPI:
    """The whole web app for one runtime: the API, the dashboard and the public pages.

    The runtime's own actor is never changed: each request's sessions act for its caller.
    """
    app = FastAPI(
        title=TITLE,
        description=DESCRIPTION,
        version="1",
        openapi_url=f"{api.API_PREFIX}/openapi.json",
        # The interactive docs load scripts from elsewhere, which the CSP refuses.
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.pages = Pages(site_name=runtime.settings.from_name)
    install_error_handlers(app)
    document_problems(app)
    app.include_router(public.router)
    app.include_router(dashboard.router)
    app.include_router(api.router)
    app.include_router(health.router)
    app.include_router(editor.router)
    app.include_router(report.router)
    app.include_router(contacts_pages.router)
    app.include_router(admin.router)
    app.include_router(newsroom.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # Added innermost first: the boundary sits inside the headers, the log outside all.
    app.add_middleware(ErrorBoundary)
    add_session_middleware(app, runtime.settings)
    app.add_middleware(SecurityHeaders, https=served_over_https(runtime.settings))
    app.add_middleware(AccessLog)
    return app
