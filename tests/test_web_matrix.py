"""Who may call what: every route of the app, as its own route table lists them, called by
an anonymous visitor and by a person of each role, against the real database.

A route added without a row here fails the test, and so does a row whose route is gone:
deciding who may call a new route is part of adding it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from starlette.routing import Mount

from distributor.accounts.tokens import create_api_token
from distributor.acting import acting_info
from distributor.actors import Actor, Role
from distributor.runtime import Runtime
from distributor.web.app import create_app
from tests.support.web import (
    PEOPLE,
    csrf_in,
    log_in,
    people_fixture,  # noqa: F401 - fixture
    release_awaiting_approval,
    web_runtime_fixture,  # noqa: F401 - fixture
)

ANONYMOUS = "anonymous"
VIEWER, OFFICER, APPROVER, ADMIN = (
    Role.VIEWER.value,
    Role.PRESS_OFFICER.value,
    Role.APPROVER.value,
    Role.ADMIN.value,
)
CALLERS = (ANONYMOUS, VIEWER, OFFICER, APPROVER, ADMIN)


def by_caller(
    anonymous: int, viewer: int, officer: int, approver: int, admin: int
) -> dict[str, int]:
    return dict(zip(CALLERS, (anonymous, viewer, officer, approver, admin), strict=True))


def everyone(status: int) -> dict[str, int]:
    return by_caller(status, status, status, status, status)


def people_only(status: int, *, anonymous: int) -> dict[str, int]:
    return by_caller(anonymous, status, status, status, status)


# (method, route path) -> expected status by caller. Pages send an anonymous visitor to the
# login form (303); the API answers 401. A change by a role that may not make it is 403.
MATRIX: dict[tuple[str, str], dict[str, int]] = {
    # public
    ("GET", "/healthz"): everyone(200),
    ("HEAD", "/healthz"): everyone(200),
    ("GET", "/u/{token}"): everyone(200),
    ("POST", "/u/{token}"): everyone(200),
    ("GET", "/unsubscribe/{token}"): everyone(200),
    ("POST", "/unsubscribe/{token}"): everyone(200),
    ("GET", "/static"): everyone(200),
    ("GET", "/api/v1/openapi.json"): everyone(200),
    ("HEAD", "/api/v1/openapi.json"): everyone(200),
    ("GET", "/readyz"): everyone(200),
    ("HEAD", "/readyz"): everyone(200),
    ("GET", "/metrics"): everyone(200),
    # the public newsroom: nothing unpublished is shown; an unknown address is 404
    ("GET", "/news"): everyone(200),
    ("GET", "/news/feed.xml"): everyone(200),
    ("GET", "/news/{address}"): everyone(404),
    ("GET", "/news/{address}/files/{filename}"): everyone(404),
    ("GET", "/news/by/{address}"): everyone(404),
    ("GET", "/news/by/{address}/feed.xml"): everyone(404),
    ("GET", "/news/by/{address}/logo"): everyone(404),
    # dashboard pages
    ("GET", "/"): everyone(303),
    ("GET", "/login"): people_only(303, anonymous=200),
    ("POST", "/login"): everyone(401),  # a wrong password, whoever sends it
    ("POST", "/logout"): everyone(303),
    ("GET", "/releases"): people_only(200, anonymous=303),
    ("GET", "/releases/{release_id}"): people_only(200, anonymous=303),
    ("POST", "/releases/{release_id}/approve"): by_caller(303, 403, 403, 303, 303),
    # API
    ("GET", "/api/v1/me"): people_only(200, anonymous=401),
    ("GET", "/api/v1/releases"): people_only(200, anonymous=401),
    ("GET", "/api/v1/releases/{release_id}"): people_only(200, anonymous=401),
    ("POST", "/api/v1/releases/{release_id}/approve"): by_caller(401, 403, 403, 200, 200),
    ("GET", "/api/v1/sends/{send_id}"): people_only(200, anonymous=401),
    # API: writing releases and their embargoes; the API's POSTs carry {}
    ("POST", "/api/v1/releases"): by_caller(401, 403, 422, 422, 422),  # no headline
    ("PATCH", "/api/v1/releases/{release_id}"): by_caller(401, 403, 422, 422, 422),  # no change
    ("POST", "/api/v1/releases/{release_id}/schedule"): by_caller(401, 403, 422, 422, 422),
    ("POST", "/api/v1/releases/{release_id}/move"): by_caller(401, 403, 422, 422, 422),
    # unapproved: nothing of it may go out yet
    ("POST", "/api/v1/releases/{release_id}/lift"): by_caller(401, 403, 409, 409, 409),
    ("POST", "/api/v1/releases/{release_id}/cancel"): by_caller(401, 403, 200, 200, 200),
    # API: sends and their deliveries; pausing and resuming are an admin's (send 1 awaits approval)
    ("GET", "/api/v1/sends"): people_only(200, anonymous=401),
    ("GET", "/api/v1/sends/{send_id}/deliveries"): people_only(200, anonymous=401),
    ("POST", "/api/v1/sends/{send_id}/retry"): by_caller(401, 403, 200, 200, 200),  # none failed
    ("POST", "/api/v1/sends/{send_id}/pause"): by_caller(401, 403, 403, 403, 409),
    ("POST", "/api/v1/sends/{send_id}/resume"): by_caller(401, 403, 403, 403, 409),
    # API: contacts, lists, segments, suppressions; names and addresses left as placeholders
    ("GET", "/api/v1/contacts"): people_only(200, anonymous=401),
    ("GET", "/api/v1/contacts/{email:path}"): people_only(404, anonymous=401),
    ("POST", "/api/v1/contacts/import"): by_caller(401, 403, 422, 422, 422),  # no file
    ("GET", "/api/v1/outlets"): people_only(200, anonymous=401),
    ("GET", "/api/v1/lists"): people_only(200, anonymous=401),
    ("POST", "/api/v1/lists"): by_caller(401, 403, 422, 422, 422),  # no name
    ("GET", "/api/v1/lists/{name:path}/members"): people_only(404, anonymous=401),
    ("POST", "/api/v1/lists/{name:path}/members"): by_caller(401, 403, 422, 422, 422),
    ("POST", "/api/v1/lists/{name:path}/members/remove"): by_caller(401, 403, 422, 422, 422),
    ("DELETE", "/api/v1/lists/{name:path}"): by_caller(401, 403, 404, 404, 404),
    ("GET", "/api/v1/segments"): people_only(200, anonymous=401),
    ("GET", "/api/v1/segments/preview"): people_only(422, anonymous=401),  # no filter
    ("POST", "/api/v1/segments"): by_caller(401, 403, 422, 422, 422),  # no filter
    ("DELETE", "/api/v1/segments/{name:path}"): by_caller(401, 403, 404, 404, 404),
    ("GET", "/api/v1/suppressions"): people_only(200, anonymous=401),
    ("POST", "/api/v1/suppressions"): by_caller(401, 403, 422, 422, 422),  # no email
    ("DELETE", "/api/v1/suppressions/{email:path}"): by_caller(401, 403, 403, 403, 404),
    # the release editor: write, preview, test copy, audience and embargo
    ("GET", "/editor/new"): by_caller(303, 403, 200, 200, 200),
    ("POST", "/editor/new"): by_caller(303, 403, 422, 422, 422),  # an empty release
    ("POST", "/editor/preview"): by_caller(303, 403, 200, 200, 200),
    ("POST", "/editor/preview/html"): by_caller(303, 403, 200, 200, 200),
    ("POST", "/editor/test-send"): by_caller(303, 403, 422, 422, 422),  # empty: nothing sent
    ("GET", "/releases/{release_id}/edit"): by_caller(303, 403, 200, 200, 200),
    ("POST", "/releases/{release_id}/edit"): by_caller(303, 403, 422, 422, 422),
    ("GET", "/releases/{release_id}/preview"): people_only(200, anonymous=303),
    ("GET", "/releases/{release_id}/schedule"): by_caller(303, 403, 200, 200, 200),
    ("POST", "/releases/{release_id}/schedule"): by_caller(303, 403, 422, 422, 422),
    ("POST", "/releases/{release_id}/schedule/check"): by_caller(303, 403, 200, 200, 200),
    ("POST", "/releases/{release_id}/move"): by_caller(303, 403, 422, 422, 422),  # no time
    ("POST", "/releases/{release_id}/lift"): by_caller(303, 403, 200, 200, 200),  # confirm
    ("POST", "/releases/{release_id}/cancel"): by_caller(303, 403, 200, 200, 200),
    # admin pages; without confirmed=yes an admin's POST is sent to the confirmation page
    ("GET", "/admin"): by_caller(303, 403, 403, 403, 200),
    ("GET", "/admin/live"): by_caller(303, 403, 403, 403, 200),
    **{
        ("GET", f"/admin/sends/{{send_id}}/{action}"): by_caller(303, 403, 403, 403, 200)
        for action in ("pause", "resume", "retry", "cancel")
    },
    **{
        ("POST", f"/admin/sends/{{send_id}}/{action}"): by_caller(303, 403, 403, 403, 303)
        for action in ("pause", "resume", "retry", "cancel")
    },
    # contacts pages
    ("GET", "/contacts"): people_only(200, anonymous=303),
    ("GET", "/contacts/detail"): people_only(400, anonymous=303),  # no ?email=
    ("GET", "/contacts/edit"): by_caller(303, 403, 400, 400, 400),  # no ?email=
    ("POST", "/contacts/edit"): by_caller(303, 403, 400, 400, 400),  # no contact
    ("GET", "/contacts/outlets"): people_only(200, anonymous=303),
    ("GET", "/contacts/lists"): people_only(200, anonymous=303),
    ("POST", "/contacts/lists"): by_caller(303, 403, 400, 400, 400),  # no name
    ("GET", "/contacts/list"): people_only(400, anonymous=303),  # no ?name=
    ("POST", "/contacts/list/add"): by_caller(303, 403, 400, 400, 400),
    ("POST", "/contacts/list/remove"): by_caller(303, 403, 400, 400, 400),
    ("GET", "/contacts/list/delete"): by_caller(303, 403, 400, 400, 400),  # no ?name=
    ("POST", "/contacts/list/delete"): by_caller(303, 403, 400, 400, 400),  # no name
    ("GET", "/contacts/segments"): people_only(200, anonymous=303),
    ("GET", "/contacts/segments/preview"): people_only(200, anonymous=303),
    ("POST", "/contacts/segments"): by_caller(303, 403, 400, 400, 400),  # no filter
    ("GET", "/contacts/segments/delete"): by_caller(303, 403, 400, 400, 400),  # no ?name=
    ("POST", "/contacts/segments/delete"): by_caller(303, 403, 400, 400, 400),  # no name
    ("GET", "/contacts/import"): by_caller(303, 403, 200, 200, 200),
    ("POST", "/contacts/import"): by_caller(303, 403, 400, 400, 400),  # no file
    ("POST", "/contacts/import/confirm"): by_caller(303, 403, 400, 400, 400),  # no token
    ("GET", "/contacts/suppressions"): people_only(200, anonymous=303),
    ("POST", "/contacts/suppressions"): by_caller(303, 403, 400, 400, 400),  # no email
    ("GET", "/contacts/suppressions/remove"): by_caller(303, 403, 403, 403, 400),
    ("POST", "/contacts/suppressions/remove"): by_caller(303, 403, 403, 403, 400),
    ("GET", "/contacts/gdpr"): by_caller(303, 403, 403, 403, 200),
    ("POST", "/contacts/gdpr/export"): by_caller(303, 403, 403, 403, 400),
    ("POST", "/contacts/gdpr/erase"): by_caller(303, 403, 403, 403, 400),
    ("POST", "/contacts/gdpr/erase/confirm"): by_caller(303, 403, 403, 403, 400),
    # a release's report
    ("GET", "/releases/{release_id}/report"): people_only(200, anonymous=303),
    ("GET", "/releases/{release_id}/report/live"): people_only(200, anonymous=303),
    ("GET", "/releases/{release_id}/report/recipient"): people_only(200, anonymous=303),
    ("GET", "/releases/{release_id}/report/deliveries.csv"): people_only(200, anonymous=303),
    ("GET", "/releases/{release_id}/report/retry"): by_caller(303, 403, 400, 400, 400),
    ("POST", "/releases/{release_id}/report/retry"): by_caller(303, 403, 400, 400, 400),
}


def route_table(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the app answers, from its own routes."""
    found = set()
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, Mount):
            found.add(("GET", str(route.path)))
        elif route.methods and route.path:
            found.update((method, route.path) for method in route.methods)
        else:
            pytest.fail(f"a route of a kind the matrix does not know: {route!r}")
    return found


