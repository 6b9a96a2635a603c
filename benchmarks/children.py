"""Helper processes the benchmarks start: a log file each, a readiness marker, a clean stop."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from distributor.errors import DistributorError
from distributor.processes import ManagedProcess, start_command

REPO_ROOT = Path(__file__).resolve().parent.parent


class BenchmarkError(DistributorError):
    """Something the benchmark needs did not come up or did not finish."""


# The benchmarks' helper processes are managed exactly as the demo's and the tests' are.
Child = ManagedProcess


def python_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment, with the source tree importable (the benchmarks are not installed)."""
    env = dict(os.environ)
    path = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + path if path else "")
    env.update(extra or {})
    return env


def start_child(
    name: str, argv: list[str], *, log_dir: Path, env: dict[str, str] | None = None
) -> Child:
    """Start `argv` (a leading "python" means this interpreter) with its output in a log."""
    if argv and argv[0] == "python":
        argv = [sys.executable, *argv[1:]]
    return start_command(
        name, argv, env=env if env is not None else python_env(), log_dir=log_dir, cwd=REPO_ROOT
    )
