"""Every package imports on its own, whichever is imported first (no import cycles)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import distributor

PACKAGES = sorted(
    ["distributor", "workers.tasks"]
    + [f"distributor.{m.name}" for m in pkgutil.iter_modules(distributor.__path__) if m.ispkg]
)


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_first(package: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", f"import {package}"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
