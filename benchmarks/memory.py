"""Peak resident memory of the processes under test, read from /proc (Linux).

VmHWM is the kernel's own high-water mark of a process's resident set, so one read just
before a process stops gives its peak; sampling in between only catches children that come
and go, and records each process's resident set before the send started, for comparison.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(slots=True)
class ProcessMemory:
    role: str  # "worker main", "worker child", "scheduler", ...
    pid: int
    before_kib: int | None = None  # VmRSS when tracking began (before the send)
    peak_kib: int | None = None  # VmHWM at the last read

    @property
    def peak_mib(self) -> float | None:
        return None if self.peak_kib is None else self.peak_kib / 1024

    @property
    def before_mib(self) -> float | None:
        return None if self.before_kib is None else self.before_kib / 1024


def read_status(pid: int) -> dict[str, int]:
    """The kB figures of /proc/PID/status (VmRSS, VmHWM, ...); empty if the process is gone."""
    figures: dict[str, int] = {}
    try:
        lines = (PROC / str(pid) / "status").read_text().splitlines()
    except OSError:
        return figures
    for line in lines:
        key, _, value = line.partition(":")
        parts = value.split()
        if len(parts) == 2 and parts[1] == "kB":
            figures[key] = int(parts[0])
    return figures


def children_of(pid: int) -> list[int]:
    """Direct children, found by scanning /proc (no psutil needed)."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name (field 2) is in parentheses and may contain spaces.
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


class MemoryTracker:
    """Tracks named root processes and (optionally) their children until stopped."""

    def __init__(self, *, interval: float = 0.5) -> None:
        self._roots: list[tuple[str, int, str | None]] = []
        self._seen: dict[int, ProcessMemory] = {}
        self._interval = interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def track(self, role: str, pid: int, *, children_role: str | None = None) -> None:
        self._roots.append((role, pid, children_role))
        self.sample()

    def sample(self) -> None:
        with self._lock:
            for role, pid, children_role in self._roots:
                self._update(role, pid)
                if children_role is not None:
                    for child in children_of(pid):
                        self._update(children_role, child)

    def _update(self, role: str, pid: int) -> None:
        status = read_status(pid)
        if not status:
            return
        memory = self._seen.get(pid)
        if memory is None:
            memory = self._seen[pid] = ProcessMemory(role, pid, before_kib=status.get("VmRSS"))
        hwm = status.get("VmHWM")
        if hwm is not None:
            memory.peak_kib = max(memory.peak_kib or 0, hwm)

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self._interval):
                self.sample()

        self._thread = threading.Thread(target=loop, name="memory-tracker", daemon=True)
        self._thread.start()

    def stop(self) -> list[ProcessMemory]:
        """Take a last reading (the peaks), stop sampling, return every process seen."""
        self.sample()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            return sorted(self._seen.values(), key=lambda m: (m.role, m.pid))
