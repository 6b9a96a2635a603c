"""Logging in to the web app and calling its API: sessions, CSRF, throttling and tokens,
against the real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from distributor.accounts import throttle
from distributor.accounts.tokens import create_api_token
from distributor.accounts.users import disable_user
from distributor.acting import acting_info
from distributor.actors import Actor, Role
from distributor.clock import ManualClock
from distributor.models import AuditEntry, Send
from distributor.runtime import Runtime
from distributor.states import SendState
from distributor.web.app import create_app
from distributor.web.problems import PROBLEM_MEDIA_TYPE
from tests.support.web import (
    PASSWORD,
    PEOPLE,
    add_account,
    client_fixture,  # noqa: F401 - fixture
    csrf_in,
    log_in,
    people_fixture,  # noqa: F401 - fixture
    release_awaiting_approval,
    web_runtime_fixture,  # noqa: F401 - fixture
    web_settings,
)

OPERATOR = Actor("Operator", Role.ADMIN)
APPROVER = PEOPLE[Role.APPROVER]
VIEWER = PEOPLE[Role.VIEWER]


def run_users(
    database_url: str, tmp_path: Path, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """`distributor users ARGS` on the test's database, as the operator "Operator"."""
    return subprocess.run(
        [sys.executable, "-m", "distributor", "users", *args],
        env={
            "DISTRIBUTOR_DATABASE_URL": database_url,
            "DISTRIBUTOR_DATA_DIR": str(tmp_path),
            "DISTRIBUTOR_ACTOR": "Operator",
            "PATH": "/usr/bin:/bin",
        },
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def disable(runtime: Runtime, email: str) -> None:
    with runtime.sessions(info=acting_info(OPERATOR)) as session, session.begin():
        disable_user(session, email=email, now=datetime.now(UTC))


def login_form(client: TestClient) -> str:
    return csrf_in(client.get("/login").text)


def post_login(client: TestClient, email: str, password: str) -> int:
    token = login_form(client)
    response = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )
    return response.status_code


# --- logging in and out ---------------------------------------------------------------------


