"""Starting and stopping worker and scheduler processes for the demo and for tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from distributor.errors import DistributorError
from distributor.settings import Settings


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process build the same settings."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"DISTRIBUTOR_{name.upper()}"] = str(value)
    return env


@dataclass
class ManagedProcess:
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
        raise DistributorError(
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


def start_command(
    name: str,
    argv: list[str],
    *,
    env: dict[str, str],
    log_dir: Path,
    cwd: Path | None = None,
) -> ManagedProcess:
    """Start any command in a session of its own, its output in LOG_DIR/NAME.log."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        argv,
        env=env,
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return ManagedProcess(name, process, log_path, log)


def start_process(
    name: str, args: list[str], *, settings: Settings, log_dir: Path
) -> ManagedProcess:
    return start_command(
        name,
        [sys.executable, "-m", "distributor", *args],
        env=settings_env(settings),
        log_dir=log_dir,
    )


def start_worker(
    settings: Settings,
    *,
    log_dir: Path,
    concurrency: int = 1,
    name: str = "worker",
    notices_only: bool = False,
) -> ManagedProcess:
    args = ["worker", f"--concurrency={concurrency}"] + (["--notices-only"] if notices_only else [])
    worker = start_process(name, args, settings=settings, log_dir=log_dir)
    try:
        worker.wait_for_log(" ready.", timeout=60)
    except DistributorError:
        worker.stop()
        raise
    return worker


def start_scheduler(
    settings: Settings, *, log_dir: Path, interval: float = 0.0, name: str = "scheduler"
) -> ManagedProcess:
    args = ["scheduler"] + ([f"--interval={interval}"] if interval else [])
    scheduler = start_process(name, args, settings=settings, log_dir=log_dir)
    try:
        scheduler.wait_for_log("scheduler ticking", timeout=30)
    except DistributorError:
        scheduler.stop()
        raise
    return scheduler
