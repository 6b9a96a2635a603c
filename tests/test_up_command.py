"""`distributor up` starts everything for one machine and stops all of it together: on
Ctrl-C, and when one of its processes dies."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from distributor.migrate import upgrade
from distributor.settings import Settings
from tests.support.engine import wait_until

pytestmark = pytest.mark.slow

CHILDREN = {"mailcatcher", "scheduler", "worker", "notices-worker", "web"}
CHILD_LINE = re.compile(r"^  (?P<name>[a-z-]+) +pid (?P<pid>[0-9]+)$", re.MULTILINE)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def session_members(session_ids: set[int]) -> set[int]:
    """Every live process in these sessions: the children `up` started, and theirs (a
    worker's pool processes) that no pid printed names."""
    members = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp session ...; comm may hold spaces and parentheses.
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[3]) in session_ids:
            members.add(int(entry.name))
    return members


def gone(children: dict[str, int]) -> None:
    """No process of theirs is left (polled: a pool process may take a moment to exit)."""
    sessions = set(children.values())
    wait_until(lambda: not session_members(sessions), timeout=5, what="every process to end")


@dataclass
class Up:
    process: subprocess.Popen[bytes]
    output_path: Path
    port: int

    def output(self) -> str:
        return self.output_path.read_text(encoding="utf-8", errors="replace")

    def children(self) -> dict[str, int]:
        return {m["name"]: int(m["pid"]) for m in CHILD_LINE.finditer(self.output())}

    def wait_until_up(self) -> None:
        wait_until(
            lambda: "Press Ctrl-C" in self.output() or self.process.poll() is not None,
            timeout=120,
            what="distributor up to start",
        )
        assert self.process.poll() is None, self.output()

    def exit_status(self, timeout: float = 60) -> int:
        return self.process.wait(timeout)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "var"


@pytest.fixture
def start_up(tmp_path: Path, data_dir: Path) -> Iterator[Callable[[], Up]]:
    started: list[Up] = []

    def start() -> Up:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DISTRIBUTOR_")}
        env["DISTRIBUTOR_DATA_DIR"] = str(data_dir)
        env["DISTRIBUTOR_SMTP_URL"] = f"smtp://127.0.0.1:{free_port()}"
        output = tmp_path / f"up{len(started)}.txt"
        with output.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "distributor", "up", f"--port={port}", "--workers=1"],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        up = Up(process, output, port)
        started.append(up)
        return up

    yield start
    for up in started:
        if up.process.poll() is None:
            up.process.send_signal(signal.SIGTERM)
            up.process.wait(60)


def test_up_serves_the_dashboard_and_ctrl_c_stops_every_process(
    start_up: Callable[[], Up],
) -> None:
    up = start_up()
    up.wait_until_up()
    children = up.children()
    assert set(children) == CHILDREN, up.output()
    assert "the database schema was migrated" in up.output()
    assert f"http://127.0.0.1:{up.port}/" in up.output()
    for path in ("/login", "/news"):
        with urllib.request.urlopen(f"http://127.0.0.1:{up.port}{path}", timeout=5) as page:
            assert page.status == 200
    everything = session_members(set(children.values()))
    assert set(children.values()) < everything  # the workers' pool processes too

    up.process.send_signal(signal.SIGINT)

    assert up.exit_status() == 0, up.output()
    gone(children)
    assert up.output().rstrip().endswith("stopped")


def test_when_one_process_dies_the_others_are_stopped_and_up_fails_naming_it(
    start_up: Callable[[], Up], data_dir: Path
) -> None:
    # Given a database already migrated (`up` then only checks it)
    upgrade(Settings(data_dir=data_dir, database_url="").effective_database_url)
    up = start_up()
    up.wait_until_up()
    assert "the database schema is up to date" in up.output()
    children = up.children()
    os.kill(children["scheduler"], signal.SIGKILL)

    assert up.exit_status() == 1
    assert f"the scheduler process (pid {children['scheduler']}) was killed by signal 9" in (
        up.output()
    )
    gone(children)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{up.port}/healthz", timeout=2)
