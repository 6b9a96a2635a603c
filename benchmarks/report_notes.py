"""The report's closing sections: the profile, how it was measured, the machine."""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchmarks.figures import TIME_COLUMN
from benchmarks.formatting import duration, percent, rate, table
from benchmarks.profiling import ProfileSummary, Share

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
        "so read the shares, not the speed. Raw stacks are in `docs/benchmarks.raw/`.",
        "",
        *_shares_table("Step of a batch (wall clock in the worker children)", p.phases),
        "",
    ]
    if p.inside_build:
        lines += [*_shares_table("Inside `MessageBuilder.build`", p.inside_build), ""]
    if p.inside_send:
        lines += [*_shares_table("Inside `SMTPTransport.send`", p.inside_send), ""]
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
        "records each message's `finished_at` as the relay accepts it (the outcomes of a "
        "claimed chunk are written together after the chunk). `claimed_at`, set when a "
        "chunk is claimed, before any of it is sent, is shown as the first claim. Throughput "
        "is messages sent divided by the time from the embargo to the last `finished_at`.",
        "- Early sends are counted twice: rows whose `finished_at` is before the embargo, "
        "and rows claimed (`claimed_at`) before it.",
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
