"""Every API operation called with data generated from the API's own OpenAPI schema, by an
admin's API token, against a database holding a release awaiting approval with its send,
contacts, a list and a segment: the schema's examples, then its boundary values, then
random valid and invalid data, then sequences of calls. No answer may be a server error,
and every answer must be one the schema declares: its status, its media type, its body."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from schemathesis.engine import Status, events, from_schema

from distributor.acting import acting_info
from distributor.actors import Actor, Role
from distributor.migrate import upgrade
from distributor.runtime import Runtime
from distributor.segments.store import save_segment
from distributor.web.app import create_app
from tests.support.web import (
    PEOPLE,
    add_account,
    bearer_for,
    now,
    release_awaiting_approval,
    web_settings,
)

CHECKS = [
    "not_a_server_error",
    "response_schema_conformance",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
]
# Random cases for each operation; raise it (API_FUZZ_EXAMPLES=200) for a deeper run.
EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "15"))


@pytest.fixture
def api_runtime(tmp_path: Path) -> Iterator[Runtime]:
    """A runtime on SQLite with something for each operation to find."""
    url = f"sqlite:///{tmp_path / 'api.sqlite3'}"
    upgrade(url)
    runtime = Runtime(web_settings(url, tmp_path))
    for role, email in PEOPLE.items():
        add_account(runtime, email, role)
    release_awaiting_approval(runtime)
    officer = Actor(PEOPLE[Role.PRESS_OFFICER], Role.PRESS_OFFICER)
    with runtime.sessions(info=acting_info(officer)) as session, session.begin():
        save_segment(session, name="Crime", filter_text='beat = "crime"', actor=officer, now=now())
    yield runtime
    runtime.close()


def failures_of(event: events.EngineEvent) -> list[str]:
    """What went wrong in one event of the run, each named with its operation."""
    if isinstance(event, events.ScenarioFinished) and event.status is Status.FAILURE:
        return [
            f"{event.label} ({event.phase.value}): {check.name}: {check.failure_info.failure}"
            for checks in event.recorder.checks.values()
            for check in checks
            if check.status is Status.FAILURE and check.failure_info is not None
        ] or [f"{event.label} ({event.phase.value}): failed"]
    if isinstance(event, events.NonFatalError):
        return [f"{event.label}: {event.value!r}"]
    if isinstance(event, events.FatalError):
        return [f"the run stopped: {event.exception!r}"]
    return []


@pytest.mark.slow
def test_every_operation_answers_as_its_schema_says(api_runtime: Runtime) -> None:
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", create_app(api_runtime))
    schema.config.update(headers=bearer_for(api_runtime, PEOPLE[Role.ADMIN]))
    schema.config.checks.update(included_check_names=CHECKS)
    schema.config.generation.update(max_examples=EXAMPLES)

    failed: list[str] = []
    scenarios = 0
    for event in from_schema(schema).execute():
        failed.extend(failures_of(event))
        scenarios += isinstance(event, events.ScenarioFinished)

    assert not failed, "\n\n".join(failed)
    operations = sum(len(methods) for methods in schema.raw_schema["paths"].values())
    assert scenarios >= 2 * operations, "boundary values and random data for each operation"
