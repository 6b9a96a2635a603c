"""The report's closing sections: the profile, how it was measured, the machine."""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchmarks.figures import TIME_COLUMN
from benchmarks.formatting import duration, percent, rate, table
from benchmarks.profiling import (
    BUILD,
    CLAIM,
    CONNECT,
    LEASE,
    RECORD,
    RENEWAL,
    SMTP,
    ProfileSummary,
    Share,
    step_time,
)

if TYPE_CHECKING:
    from benchmarks.report import BenchReport


def _shares_table(title: str, shares: list[Share]) -> list[str]:
    return table([title, "Share"], [[s.label, percent(s.share)] for s in shares])


def profile_section(report: BenchReport) -> list[str]:
    run = report.profiled
    if run is None:
        return []
    if run.profile is None or not run.figures.complete:
        why = "; ".join(run.notes) or "py-spy recorded no samples"
        return [
            "## Where the time goes (profile)",
            "",
            f"The profiled {run.size:,}-recipient send did not give a usable profile: {why}.",
            "",
        ]
    p: ProfileSummary = run.profile
    lines = [
        "## Where the time goes (profile)",
        "",
        f"A separate {run.size:,}-recipient send with `py-spy record` attached to each of the "
        f"{p.processes} worker children from just before the embargo until every delivery was "
        f"final ({p.tool}; {p.samples:,} samples). Sampling can slow a run (this one reached "
        f"{rate(run.figures.throughput)}, last message at {duration(run.figures.last_s)}), "
        "so read the shares, not the speed. Raw stacks are in `docs/benchmarks.raw/`. "
        "The first table is the main thread's wall clock, where the event loop runs every "
        "connection's lane; the other threads (the outcome recorder, asyncio's threads "
        "that claim, the lease keeper) are in the tables after it.",
        "",
        *_shares_table("Step of a batch (wall clock of the workers' main threads)", p.phases),
        "",
    ]
    steps = [
        step_time(p, label, run.figures.sent)
        for label in (BUILD, SMTP, CONNECT, CLAIM, RECORD, LEASE, RENEWAL)
    ]
    rows = [
        [t.label, f"{t.running_ms:.3f} ms", f"{t.database_ms:.3f} ms"]
        for t in steps
        if t is not None
    ]
    if rows:
        lines += [
            *table(
                [
                    "Per message sent, all threads of the workers",
                    "Running",
                    "Waiting for PostgreSQL",
                ],
                rows,
            ),
            "",
            "Running is on the CPU or waiting for the interpreter's lock (the threads of a "
            "process share it); the database's own side of a claim or commit is not in the "
            "profile (see the components for a commit's).",
            "",
        ]
    threads = [
        [
            thread,
            *(percent(n / sum(counts)) if sum(counts) else "n/a" for n in counts),
        ]
        for thread, counts in sorted(p.threads.items())
    ]
    if threads:
        lines += [
            *table(
                ["Thread (all worker processes)", "Running", "Waiting for PostgreSQL", "Idle"],
                threads,
            ),
            "",
        ]
    if p.inside_build:
        lines += [*_shares_table("Inside `MessageBuilder.build`", p.inside_build), ""]
    if p.inside_send:
        lines += [*_shares_table("Inside `AsyncSMTPConnection.send`", p.inside_send), ""]
    lines += [*_shares_table("Top functions by own time (leaf of the stack)", p.top_self), ""]
    return lines


def method_section(report: BenchReport) -> list[str]:
    return [
        "## How it was measured",
        "",
        "- Each size gets a fresh PostgreSQL database (Alembic migrations), contacts loaded "
        "with one set-based INSERT, on two media lists that overlap by 20 %, and the sample "
        "release from `demo/`. The worker and scheduler are started before the send is "
        "scheduled, on a Redis queue of their own.",
        f"- Times come from `{TIME_COLUMN}` against the send's `embargo_at`: the worker "
        "records each message's `finished_at` as the relay accepts it, and commits it before "
        "the next message. `claimed_at`, set when a chunk is claimed, before any of it is "
        "sent, is shown as the first claim. Throughput is messages sent divided by the time "
        "from the embargo to the last `finished_at`.",
        "- Early sends are counted three times: rows whose `finished_at` is before the "
        "embargo, rows claimed (`claimed_at`) before it, and messages the receiver had "
        "counted when the embargo lifted.",
        "- Every message is also counted at the receiver, with the SMTP sessions it saw.",
        "- Peak RSS is the kernel's high-water mark (`VmHWM` in `/proc/PID/status`) of each "
        "process, read just before it is stopped; 1 MB = 10^6 bytes.",
        "- The baseline's times come from its own `naive_outbox.sent_at`, written after each "
        "message's SMTP acceptance.",
        "- CPU use comes from `/proc`: each process's user + system time over the send, "
        "against the whole machine's; what no process under test (worker, scheduler, "
        "PostgreSQL, Redis, receiver, the benchmark itself) used is shown as other "
        "processes. Before each measured send the benchmark waits (at most `--settle` "
        "seconds) for other load to pass; with `--attempts N` a send during which other "
        "processes kept more than a quarter of a CPU busy is run again, and the least "
        "disturbed attempt is reported. CPU time per message adds up the processes under "
        "test and divides by the messages sent, so other load hardly changes it.",
        "- Components run in the benchmark process after the sends.",
        "- Recovery: a send of its own, on a fresh database, with its own receiver of the "
        "same kind that records each message's recipients and Message-ID. When the receiver "
        "has counted about a fifth of the messages, the benchmark reads "
        "`deliveries.lease_owner` of a row in `sending` (`worker:HOST:PID:NONCE`), checks the "
        "PID is a pool process of the worker under test, counts its established connections "
        "to the receiver (`/proc/PID/fd` against `/proc/PID/net/tcp`), and kills it with "
        "SIGKILL. The takeover time is the first `deferred` event after the kill; the last "
        "delivery is the last `finished_at`; duplicates are copies per recipient at the "
        "receiver beyond the first.",
        "- The comparison with another revision runs that revision's own benchmark on a copy "
        "of its tree (`git archive`), after the sends of this code, with the same options.",
        "",
    ]


def machine_section(report: BenchReport) -> list[str]:
    m = report.machine
    packages = ", ".join(f"{name} {version}" for name, version in m.packages.items())
    memory = f", {m.memory_gib:.0f} GiB RAM" if m.memory_gib else ""
    return [
        "## Machine and versions",
        "",
        f"- Date: {m.date}; code at commit {m.revision}",
        f"- CPUs: {m.cpus} ({m.cpu_model}){memory}; {m.kernel}",
        f"- {m.python}; {packages}",
        f"- PostgreSQL {m.postgres}; redis-server {m.redis_server}",
        f"- Load average (1 min): {m.load_at_start:.2f} when the run began"
        + ("" if report.load_at_end is None else f", {report.load_at_end:.2f} when it ended"),
        f"- Receiver: {m.receiver}",
        f"- Command: `{report.command}`",
        "",
    ]
