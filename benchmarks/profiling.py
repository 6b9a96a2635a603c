"""Where a worker's time goes: py-spy attached to each worker child during a send.

py-spy samples the children from outside (no change to the code under test), wall-clock,
idle time included, so waiting on PostgreSQL or on the SMTP server shows up as such.

A worker process sends a batch with several threads: the main thread runs the event loop on
which every relay connection's lane builds and sends its messages; a recorder thread
commits their outcomes (a group commit); asyncio's worker threads claim chunks; a lease
keeper renews the leases. Each sample is put down to its thread (by a function at the
bottom of its stack), to a step of the batch (by a function on its stack, the first rule
that matches, so nested steps come first), and to what it was doing: waiting for work,
waiting for PostgreSQL, or running (on the CPU, or waiting for the interpreter's lock).
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

BUILD = "Building each message (`MessageBuilder.build`)"
CONNECT = "Opening / closing relay connections (`AsyncSMTPConnection.open`)"
SMTP = "SMTP exchange, our side (`AsyncSMTPConnection.send`)"
CLAIM = "Claiming a chunk (`claim_deliveries`)"
RECORD = "Recording outcomes (`OutcomeRecorder.record_many`, group commits)"
LEASE = "Taking and giving back batch leases (`take_batch`, `release_batch`)"
RENEWAL = "Renewing leases (`LeaseKeeper._run`, every third of the lease)"
LOOP_WAITING = "Event loop waiting for replies, commits and claims"
OUTSIDE = "Celery pool loop, idle between tasks"
PHASES: tuple[tuple[str, frozenset[str]], ...] = (
    (BUILD, frozenset({"MessageBuilder.build", "MessageBuilder.build_message"})),
    (
        CONNECT,
        frozenset(
            {
                "AsyncSMTPConnection.open",
                "AsyncSMTPConnection.close",
                "SMTPTransport._connect",
                "SMTPTransport.close",
            }
        ),
    ),
    (SMTP, frozenset({"AsyncSMTPConnection.send", "SMTPTransport.send"})),
    (CLAIM, frozenset({"claim_deliveries"})),
    (
        RECORD,
        frozenset(
            {
                "OutcomeRecorder.record_many",
                "OutcomeRecorder.record",
                "OutcomeRecorder._commit",
                "OutcomeRecorder.close",
                "GroupRecorder.close",
            }
        ),
    ),
    (
        LEASE,
        frozenset(
            {
                "take_batch",
                "take_free_batch",
                "batch_has_due_work",
                "lease_holder",
                "release_batch",
                "hand_back",
                "_give_back",
                "LeaseKeeper.__enter__",
                "LeaseKeeper.__exit__",
            }
        ),
    ),
    (RENEWAL, frozenset({"LeaseKeeper._run"})),
    (
        "Loading the send, rendering the release",
        frozenset({"load_send", "Runtime.make_builder", "make_builder", "prepare_release"}),
    ),
    (
        "Waiting for the embargo (`pause_until`)",
        frozenset({"pause_until", "sleep_until", "seconds_until_embargo"}),
    ),
    (
        "Rest of the batch (lanes, event loop, heartbeat, transactions)",
        frozenset({"deliver_batch"}),
    ),
    ("Rest of the Celery task (`send_batch`)", frozenset({"send_batch"})),
)
# Threads, by a function at the bottom of their stacks; the rest is the main thread.
MAIN_THREAD = "main thread (event loop)"
THREADS: tuple[tuple[str, str], ...] = (
    ("lease keeper", "LeaseKeeper._run"),
    ("outcome recorder", "GroupRecorder._run"),
    ("asyncio's threads (claims)", "_worker"),
)
# Innermost functions of a thread that waits for work: not counted as working.
IDLE_LEAVES = frozenset(
    {
        "Condition.wait",
        "Event.wait",
        "EpollSelector.select",
        "PollSelector.select",
        "SelectSelector.select",
        "_worker",  # asyncio's worker threads between jobs
        "Connection._recv",  # billiard: the pool process waiting for a task
        "Connection.poll",
        "SystemClock.sleep",
    }
)
# A sample whose innermost frame is psycopg's waiting is waiting for PostgreSQL, not on the
# CPU (psycopg waits in C, under `Connection.wait`).
DATABASE_CLIENT = "psycopg/"
PROJECT_FILES = ("distributor/", "workers/")


@dataclass(frozen=True, slots=True)
class Share:
    label: str
    share: float  # fraction of the samples


@dataclass(frozen=True, slots=True)
class StepTime:
    """Worker time in one step, per message sent, in all threads together: running (on the
    CPU, or waiting for the interpreter's lock) and waiting for PostgreSQL."""

    label: str
    running_ms: float
    database_ms: float


@dataclass
class ProfileSummary:
    tool: str
    processes: int
    samples: int  # of the main threads
    rate: int = 0  # samples per second, per thread
    phases: list[Share] = field(default_factory=list)  # the main threads' wall clock
    # Per step, in all threads: samples running, and samples waiting for PostgreSQL.
    running: dict[str, int] = field(default_factory=dict)
    database: dict[str, int] = field(default_factory=dict)
    # Per thread: samples running, waiting for PostgreSQL, waiting for work.
    threads: dict[str, tuple[int, int, int]] = field(default_factory=dict)
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


def waits_for_database(frame: str) -> bool:
    return DATABASE_CLIENT in frame and function_of(frame).endswith("wait")


def thread_of(names: set[str]) -> str:
    return next((thread for thread, mark in THREADS if mark in names), MAIN_THREAD)


def activity(stack: tuple[str, ...]) -> str:
    """ "idle" (waiting for work), "database" (waiting for PostgreSQL) or "running"."""
    leaf = stack[-1]
    if function_of(leaf) in IDLE_LEAVES:
        return "idle"
    return "database" if waits_for_database(leaf) else "running"


def step_time(summary: ProfileSummary, label: str, messages: int) -> StepTime | None:
    """A step's time per message sent, all threads together."""
    if not summary.rate or not messages:
        return None
    per_sample = 1000 / summary.rate / messages  # ms of one thread's time per message
    return StepTime(
        label,
        summary.running.get(label, 0) * per_sample,
        summary.database.get(label, 0) * per_sample,
    )


def summarise(files: list[Path], *, tool: str, rate: int = 0) -> ProfileSummary | None:
    stacks = read_stacks(files)
    main: Counter[tuple[str, ...]] = Counter()
    phases: Counter[str] = Counter()
    running: Counter[str] = Counter()
    database: Counter[str] = Counter()
    threads: dict[str, Counter[str]] = {}
    leaves: Counter[str] = Counter()
    project: Counter[str] = Counter()
    for stack, n in stacks.items():
        names = {function_of(frame) for frame in stack}
        thread = thread_of(names)
        doing = activity(stack)
        threads.setdefault(thread, Counter())[doing] += n
        label = next((name for name, marks in PHASES if names & marks), OUTSIDE)
        if doing == "running":
            running[label] += n
        elif doing == "database":
            database[label] += n
        if thread != MAIN_THREAD:
            continue
        main[stack] += n
        if doing == "idle" and label != OUTSIDE:
            label = LOOP_WAITING
        phases[label] += n
        leaves[stack[-1]] += n
        for frame in set(stack):
            if any(marker in frame for marker in PROJECT_FILES):
                project[frame] += n
    total = sum(main.values())
    if not total:
        return None
    order = [name for name, _ in PHASES] + [LOOP_WAITING, OUTSIDE]
    return ProfileSummary(
        tool=tool,
        processes=len(files),
        samples=total,
        rate=rate,
        phases=[Share(name, phases[name] / total) for name in order if phases[name]],
        running=dict(running),
        database=dict(database),
        threads={thread: (c["running"], c["database"], c["idle"]) for thread, c in threads.items()},
        top_self=_shares(leaves, total, 12),
        top_project=_shares(project, total, 12),
        inside_build=_callees(main, "MessageBuilder.build", 8),
        inside_send=_callees(main, "AsyncSMTPConnection.send", 6),
    )
