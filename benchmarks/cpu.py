"""Where the machine's CPU went during a send: ours, the services, and everything else.

On a shared 2-CPU machine a neighbour's busy process changes every figure, so each measured
send records the CPU time of the processes under test (from /proc/PID/stat), of PostgreSQL's
backends for the benchmark database, of Redis and of the receiver, against the machine's
total (/proc/stat). What is left is other load, shown in the report.
Before a send starts, `wait_for_quiet` waits (a bounded time) for other load to pass.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
# A send during which processes not under test kept more CPUs than this busy is disturbed.
DISTURBED_CPUS = 0.25
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot; idle and iowait are not busy."""
    try:
        fields = (PROC / "stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return 0, 0
    values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def process_ticks(pid: int) -> int | None:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def pids_matching(predicate: Callable[[str], bool]) -> list[int]:
    """Processes whose command line satisfies `predicate` (e.g. PostgreSQL backends)."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if predicate(cmdline):
            found.append(int(entry.name))
    return found


@dataclass
class CpuUsage:
    wall_seconds: float
    machine_cpu_seconds: float
    cpus: int
    by_role: dict[str, float] = field(default_factory=dict)  # CPU seconds per kind of process

    def average(self, cpu_seconds: float) -> float:
        """As a number of CPUs kept busy on average over the window."""
        return cpu_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def others(self) -> float:
        """CPU seconds of everything not listed: other users' work, the kernel's own."""
        return max(0.0, self.machine_cpu_seconds - sum(self.by_role.values()))


RoleFinder = Callable[[], Iterable[int]]


class CpuMeter:
    """CPU time of named groups of processes between `start` and `stop`."""

    def __init__(self, roles: dict[str, RoleFinder]) -> None:
        self._roles = roles
        self._start: dict[tuple[str, int], int] = {}
        self._latest: dict[tuple[str, int], int] = {}
        self._machine = (0, 0)
        self._began = 0.0

    def _read(self) -> dict[tuple[str, int], int]:
        readings = {}
        for role, find in self._roles.items():
            for pid in find():
                ticks = process_ticks(pid)
                if ticks is not None:
                    readings[(role, pid)] = ticks
        return readings

    def start(self) -> None:
        self._began = time.monotonic()
        self._machine = machine_ticks()
        self._start = self._read()

    def sample(self) -> None:
        """Keep the last reading of processes that may exit before `stop`."""
        self._latest.update(self._read())

    def stop(self) -> CpuUsage:
        self.sample()
        busy, _total = machine_ticks()
        usage = CpuUsage(
            wall_seconds=time.monotonic() - self._began,
            machine_cpu_seconds=(busy - self._machine[0]) / TICKS,
            cpus=os.cpu_count() or 1,
        )
        for key, ticks in self._latest.items():
            used = (ticks - self._start.get(key, 0)) / TICKS
            usage.by_role[key[0]] = usage.by_role.get(key[0], 0.0) + max(0.0, used)
        return usage


def busy_share(seconds: float = 2.0) -> float:
    """Fraction of all CPUs busy over the next `seconds`."""
    busy0, total0 = machine_ticks()
    time.sleep(seconds)
    busy1, total1 = machine_ticks()
    return (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0


def wait_for_quiet(*, below: float = 0.25, timeout: float = 120.0) -> tuple[float, float]:
    """Wait until less than `below` of the CPUs are busy; returns (seconds waited, share)."""
    began = time.monotonic()
    share = busy_share()
    while share >= below and time.monotonic() - began < timeout:
        share = busy_share()
    return time.monotonic() - began, share


def service_roles(database: str, receiver_pid: int) -> dict[str, RoleFinder]:
    """The shared parts of every run: PostgreSQL, Redis, the receiver, this process."""

    def postgres(cmdline: str) -> bool:
        # Background processes (no client in parentheses) and backends of this database.
        return cmdline.startswith("postgres:") and (database in cmdline or "(" not in cmdline)

    return {
        "PostgreSQL": lambda: pids_matching(postgres),
        "Redis": lambda: pids_matching(lambda c: c.startswith("redis-server")),
        "receiver": lambda: [receiver_pid],
        "benchmark process": lambda: [os.getpid()],
    }
