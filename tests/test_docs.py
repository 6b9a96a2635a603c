"""The README must keep up with the code it documents."""

from __future__ import annotations

from pathlib import Path

from distributor.settings import Settings

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_lists_every_setting() -> None:
    text = README.read_text(encoding="utf-8")
    missing = [
        f"DISTRIBUTOR_{name.upper()}"
        for name in Settings.model_fields
        if f"`DISTRIBUTOR_{name.upper()}`" not in text
    ]
    assert missing == [], f"README.md does not document {missing}"


def test_readme_quick_start_names_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert "make demo" in text
    assert "make test" in text