@dataclass
class World:
    """What the requests name: a release and a send, a release awaiting approval for each
    approving route and caller (so that no approval leaves the next caller nothing to do),
    an unsubscribe token, and an API token for each person."""

    runtime: Runtime
    app: FastAPI
    release_id: int
    approvals: dict[tuple[str, str], int]
    unsubscribe_token: str
    api_tokens: dict[str, str]


@pytest.fixture
def world(web_runtime: Runtime, people: dict[Role, str]) -> Iterator[World]:
    approvals = {
        (path, caller): release_awaiting_approval(web_runtime)
        for (_, path) in MATRIX
        # Cancelling through the API leaves nothing to cancel, nor to lift on the page.
        if path.endswith("/approve") or path == "/api/v1/releases/{release_id}/cancel"
        for caller in CALLERS
    }
    tokens = {}
    admin = Actor("tests", Role.ADMIN)
    with web_runtime.sessions(info=acting_info(admin)) as session, session.begin():
        for role, email in people.items():
            issued = create_api_token(session, email=email, now=datetime.now(UTC))
            tokens[role.value] = issued.secret
    unsubscribe = web_runtime.unsubscribe_links.tokens.issue(
        email="jo@news.example.com", send_id=1, issued_at=int(datetime.now(UTC).timestamp())
    )
    yield World(
        runtime=web_runtime,
        app=create_app(web_runtime),
        release_id=min(approvals.values()),
        approvals=approvals,
        unsubscribe_token=unsubscribe,
        api_tokens=tokens,
    )