def test_a_person_logs_in_sees_the_releases_and_logs_out(
    client: TestClient, people: dict[Role, str]
) -> None:
    assert client.get("/releases").headers["location"] == "/login?next=/releases"

    token = login_form(client)
    response = client.post(
        "/login",
        data={
            "email": "ADA@example.org",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "/releases?page=1",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/releases?page=1"
    page = client.get("/releases")
    assert page.status_code == 200 and APPROVER in page.text and "approver" in page.text

    logout_token = csrf_in(page.text)
    assert logout_token != token, "logging in must start a new session with a new token"
    response = client.post("/logout", data={"csrf_token": logout_token})
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert client.get("/releases").status_code == 303


def test_a_wrong_password_an_unknown_address_and_a_disabled_account_read_the_same(
    client: TestClient, people: dict[Role, str], web_runtime: Runtime
) -> None:
    disable(web_runtime, VIEWER)
    answers = [
        client.post(
            "/login",
            data={"email": email, "password": password, "csrf_token": login_form(client)},
        )
        for email, password in [
            (APPROVER, "not the password"),
            ("nobody@example.org", PASSWORD),
            (VIEWER, PASSWORD),  # the right password of a disabled account
        ]
    ]
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert all("The address or the password is wrong." in a.text for a in answers)
    assert client.get("/releases").status_code == 303


def test_after_login_the_page_asked_for_opens_but_never_another_site(
    client: TestClient, people: dict[Role, str]
) -> None:
    for asked, landed in [
        ("/releases?page=2", "/releases?page=2"),
        ("https://evil.example/", "/releases"),
        ("//evil.example/", "/releases"),
        ("/\\evil.example", "/releases"),
    ]:
        client.cookies.clear()
        token = login_form(client)
        response = client.post(
            "/login",
            data={"email": APPROVER, "password": PASSWORD, "csrf_token": token, "next": asked},
        )
        assert response.headers["location"] == landed


def test_logging_out_ends_the_session_even_for_a_copy_of_its_cookie(
    client: TestClient, people: dict[Role, str], web_runtime: Runtime
) -> None:
    token = log_in(client, APPROVER)
    stolen = dict(client.cookies)
    client.post("/logout", data={"csrf_token": token})

    with TestClient(create_app(web_runtime), follow_redirects=False) as thief:
        thief.cookies.update(stolen)
        assert thief.get("/releases").status_code == 303


def test_a_disabled_account_is_logged_out_at_its_next_request(
    client: TestClient, people: dict[Role, str], web_runtime: Runtime
) -> None:
    log_in(client, APPROVER)
    assert client.get("/releases").status_code == 200
    disable(web_runtime, APPROVER)
    assert client.get("/releases").status_code == 303


# --- the session cookie -----------------------------------------------------------------------


def session_cookie(response_headers: list[str]) -> str:
    (cookie,) = [h for h in response_headers if "distributor_session=" in h]
    return cookie


def test_the_session_cookie_is_httponly_and_samesite_lax_and_not_secure_over_http(
    client: TestClient, people: dict[Role, str]
) -> None:
    page = client.get("/login")
    cookie = session_cookie(page.headers.get_list("set-cookie")).lower()
    assert cookie.startswith("distributor_session=")
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert "secure" not in cookie
    assert "max-age=43200" in cookie  # twelve hours


def test_over_https_the_cookie_is_secure_with_the_host_prefix(
    database_url: str, tmp_path: Path, people: dict[Role, str]
) -> None:
    runtime = Runtime(
        web_settings(database_url, tmp_path, public_base_url="https://press.example.org")
    )
    try:
        app = create_app(runtime)
        with TestClient(app, base_url="https://testserver", follow_redirects=False) as https:
            cookie = session_cookie(https.get("/login").headers.get_list("set-cookie")).lower()
            assert cookie.startswith("__host-distributor_session=")
            assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie
            log_in(https, APPROVER)
            assert https.get("/releases").status_code == 200
            assert "max-age=31536000" in https.get("/healthz").headers["strict-transport-security"]
    finally:
        runtime.close()


def test_a_cookie_signed_with_another_key_is_ignored(
    client: TestClient, people: dict[Role, str], database_url: str, tmp_path: Path
) -> None:
    log_in(client, APPROVER)
    cookies = dict(client.cookies)
    other = Runtime(
        web_settings(database_url, tmp_path).model_copy(update={"secret_key": "x" * 40})
    )
    try:
        with TestClient(create_app(other), follow_redirects=False) as elsewhere:
            elsewhere.cookies.update(cookies)
            assert elsewhere.get("/releases").status_code == 303
    finally:
        other.close()


# --- CSRF -----------------------------------------------------------------------------------


def test_the_login_form_is_refused_without_its_token(
    client: TestClient, people: dict[Role, str]
) -> None:
    login_form(client)
    for data in (
        {"email": APPROVER, "password": PASSWORD},
        {"email": APPROVER, "password": PASSWORD, "csrf_token": "forged"},
    ):
        response = client.post("/login", data=data)
        assert response.status_code == 403
        assert "reload the page" in response.text
    assert client.get("/releases").status_code == 303


def test_a_form_without_the_session_token_changes_nothing(
    client: TestClient, people: dict[Role, str], web_runtime: Runtime
) -> None:
    release_id = release_awaiting_approval(web_runtime)
    token = log_in(client, APPROVER)

    for data in ({}, {"csrf_token": "forged"}):
        refused = client.post(f"/releases/{release_id}/approve", data=data)
        assert refused.status_code == 403
    assert client.post("/logout", data={}).status_code == 403
    assert client.get("/releases").status_code == 200  # still logged in
    with web_runtime.sessions() as session:
        assert session.scalar(select(Send.state)) is SendState.AWAITING_APPROVAL

    done = client.post(f"/releases/{release_id}/approve", data={"csrf_token": token, "note": "ok"})
    assert done.status_code == 303
    assert "Approved version 1" in client.get(f"/releases/{release_id}").text
    with web_runtime.sessions() as session:
        assert session.scalar(select(Send.state)) is SendState.SCHEDULED


def test_the_api_with_the_session_cookie_needs_the_csrf_header_for_a_change(
    client: TestClient, people: dict[Role, str], web_runtime: Runtime
) -> None:
    release_id = release_awaiting_approval(web_runtime)
    token = log_in(client, APPROVER)
    assert client.get("/api/v1/releases").status_code == 200  # reading needs no token

    refused = client.post(f"/api/v1/releases/{release_id}/approve", json={})
    assert refused.status_code == 403
    assert refused.headers["content-type"] == PROBLEM_MEDIA_TYPE
    done = client.post(
        f"/api/v1/releases/{release_id}/approve", json={}, headers={"X-CSRF-Token": token}
    )
    assert done.status_code == 200, done.text


# --- throttling ------------------------------------------------------------------------------


def test_five_failures_lock_the_account_for_fifteen_minutes(
    database_url: str, tmp_path: Path, people: dict[Role, str]
) -> None:
    clock = ManualClock(datetime.now(UTC))
    runtime = Runtime(web_settings(database_url, tmp_path), clock=clock)
    try:
        with TestClient(create_app(runtime), follow_redirects=False) as browser:
            for _ in range(throttle.ACCOUNT_FAILURES):
                assert post_login(browser, APPROVER, "a wrong password") == 401
            # Locked: even the right password is not checked, from any address.
            locked = browser.post(
                "/login",
                data={"email": APPROVER, "password": PASSWORD, "csrf_token": login_form(browser)},
            )
            assert locked.status_code == 429
            assert "Too many failed logins for this account" in locked.text
            assert post_login(browser, VIEWER, PASSWORD) == 303  # other accounts are not
            browser.cookies.clear()

            clock.advance(throttle.WINDOW.total_seconds() + 1)
            assert post_login(browser, APPROVER, PASSWORD) == 303
    finally:
        runtime.close()


def test_a_good_login_starts_the_accounts_count_again(
    client: TestClient, people: dict[Role, str]
) -> None:
    for _ in range(throttle.ACCOUNT_FAILURES - 1):
        assert post_login(client, APPROVER, "a wrong password") == 401
    assert post_login(client, APPROVER, PASSWORD) == 303
    client.cookies.clear()
    for _ in range(throttle.ACCOUNT_FAILURES - 1):
        assert post_login(client, APPROVER, "a wrong password") == 401
    assert post_login(client, APPROVER, PASSWORD) == 303


def test_one_address_trying_many_accounts_is_locked_out(
    client: TestClient, people: dict[Role, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fewer failures than in production, to keep the test quick; the rule is the same.
    monkeypatch.setattr(throttle, "CLIENT_FAILURES", 6)
    for n in range(6):
        assert post_login(client, f"guess{n}@example.org", "a wrong password") == 401
    locked = client.post(
        "/login",
        data={"email": APPROVER, "password": PASSWORD, "csrf_token": login_form(client)},
    )
    assert locked.status_code == 429
    assert "your network address" in locked.text


def test_failures_are_kept_in_the_database_for_every_web_process(
    database_url: str, tmp_path: Path, people: dict[Role, str]
) -> None:
    apps = [Runtime(web_settings(database_url, tmp_path)) for _ in range(2)]
    try:
        first, second = (TestClient(create_app(rt), follow_redirects=False) for rt in apps)
        for n in range(throttle.ACCOUNT_FAILURES):
            browser = first if n % 2 else second
            assert post_login(browser, APPROVER, "a wrong password") == 401
        assert post_login(first, APPROVER, PASSWORD) == 429
        assert post_login(second, APPROVER, PASSWORD) == 429
    finally:
        for rt in apps:
            rt.close()


# --- API tokens ------------------------------------------------------------------------------


def issue_token(runtime: Runtime, email: str) -> str:
    with runtime.sessions(info=acting_info(OPERATOR)) as session, session.begin():
        return create_api_token(session, email=email, now=datetime.now(UTC)).secret


def test_an_api_token_authenticates_as_its_account(
    client: TestClient,
    people: dict[Role, str],
    web_runtime: Runtime,
) -> None:
    token = issue_token(web_runtime, APPROVER)
    assert token.startswith("dist_")
    authorised = bearer(token)

    me = client.get("/api/v1/me", headers=authorised)
    assert me.status_code == 200
    assert me.json() == {
        "email": APPROVER,
        "display_name": "",
        "role": "approver",
        "time_zone": "UTC",
    }
    # A token needs no CSRF token: no browser sends it by itself.
    release_id = release_awaiting_approval(web_runtime)
    approved = client.post(
        f"/api/v1/releases/{release_id}/approve", headers=authorised, json={"note": "read it"}
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["send_ids"] == [1]

    with web_runtime.sessions() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "send.approved")
        ).one()
    assert (entry.actor, entry.actor_role, entry.detail) == (APPROVER, "approver", "read it")


def test_a_token_is_stored_only_as_its_hash(people: dict[Role, str], web_runtime: Runtime) -> None:
    token = issue_token(web_runtime, APPROVER)
    with web_runtime.engine.connect() as connection:
        dump = "\n".join(
            str(row)
            for table in ("api_tokens", "audit_entries")
            for row in connection.exec_driver_sql(f"SELECT * FROM {table}")
        )
    assert token not in dump and token.removeprefix("dist_") not in dump


@pytest.mark.parametrize(
    "header",
    [
        "Bearer dist_not-a-real-token",
        "Bearer ",
        "Basic YWRhOnBhc3N3b3Jk",
        "dist_no-scheme",
    ],
)
def test_a_bad_token_is_refused_with_401_and_a_problem(
    client: TestClient, people: dict[Role, str], header: str
) -> None:
    response = client.get("/api/v1/releases", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.headers["www-authenticate"] == "Bearer"
    problem = response.json()
    assert problem["status"] == 401 and problem["title"] == "Unauthorized"
    assert "Bearer" in problem["detail"] or "not valid" in problem["detail"]


def test_no_credentials_at_all_is_401_from_the_api(client: TestClient) -> None:
    response = client.get("/api/v1/releases")
    assert response.status_code == 401
    assert response.json()["detail"] == "log in first"


def test_the_token_of_a_disabled_account_stops_working(
    client: TestClient, people: dict[Role, str], web_runtime: Runtime
) -> None:
    token = issue_token(web_runtime, VIEWER)
    authorised = bearer(token)
    assert client.get("/api/v1/releases", headers=authorised).status_code == 200
    disable(web_runtime, VIEWER)
    assert client.get("/api/v1/releases", headers=authorised).status_code == 401


def test_a_viewer_is_refused_any_change_before_the_core_is_asked(
    client: TestClient,
    people: dict[Role, str],
    web_runtime: Runtime,
) -> None:
    release_id = release_awaiting_approval(web_runtime)
    token = issue_token(web_runtime, VIEWER)
    response = client.post(
        f"/api/v1/releases/{release_id}/approve", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 403
    assert response.json()["detail"] == (
        f"{VIEWER} is a viewer, and only an approver or an admin may do this"
    )
    with web_runtime.sessions() as session:
        assert session.scalar(select(Send.state)) is SendState.AWAITING_APPROVAL


# --- accounts from the command line ----------------------------------------------------------


def test_users_are_created_listed_and_disabled_from_the_command_line(
    client: TestClient, database_url: str, tmp_path: Path, web_runtime: Runtime
) -> None:
    created = run_users(
        database_url,
        tmp_path,
        "create",
        "Zoe@Example.org",
        "--role",
        "press_officer",
        "--name",
        "Zoë",
        "--tz",
        "Europe/Paris",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert created.returncode == 0, created.stderr
    assert created.stdout == "created press_officer account zoe@example.org\n"
    assert post_login(client, "zoe@example.org", PASSWORD) == 303

    short = run_users(
        database_url,
        tmp_path,
        "create",
        "yan@example.org",
        "--role",
        "viewer",
        "--password-stdin",
        stdin="short\n",
    )
    assert short.returncode == 1 and "at least 12" in short.stderr

    token = run_users(database_url, tmp_path, "token", "zoe@example.org", "--label", "export")
    assert token.returncode == 0 and "shown this once" in token.stderr
    assert client.get("/api/v1/me", headers=bearer(token.stdout.strip())).status_code == 200
    assert run_users(database_url, tmp_path, "disable", "zoe@example.org").returncode == 0
    listed = run_users(database_url, tmp_path, "list", "--json")
    (zoe,) = json.loads(listed.stdout)
    assert (zoe["email"], zoe["role"], zoe["time_zone"]) == (
        "zoe@example.org",
        "press_officer",
        "Europe/Paris",
    )
    assert zoe["disabled_at"] is not None

    with web_runtime.sessions() as session:
        trail = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [(e.action, e.actor, e.actor_role) for e in trail] == [
        ("user.created", "Operator", "admin"),
        ("user.token_created", "Operator", "admin"),
        ("user.disabled", "Operator", "admin"),
    ]
    with web_runtime.engine.connect() as connection:
        hashes = [row[0] for row in connection.exec_driver_sql("SELECT password_hash FROM users")]
    assert hashes and all(h.startswith("$argon2id$") and PASSWORD not in h for h in hashes)


def test_an_approval_through_the_page_names_the_person_in_the_audit_trail(
    client: TestClient, people: dict[Role, str], web_runtime: Runtime
) -> None:
    release_id = release_awaiting_approval(web_runtime)
    token = log_in(client, PEOPLE[Role.ADMIN])
    response = client.post(f"/releases/{release_id}/approve", data={"csrf_token": token})
    assert response.status_code == 303
    with web_runtime.sessions() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "send.approved")
        ).one()
    assert (entry.actor, entry.actor_role) == (PEOPLE[Role.ADMIN], "admin")
    # The runtime the app shares between requests still acts for nobody in particular.
    assert web_runtime.actor.role is Role.SYSTEM


def test_the_person_who_scheduled_a_send_may_not_approve_it(
    client: TestClient, people: dict[Role, str], web_runtime: Runtime
) -> None:
    release_id = release_awaiting_approval(web_runtime, scheduled_by=APPROVER)
    token = log_in(client, APPROVER)
    response = client.post(f"/releases/{release_id}/approve", data={"csrf_token": token})
    assert response.status_code == 403
    assert f"{APPROVER} scheduled send 1, so another person must approve it" in response.text


def test_an_account_added_later_can_log_in(client: TestClient, web_runtime: Runtime) -> None:
    add_account(web_runtime, "late@example.org", Role.VIEWER)
    assert post_login(client, "late@example.org", PASSWORD) == 303
