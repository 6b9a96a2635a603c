"""`distributor demo` runs the whole flow on embedded defaults and reports honestly."""

from __future__ import annotations

from pathlib import Path

import pytest

from distributor.demo import run_demo
from distributor.mailcatcher import read_arrivals

pytestmark = pytest.mark.slow


def test_demo_delivers_to_everyone_after_the_embargo(tmp_path: Path) -> None:
    lines: list[str] = []
    ok = run_demo(
        contacts=40, lead_seconds=3, workers=1, echo=lines.append, data_dir=tmp_path / "demo"
    )
    output = "\n".join(lines)
    assert ok, output
    assert "delivered 40 of 40" in output
    assert "0 before the embargo, 0 duplicate(s)" in output
    outbox = tmp_path / "demo" / "outbox"
    assert len(list(outbox.glob("*.eml"))) == 40
    assert len({a.recipient for a in read_arrivals(outbox)}) == 40