def concrete_path(path: str, caller: str, world: World) -> str:
    if path == "/static":
        return "/static/app.css"
    release = world.approvals.get((path, caller), world.release_id)
    return (
        path.replace("{token}", world.unsubscribe_token)
        .replace("{release_id}", str(release))
        .replace("{send_id}", "1")
    )


def call(world: World, method: str, path: str, caller: str) -> int:
    """The route called by `caller` as they would: a browser with its login and the form's
    CSRF token for pages, the person's API token for the API."""
    client = TestClient(world.app, follow_redirects=False)
    url = concrete_path(path, caller, world)
    api = path.startswith("/api/v1/") and not path.endswith("openapi.json")
    headers: dict[str, str] = {}
    options: dict[str, Any] = {}
    if api:
        if caller != ANONYMOUS:
            headers["Authorization"] = f"Bearer {world.api_tokens[caller]}"
        if method == "POST":
            options["json"] = {}
    elif method == "POST" and not path.startswith(("/u/", "/unsubscribe/")):
        if caller == ANONYMOUS:
            token = csrf_in(client.get("/login").text)
        else:
            token = log_in(client, PEOPLE[Role(caller)])
        options["data"] = {"csrf_token": token}
        if path == "/login":
            options["data"] |= {"email": f"{caller}-nobody@example.org", "password": "wrong"}
    elif caller != ANONYMOUS:
        log_in(client, PEOPLE[Role(caller)])
    return client.request(method, url, headers=headers, **options).status_code


def test_every_route_has_a_row_and_every_row_a_route(web_runtime: Runtime) -> None:
    routes = route_table(create_app(web_runtime))
    assert routes - MATRIX.keys() == set(), "routes without a row: say who may call them"
    assert MATRIX.keys() - routes == set(), "rows for routes that no longer exist"


def test_each_caller_gets_the_expected_status_from_every_route(world: World) -> None:
    unexpected = []
    for (method, path), expected in sorted(MATRIX.items()):
        for caller in CALLERS:
            status = call(world, method, path, caller)
            if status != expected[caller]:
                unexpected.append(f"{method} {path} as {caller}: {status}, not {expected[caller]}")
    assert unexpected == []
