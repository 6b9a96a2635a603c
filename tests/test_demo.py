"""`distributor demo` runs the whole flow on embedded defaults, reports honestly, and says
how to look at the result in a browser, with an account to log in with."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from distributor.accounts.login import log_in
from distributor.demo import DEMO_ACCOUNT, run_demo
from distributor.mailcatcher import read_arrivals
from distributor.runtime import Runtime
from distributor.settings import Settings
from distributor.web.app import create_app

pytestmark = pytest.mark.slow


def test_demo_delivers_to_everyone_after_the_embargo_then_shows_the_way_in(
    tmp_path: Path,
) -> None:
    lines: list[str] = []
    data_dir = tmp_path / "demo"
    ok = run_demo(contacts=40, lead_seconds=3, workers=1, echo=lines.append, data_dir=data_dir)
    output = "\n".join(lines)
    assert ok, output
    assert "delivered 40 of 40" in output
    assert "0 before the embargo, 0 duplicate(s)" in output
    outbox = data_dir / "outbox"
    assert len(list(outbox.glob("*.eml"))) == 40
    assert len({a.recipient for a in read_arrivals(outbox)}) == 40

    # The way to the browser: the command, the address and a working account
    assert re.search(rf"DISTRIBUTOR_DATA_DIR={re.escape(str(data_dir))} \S*distributor up", output)
    found = re.search(
        rf"http://127.0.0.1:8000/ +log in as {re.escape(DEMO_ACCOUNT)}, password (\S+)", output
    )
    assert found, output
    runtime = Runtime(Settings(data_dir=data_dir, database_url=""))
    try:
        with runtime.sessions.begin() as session:
            login = log_in(
                session,
                email=DEMO_ACCOUNT,
                password=found.group(1),
                client="127.0.0.1",
                now=datetime.now(UTC),
            )
        assert login.account is not None
        # and the released release is on the newsroom
        with TestClient(create_app(runtime)) as client:
            assert "SafeLives welcomes progress report" in client.get("/news").text
    finally:
        runtime.close()
