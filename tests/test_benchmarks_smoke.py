"""The benchmark harness, end to end at a tiny size, against the real services."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.cli import main
from benchmarks.recovery import owner_pid
from benchmarks.report import KEEP_MARKER, REQUIRED_ROWS
from benchmarks.sink import DUMP_MARK, Copy, dumped_copies
from tests.support.services import (
    POSTGRES_ADMIN_URL,
    REDIS_URL,
    postgres_available,
    redis_available,
    require,
)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
def test_quick_benchmark_reports_every_row_and_nothing_early(tmp_path: Path) -> None:
    # Given the services the harness needs
    require(postgres_available(), "PostgreSQL")
    require(redis_available(), "Redis")
    output = tmp_path / "benchmarks.md"
    output.write_text(f"old figures\n{KEEP_MARKER}\nhand-written notes\n", encoding="utf-8")
    # When the harness runs in quick mode at a tiny size
    status = main(
        [
            "--quick",
            "--sizes=200",
            "--naive-size=50",
            "--import-rows=200",
            "--build-count=200",
            "--no-profile",
            "--settle=0",
            "--attempts=1",
            "--lead=3.5",
            "--arm-lead=2",
            "--recovery-size=300",
            "--recovery-lease=3",
            "--relay-rtt-ms=0,20",
            "--relay-size=200",
            # The DKIM and rate-limit sections have a test of their own, run alongside.
            "--dkim=none",
            "--no-rate-limit",
            f"--postgres-url={POSTGRES_ADMIN_URL}",
            f"--redis-url={REDIS_URL}",
            f"--output={output}",
            f"--raw-dir={tmp_path / 'raw'}",
        ]
    )
    # Then every message went, none early, and the report has every row
    assert status == 0
    text = output.read_text(encoding="utf-8")
    missing = [row for row in REQUIRED_ROWS if row not in text]
    assert missing == [], f"the report lacks {missing}"
    assert "old figures" not in text
    assert text.endswith(f"{KEEP_MARKER}\nhand-written notes\n")
    results = json.loads((tmp_path / "raw" / "results.json").read_text(encoding="utf-8"))
    (ours,) = results["ours"]
    assert ours["figures"]["sent"] == ours["figures"]["recipients"] == 200
    assert ours["figures"]["early"] == 0
    assert ours["figures"]["claimed_early"] == 0
    assert ours["smtp"]["messages"] == 200
    assert results["naive"]["figures"]["sent"] == 50
    assert results["naive"]["figures"]["early"] == 0
    assert results["naive"]["smtp"]["sessions"] == 50
    assert results["ratio"] > 0
    assert any(m["role"] == "worker child" and m["peak_kib"] for m in ours["memory"])
    assert ours["smtp_before_embargo"] == 0
    # And a worker killed mid-send lost nothing, and sent again at most the one message per
    # relay connection whose acceptance it had not yet recorded
    recovery = results["recovery"]
    victim = recovery["victim"]
    assert victim is not None, recovery["notes"]
    assert recovery["lease_seconds"] == 3
    assert recovery["run"]["figures"]["sent"] == 300
    assert recovery["lost"] == 0
    assert recovery["missing"] == 0
    assert victim["connections"] >= 1
    assert recovery["duplicates"] <= victim["connections"]
    assert recovery["same_message_id"] in (None, True)
    assert recovery["early"] == 0
    assert recovery["kill_to_last_s"] > 0
    # And the same send to a relay 20 ms away went whole, nothing early, in about one round
    # trip a message per connection
    (far,) = results["relay_runs"]
    assert far["relay_rtt_ms"] == 20
    assert far["figures"]["sent"] == 200
    assert far["figures"]["early"] == 0
    assert far["connections_used"] >= 1
    assert far["round_trips"] <= 2.5 * 200
    assert "## A relay far away" in text


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
def test_quick_benchmark_of_dkim_and_the_rate_limiter(tmp_path: Path) -> None:
    # Given the services the harness needs
    require(postgres_available(), "PostgreSQL")
    require(redis_available(), "Redis")
    output = tmp_path / "benchmarks.md"
    # When only the DKIM-signed sends and the rate-limited sends run, at a tiny size
    status = main(
        [
            "--quick",
            "--sizes=200",
            "--skip-naive",
            "--skip-components",
            "--skip-recovery",
            "--no-profile",
            "--settle=0",
            "--attempts=1",
            "--lead=3.5",
            "--arm-lead=2",
            "--relay-rtt-ms=0",
            "--dkim=rsa,ed25519",
            "--dkim-size=200",
            "--rate-limit",
            f"--postgres-url={POSTGRES_ADMIN_URL}",
            f"--redis-url={REDIS_URL}",
            f"--output={output}",
            f"--raw-dir={tmp_path / 'raw'}",
        ]
    )
    # Then every signed message went, none early, the workers really signed, and the
    # limited sends went whole, none early
    assert status == 0
    results = json.loads((tmp_path / "raw" / "results.json").read_text(encoding="utf-8"))
    dkim = results["dkim"]
    assert {s["kind"] for s in dkim["signed"]} == {"rsa", "ed25519"}, dkim["notes"]
    for signed in dkim["signed"]:
        figures = signed["run"]["figures"]
        assert figures["sent"] == 200 and figures["early"] == 0
        check = signed["check"]
        assert check["problem"] is None, check["problem"]
        assert check["verified"] == check["kept"] == check["recipients"] > 0
    rate = results["rate_limits"]
    for limited in (rate["far"], rate["at_limit"]):
        assert limited["run"]["figures"]["sent"] == 200
        assert limited["run"]["figures"]["early"] == 0
    text = output.read_text(encoding="utf-8")
    assert "DKIM" in text


def test_smtp_sink_dump_gives_each_copy_its_recipient_and_message_id(tmp_path: Path) -> None:
    # Given smtp-sink's dump of two messages, one with a body line that looks like a header
    dump = tmp_path / "messages"
    message = (
        "{mark}\nX-Client-Addr: 127.0.0.1\nX-Client-Proto: ESMTP\nX-Helo-Args: [127.0.0.1]\n"
        "X-Mail-Args: <bounce@example.org>\nX-Rcpt-Args: <{rcpt}>\n"
        "Received: from [127.0.0.1] ([127.0.0.1])\n\tby smtp-sink (smtp-sink) with ESMTP id 1;\n"
        "\tSun, 29 Nov 2026 23:21:51 +0000 (UTC)\nFrom: a@example.org\n"
        "Message-ID: {mid}\nSubject: x\n\nbody\nMessage-ID: <not-a-header@x>\n\n"
    )
    dump.write_text(
        message.format(mark=DUMP_MARK, rcpt="Ann.Lee@Example.com", mid="<1.a@distributor.local>")
        + message.format(mark=DUMP_MARK, rcpt="bo@example.com", mid="<2.b@distributor.local>"),
        encoding="utf-8",
    )
    # When it is read, Then each message gives its recipient, lower-cased, and its Message-ID
    assert list(dumped_copies(dump)) == [
        Copy("ann.lee@example.com", "<1.a@distributor.local>"),
        Copy("bo@example.com", "<2.b@distributor.local>"),
    ]


def test_the_pid_is_the_third_field_of_a_lease_owner() -> None:
    assert owner_pid("worker:host-1:4242:a1b2c3") == 4242
    assert owner_pid("scheduler:host-1") is None
