"""The sample release as journalists get it, compared with approved copies.

The approved copies are tests/snapshots/*. After a deliberate change to the templates or the
rendering, look at the new output and approve it with

    DISTRIBUTOR_APPROVE_SNAPSHOTS=1 pytest tests/test_rendering_snapshot.py

then review the diff of tests/snapshots/ like any other change. Only what must vary between
runs is normalised: the Date, MIME boundaries and unsubscribe tokens.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest

from distributor.clock import ManualClock
from distributor.releases.content import ReleaseContent
from distributor.rendering.embargo_notice import EmbargoNotice
from tests.support.mail import (
    ALICE,
    EMBARGO,
    builder,
    header_block,
    html_of,
    parse,
    rich_content,
    sample_content,
    text_of,
)

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
APPROVE = os.environ.get("DISTRIBUTOR_APPROVE_SNAPSHOTS", "") == "1"


def normalised(text: str) -> str:
    text = re.sub(r"/unsubscribe/[0-9a-f]+", "/unsubscribe/TOKEN", text)
    text = re.sub(r"unsubscribe\+[0-9a-f]+@", "unsubscribe+TOKEN@", text)
    text = re.sub(r"=_[0-9a-f]{24}", "=_BOUNDARY", text)
    text = re.sub(r"^Date: .*$", "Date: DATE", text, flags=re.MULTILINE)
    return text.replace("\r\n", "\n")


def compare(name: str, actual: str) -> None:
    path = SNAPSHOTS / name
    if APPROVE or not path.exists():
        if not APPROVE:
            pytest.fail(
                f"no approved snapshot {path.name}; run with DISTRIBUTOR_APPROVE_SNAPSHOTS=1 "
                "after checking the output"
            )
        path.write_text(actual, encoding="utf-8")
        return
    approved = path.read_text(encoding="utf-8")
    assert actual == approved, (
        f"{name} differs from the approved snapshot; if the change is intended, re-approve "
        "with DISTRIBUTOR_APPROVE_SNAPSHOTS=1 and review the diff"
    )


@pytest.mark.parametrize(
    ("name", "content"),
    [("safelives-police-response", sample_content), ("refuge-rich", rich_content)],
)
def test_the_release_matches_its_approved_snapshot(name: str, content: object) -> None:
    release: ReleaseContent = content()  # type: ignore[operator]
    clock = ManualClock(EMBARGO - timedelta(hours=1))
    notice = EmbargoNotice(at=EMBARGO, zone_name="Europe/London")
    data = builder(release, clock=clock, notice=notice).build(ALICE)
    message = parse(data)

    compare(f"{name}.html", normalised(html_of(message)))
    compare(f"{name}.txt", normalised(text_of(message)))
    compare(f"{name}.headers", normalised(header_block(data).decode("ascii") + "\n"))
