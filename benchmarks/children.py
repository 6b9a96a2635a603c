"""Helper processes the benchmarks start: a log file each, a readiness marker, a clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

REPO_ROOT = Path(__file__).resolve().parent.parent


class BenchmarkError(RuntimeError):
    """Something the benchmark needs did not come up or did not finish."""


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes] = field(repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for_log(self, marker: str, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if marker in self.log_text():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise BenchmarkError(
            f"{self.name} did not report {marker!r} within {timeout:g} s; its log:\n"
            + self.log_text()[-3000:]
        )

    def stop(self, *, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


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
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        argv,
        env=env if env is not None else python_env(),
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return Child(name, process, log_path, log)
