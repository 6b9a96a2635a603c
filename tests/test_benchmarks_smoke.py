"""The benchmark harness, end to end at a tiny size, against the real services."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.cli import main
from benchmarks.report import KEEP_MARKER, REQUIRED_ROWS
from tests.support.services import (
    POSTGRES_ADMIN_URL,
    REDIS_URL,
    postgres_available,
    redis_available,
    require,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


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
