"""Where a worker's time goes: py-spy attached to each worker child during a send.

py-spy samples the children from outside (no change to the code under test), wall-clock,
idle time included, so waiting on PostgreSQL or on the SMTP server shows up as such.
Samples are grouped into the steps of sending a batch by the functions on their stack.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

# The steps of a batch, by a function that is on the stack; the first rule that matches a
# sample takes it, so nested steps (connecting happens inside send) come first.
PHASES: tuple[tuple[str, frozenset[str]], ...] = (
    (
        "Building each message (`MessageBuilder.build`)",
        frozenset({"MessageBuilder.build", "MessageBuilder.build_message"}),
    ),
    (
        "Opening / closing the SMTP connection",
        frozenset({"SMTPTransport._connect", "SMTPTransport.close"}),
    ),
    ("SMTP transaction per message (`SMTPTransport.send`)", frozenset({"SMTPTransport.send"})),
    ("Claiming a chunk (`claim_deliveries`)", frozenset({"claim_deliveries"})),
    ("Recording outcomes (`record_outcomes`)", frozenset({"record_outcomes"})),
    (
        "Loading the send, rendering the release",
        frozenset({"load_send", "Runtime.make_builder", "make_builder", "render_release"}),
    ),
    ("Waiting for the embargo (`sleep_until`)", frozenset({"sleep_until"})),
    ("Rest of `deliver_batch` (transactions, commits)", frozenset({"deliver_batch"})),
    ("Rest of the Celery task (`send_batch`)", frozenset({"send_batch"})),
)
OUTSIDE = "Celery pool loop, idle between tasks"
PROJECT_FILES = ("distributor/", "workers/")


@dataclass(frozen=True, slots=True)
class Share:
    label: str
    share: float  # fraction of the samples


@dataclass
class ProfileSummary:
    tool: str
    processes: int
    samples: int
    phases: list[Share] = field(default_factory=list)
    top_self: list[Share] = field(default_factory=list)
    top_project: list[Share] = field(default_factory=list)
    inside_build: list[Share] = field(default_factory=list)
    inside_send: list[Share] = field(default_factory=list)


def find_py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def py_spy_version(binary: str) -> str:
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return "py-spy"
    return out.stdout.strip() or "py-spy"


class PySpyRecorder:
    """One `py-spy record` per process; stopped with SIGINT, which makes it write its file."""

    def __init__(self, binary: str, out_dir: Path, *, rate: int = 250) -> None:
        self.binary = binary
        self.out_dir = out_dir
        self.rate = rate
        self._running: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, pids: Iterable[int]) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for pid in pids:
            output = self.out_dir / f"worker-child-{pid}.txt"
            process = subprocess.Popen(
                [
                    self.binary,
                    "record",
                    f"--pid={pid}",
                    f"--rate={self.rate}",
                    "--format=raw",
                    "--function",
                    "--idle",
                    "--nonblocking",
                    f"--output={output}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=(self.out_dir / f"py-spy-{pid}.log").open("wb"),
            )
            self._running.append((process, output))

    def stop(self) -> list[Path]:
        for process, _ in self._running:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process, _ in self._running:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return [output for _, output in self._running if output.exists()]


def function_of(frame: str) -> str:
    """'MessageBuilder.build (distributor/message.py:44)' -> 'MessageBuilder.build'."""
    return frame.split(" (", 1)[0]


def read_stacks(files: Iterable[Path]) -> Counter[tuple[str, ...]]:
    """py-spy's raw (collapsed) format: root-first frames joined by ';', then a count."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for path in files:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                stacks[tuple(stack.split(";"))] += int(count)
    return stacks


def _shares(counter: Counter[str], total: int, limit: int) -> list[Share]:
    return [Share(label, n / total) for label, n in counter.most_common(limit) if n]


def _callees(stacks: Counter[tuple[str, ...]], parent: str, limit: int) -> list[Share]:
    """Share of `parent`'s own samples spent in each function it calls directly."""
    below: Counter[str] = Counter()
    inside = 0
    for stack, n in stacks.items():
        names = [function_of(frame) for frame in stack]
        if parent not in names:
            continue
        inside += n
        position = len(names) - 1 - names[::-1].index(parent)
        callee = names[position + 1] if position + 1 < len(names) else f"{parent} itself"
        below[callee] += n
    return _shares(below, inside, limit) if inside else []


def summarise(files: list[Path], *, tool: str) -> ProfileSummary | None:
    stacks = read_stacks(files)
    total = sum(stacks.values())
    if not total:
        return None
    phases: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    project: Counter[str] = Counter()
    for stack, n in stacks.items():
        names = {function_of(frame) for frame in stack}
        label = next((name for name, marks in PHASES if names & marks), OUTSIDE)
        phases[label] += n
        leaves[stack[-1]] += n
        for frame in set(stack):
            if any(marker in frame for marker in PROJECT_FILES):
                project[frame] += n
    order = [name for name, _ in PHASES] + [OUTSIDE]
    return ProfileSummary(
        tool=tool,
        processes=len(files),
        samples=total,
        phases=[Share(name, phases[name] / total) for name in order if phases[name]],
        top_self=_shares(leaves, total, 12),
        top_project=_shares(project, total, 12),
        inside_build=_callees(stacks, "MessageBuilder.build", 8),
        inside_send=_callees(stacks, "SMTPTransport.send", 6),
    )
