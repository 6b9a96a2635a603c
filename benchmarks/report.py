"""The report: markdown tables of every figure, the targets, the machine; printed and written.

Everything below KEEP_MARKER in an existing report is hand-written analysis and is carried
over unchanged when the report is written again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks.components import ComponentFigures
from benchmarks.dkim_send import DkimResult
from benchmarks.environment import MachineInfo
from benchmarks.figures import DeliveryFigures
from benchmarks.formatting import (
    attempts_note,
    count,
    cpu_breakdown,
    cpu_per_message,
    cpus_of,
    cpus_others,
    duration,
    mb,
    megabytes,
    peak_of,
    peaks_text,
    rate,
    size_of_ours,
    table,
)
from benchmarks.naive import NaiveResult
from benchmarks.ours import OursResult
from benchmarks.rate_runs import RateResult
from benchmarks.recovery import RecoveryResult
from benchmarks.report_dkim import dkim_section, dkim_targets
from benchmarks.report_notes import machine_section, method_section, profile_section
from benchmarks.report_rate import rate_section, rate_targets
from benchmarks.report_recovery import (
    REQUIRED_RECOVERY_ROWS,
    cost_section,
    recovery_section,
    recovery_targets,
)
from benchmarks.report_relay import relay_section
from benchmarks.revision import RevisionResult

KEEP_MARKER = (
    "<!-- Hand-written notes below this line are kept when `make bench` rewrites the file. -->"
)

# Targets for a 2-CPU machine, from the issue that asked for these benchmarks.
TARGET_THROUGHPUT = 3000.0
STRETCH_THROUGHPUT = 5000.0
TARGET_RATIO = 15.0
TARGET_FIRST_S = 0.100
TARGET_LAST_S = 3.0
TARGET_RSS_MB = 150.0
TARGET_RSS_GROWTH = 0.10

# Row labels, in order; the smoke test checks that every one is in the report.
ROW_THROUGHPUT = "Throughput, embargo to last acceptance"
ROW_UPDATED = "Delivery rows updated to `sent`"
ROW_FIRST = "Embargo to first accepted message"
ROW_LAST = "Embargo to last accepted message"
ROW_EARLY = "Accepted before the embargo"
ROW_CLAIM = "Embargo to first claim"
ROW_CLAIMED_EARLY = "Claimed before the embargo"
ROW_CONNECTIONS = "SMTP connections opened"
ROW_BATCH_MESSAGES = "Batch messages queued / batches"
ROW_MESSAGE_SIZE = "Size of one message"
ROW_RSS_MAIN = "Peak RSS, worker main process"
ROW_RSS_CHILDREN = "Peak RSS, each worker child process"
ROW_RSS_SCHEDULER = "Peak RSS, scheduler"
ROW_SCHEDULE = "Scheduling the send (`schedule_send`)"
ROW_CPU_WORKERS = "CPUs kept busy by the worker processes (average)"
ROW_CPU_OTHERS = "CPUs kept busy by processes not under test (average)"
ROW_CPU_PER_MESSAGE = "CPU time per message, all processes under test"
ROW_NAIVE = "Naive baseline throughput"
ROW_RATIO = "Throughput ratio, ours / naive"
ROW_IMPORT = "Contacts imported per second"
ROW_AUDIENCE = "Audience resolution"
ROW_ARMING = "Audience at arming"
ROW_BUILD = "Personalised messages built per second, one core"
ROW_SIGNED = "Messages built and DKIM-signed per second, one core"
ROW_RECORD = "Recording outcomes"
REQUIRED_ROWS = (
    ROW_THROUGHPUT,
    ROW_UPDATED,
    ROW_FIRST,
    ROW_LAST,
    ROW_EARLY,
    ROW_CLAIM,
    ROW_CLAIMED_EARLY,
    ROW_CONNECTIONS,
    ROW_BATCH_MESSAGES,
    ROW_RSS_MAIN,
    ROW_RSS_CHILDREN,
    ROW_RSS_SCHEDULER,
    ROW_SCHEDULE,
    ROW_CPU_WORKERS,
    ROW_CPU_OTHERS,
    ROW_CPU_PER_MESSAGE,
    ROW_NAIVE,
    ROW_RATIO,
    ROW_IMPORT,
    ROW_AUDIENCE,
    ROW_BUILD,
    ROW_RECORD,
    *REQUIRED_RECOVERY_ROWS,
)


@dataclass
class BenchReport:
    command: str
    machine: MachineInfo
    ours: list[OursResult]
    naive: NaiveResult | None = None
    naive_compared_with: OursResult | None = None  # our run on the naive run's database
    components: ComponentFigures | None = None
    profiled: OursResult | None = None
    recovery: RecoveryResult | None = None
    revision: RevisionResult | None = None  # the same send on another revision, this run
    relay_runs: list[OursResult] = field(default_factory=list)  # behind a latency proxy
    dkim: DkimResult | None = None  # the same send signed by each kind of DKIM key
    rate_limits: RateResult | None = None  # the rate limiter's cost, far above and at a limit
    notes: list[str] = field(default_factory=list)
    load_at_end: float | None = None  # 1-minute load average when the run ended

    @property
    def ratio(self) -> float | None:
        if self.naive is None or self.naive_compared_with is None:
            return None
        ours = self.naive_compared_with.figures.throughput
        naive = self.naive.figures.throughput
        return ours / naive if ours and naive else None

    @property
    def sound(self) -> bool:
        """Every message went, none early, a killed worker lost nothing and sent at most its
        bound twice, the signed sends were signed: the figures mean what they say."""
        runs = [r.figures for r in self.ours]
        if self.naive is not None:
            runs.append(self.naive.figures)
        early = any(r.smtp_before_embargo for r in self.ours)
        recovered = self.recovery is None or self.recovery.sound
        signed = self.dkim is None or self.dkim.sound
        return (
            recovered
            and signed
            and not early
            and all(f.complete and f.early == 0 and not f.claimed_early for f in runs)
        )


# Formatting -------------------------------------------------------------------------------


def _early(r: OursResult) -> str:
    """Recorded before the embargo, and counted by the receiver when it lifted."""
    return f"{count(r.figures.early)} ({count(r.smtp_before_embargo)} at the receiver)"


def results_section(report: BenchReport) -> list[str]:
    runs = report.ours
    header = ["", *(f"{r.size:,} recipients" for r in runs)]

    def row(label: str, cell: Callable[[OursResult], str]) -> list[str]:
        return [label, *(cell(r) for r in runs)]

    def f(r: OursResult) -> DeliveryFigures:
        return r.figures

    rows = [
        row(ROW_THROUGHPUT, lambda r: f"**{rate(f(r).throughput)}**"),
        row(ROW_UPDATED, lambda r: f"{count(f(r).sent)} of {count(f(r).recipients)}"),
        row(ROW_FIRST, lambda r: duration(f(r).first_s)),
        row(ROW_LAST, lambda r: duration(f(r).last_s)),
        row(ROW_EARLY, lambda r: _early(r)),
        row(ROW_CLAIM, lambda r: duration(f(r).first_claim_s)),
        row(ROW_CLAIMED_EARLY, lambda r: count(f(r).claimed_early)),
        row(ROW_CONNECTIONS, lambda r: count(r.smtp.sessions)),
        row(ROW_BATCH_MESSAGES, lambda r: f"{count(r.batch_messages)} / {count(r.batches)}"),
        row("Lease, renewed every third of it", lambda r: f"{r.settings['lease_seconds']:g} s"),
        row(ROW_RSS_MAIN, lambda r: peaks_text(r.memory, "worker main")),
        row(ROW_RSS_CHILDREN, lambda r: peaks_text(r.memory, "worker child")),
        row(ROW_RSS_SCHEDULER, lambda r: peaks_text(r.memory, "scheduler")),
        row(ROW_SCHEDULE, lambda r: duration(r.schedule_seconds)),
        row(ROW_CPU_WORKERS, lambda r: cpus_of(r.cpu, "worker children", "worker main")),
        row(ROW_CPU_OTHERS, lambda r: cpus_others(r.cpu)),
        row(ROW_CPU_PER_MESSAGE, lambda r: cpu_per_message(r.cpu, f(r).sent)),
    ]
    first = runs[0]
    lines = [
        "## Our sending path",
        "",
        f"Scheduler and {first.workers} worker processes (`distributor worker`, its default of "
        "one per CPU plus one) on PostgreSQL and Redis, default settings: batches of "
        f"{first.settings['batch_size']}, claims of {first.settings['claim_chunk']}, arming "
        f"{first.settings['arm_lead_seconds']:g} s ahead, idle batches queued again after "
        f"{first.settings['redispatch_after_seconds']:g} s; the send is scheduled "
        f"{first.settings['lead_seconds']:g} s before its embargo.",
        "",
        *table(header, rows),
        "",
    ]
    for r in runs:
        lines.append(f"- {r.size:,}: {cpu_breakdown(r.cpu, r.quiet)}.")
        lines += attempts_note(f"{r.size:,}", r.attempts)
        lines += [f"- {r.size:,}: {note}" for note in r.notes]
    return [*lines, ""]


def baseline_section(report: BenchReport) -> list[str]:
    naive, ours = report.naive, report.naive_compared_with
    lines = ["## Baseline: the naive Celery pattern", ""]
    if naive is None or ours is None:
        return [*lines, "Not run this time (`--skip-naive`).", "", f"| {ROW_NAIVE} | n/a |", ""]
    lines += [
        "What a user following the tutorials would write (`benchmarks/naive_app.py`): one "
        "Celery task per email queued with the embargo as its ETA, the ORM loading the row, "
        "the contact and the release, Jinja2 rendering the HTML, html2text making the text "
        "part, a stdlib `EmailMessage`, a new `smtplib` connection per email, and a commit "
        f"per row. Same database, data, receiver, machine and number of worker processes "
        f"({naive.workers}), in the same run.",
        "",
    ]
    same = ours.size == naive.size
    ours_label = f"Ours ({ours.size:,})" if not same else "Ours"
    rows = [
        ["Recipients", count(ours.figures.recipients), count(naive.figures.recipients)],
        [ROW_THROUGHPUT, rate(ours.figures.throughput), f"**{rate(naive.figures.throughput)}**"],
        [ROW_FIRST, duration(ours.figures.first_s), duration(naive.figures.first_s)],
        [ROW_LAST, duration(ours.figures.last_s), duration(naive.figures.last_s)],
        [ROW_EARLY, count(ours.figures.early), count(naive.figures.early)],
        [ROW_MESSAGE_SIZE, size_of_ours(report.components), f"{naive.message_bytes:,} bytes"],
        [ROW_CONNECTIONS, count(ours.smtp.sessions), count(naive.smtp.sessions)],
        [
            ROW_RSS_MAIN,
            peaks_text(ours.memory, "worker main"),
            peaks_text(naive.memory, "naive worker main"),
        ],
        [
            ROW_RSS_CHILDREN,
            peaks_text(ours.memory, "worker child"),
            peaks_text(naive.memory, "naive worker child"),
        ],
        [
            ROW_CPU_WORKERS,
            cpus_of(ours.cpu, "worker children", "worker main"),
            cpus_of(naive.cpu, "worker children", "worker main"),
        ],
        [ROW_CPU_OTHERS, cpus_others(ours.cpu), cpus_others(naive.cpu)],
        [
            ROW_CPU_PER_MESSAGE,
            cpu_per_message(ours.cpu, ours.figures.sent),
            cpu_per_message(naive.cpu, naive.figures.sent),
        ],
    ]
    ratio = report.ratio
    lines += table(["", ours_label, f"Naive ({naive.size:,})"], rows)
    lines += [
        "",
        f"{ROW_NAIVE}: {rate(naive.figures.throughput)}. "
        f"**{ROW_RATIO}: {'n/a' if ratio is None else f'{ratio:.1f}x'}**"
        + ("" if same else f" (ours measured on {ours.size:,}, the naive run on {naive.size:,})")
        + f". Queueing the {naive.size:,} ETA tasks took {duration(naive.publish_seconds)} "
        "before the embargo and is not counted.",
        "",
    ]
    lines.append(f"- naive: {cpu_breakdown(naive.cpu, naive.quiet)}.")
    lines += attempts_note("naive", naive.attempts)
    lines += [f"- naive: {note}" for note in naive.notes]
    return [*lines, ""]


def components_section(report: BenchReport) -> list[str]:
    c = report.components
    lines = ["## Components", "", "Each on its own in the benchmark process (one core)."]
    if c is None:
        return [*lines, "", "Not run this time (`--skip-components`).", ""]

    def how(component: str, text: str) -> str:
        problem = c.problems.get(component)
        return f"**could not be measured**: {problem}" if problem else text

    rows = [
        [
            ROW_IMPORT,
            rate(c.import_rate, "contacts/s"),
            how(
                "import",
                f"{c.import_rows:,} new rows through `parse_contacts_csv` (validation, "
                f"{duration(c.import_parse_seconds)}) and `import_contacts` with its commit "
                f"({duration(c.import_store_seconds)})",
            ),
        ],
        [
            f"{ROW_AUDIENCE} for {c.audience_contacts:,} contacts",
            duration(c.audience_seconds),
            how(
                "audience",
                "`schedule_send` on two overlapping lists: the distinct union, "
                f"{c.audience_deliveries:,} pending deliveries and their events, batch numbers "
                "(rolled back afterwards)",
            ),
        ],
        [
            f"{ROW_ARMING} for {c.audience_contacts:,} contacts",
            duration(c.arming_seconds),
            how(
                "audience",
                "`refresh_audience`, as the tick runs it when it arms the send: the lists "
                f"read again, {c.arming_joined:,} contacts who joined since scheduling added "
                "in new batches, leavers cancelled (rolled back afterwards)",
            ),
        ],
        [
            ROW_BUILD,
            rate(c.build_rate),
            how(
                "build",
                f"`MessageBuilder.build` from `Runtime.make_builder`, {c.build_count:,} "
                "recipients, multipart HTML + text",
            ),
        ],
        *_signing_rows(c, how),
        *_recording_rows(c, how),
    ]
    return [*lines, "", *table(["Component", "Figure", "How"], rows, "lrl"), ""]


def _signing_rows(c: ComponentFigures, how: Callable[[str, str], str]) -> list[list[str]]:
    if not c.signed_builds:
        return [[ROW_SIGNED, "n/a", how("signed build", "not measured")]]
    return [
        [
            f"{ROW_SIGNED}, {algorithm}",
            rate(count / seconds if seconds else None),
            f"as above, each message then signed by `DkimSigner.sign` ({algorithm}, relaxed/"
            f"relaxed, through OpenSSL), {count:,} recipients",
        ]
        for algorithm, (count, seconds) in c.signed_builds.items()
    ]


def _recording_rows(c: ComponentFigures, how: Callable[[str, str], str]) -> list[list[str]]:
    if not c.recording:
        return [[ROW_RECORD, "n/a", how("record", "not measured")]]
    rows = []
    for cost in c.recording:
        label = "a commit per outcome" if cost.group == 1 else f"commits of {cost.group}"
        cpu = cost.per_outcome_ms(cost.cpu_seconds)
        database = cost.per_outcome_ms(cost.database_cpu_seconds)
        rows.append(
            [
                f"{ROW_RECORD}, {label}",
                _ms(cpu + database) + " CPU",
                f"{cost.count:,} outcomes through `OutcomeRecorder.record_many`, as a worker "
                f"records them (`synchronous_commit` off): {_ms(cpu)} of this process's CPU "
                f"and {_ms(database)} of PostgreSQL's per outcome, "
                f"{_ms(cost.per_outcome_ms(cost.seconds))} end to end",
            ]
        )
    return rows


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f} ms"


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "**missed**")


def targets_section(report: BenchReport) -> list[str]:
    rows: list[list[str]] = []
    for r in report.ours:
        tp = r.figures.throughput
        met = None if tp is None else tp >= TARGET_THROUGHPUT
        stretch = " (stretch 5,000: met)" if tp and tp >= STRETCH_THROUGHPUT else ""
        rows.append(
            [
                f"{r.size:,}: at least {TARGET_THROUGHPUT:,.0f} msg/s end to end",
                rate(tp) + stretch,
                _verdict(met),
            ]
        )
    ratio = report.ratio
    rows.append(
        [
            f"At least {TARGET_RATIO:g}x the naive baseline",
            "n/a" if ratio is None else f"{ratio:.1f}x",
            _verdict(None if ratio is None else ratio >= TARGET_RATIO),
        ]
    )
    smallest = report.ours[0]
    first, last = smallest.figures.first_s, smallest.figures.last_s
    rows += [
        [
            f"{smallest.size:,}: first message within {duration(TARGET_FIRST_S)} of the embargo",
            duration(first),
            _verdict(None if first is None else first <= TARGET_FIRST_S),
        ],
        [
            f"{smallest.size:,}: last message within {duration(TARGET_LAST_S)}",
            duration(last),
            _verdict(None if last is None else last <= TARGET_LAST_S),
        ],
    ]
    for r in report.ours:
        rows.append(
            [
                f"{r.size:,}: none accepted early",
                count(r.figures.early),
                _verdict(r.figures.early == 0),
            ]
        )
    rows += recovery_targets(report)
    rows += dkim_targets(report)
    rows += rate_targets(report)
    largest = report.ours[-1]
    biggest_child = peak_of(largest.memory, "worker child")
    big = mb(biggest_child)
    rows.append(
        [
            f"{largest.size:,}: worker RSS under {TARGET_RSS_MB:g} MB",
            megabytes(biggest_child),
            _verdict(None if big is None else big < TARGET_RSS_MB),
        ]
    )
    if len(report.ours) > 1:
        small = mb(peak_of(smallest.memory, "worker child"))
        growth = None if big is None or not small else big / small - 1
        rows.append(
            [
                f"Worker RSS at {largest.size:,} within {TARGET_RSS_GROWTH:.0%} of "
                f"{smallest.size:,}",
                "n/a" if growth is None else f"{growth:+.1%}",
                _verdict(None if growth is None else abs(growth) <= TARGET_RSS_GROWTH),
            ]
        )
    lines = [
        "## Targets",
        "",
        f"Targets for a 2-CPU machine; this one has {report.machine.cpus}.",
        "",
        *table(["Target", "Measured", ""], rows, "lrc"),
        "",
    ]
    if any("missed" in row[2] for row in rows):
        lines += ["Where a target is missed, the profile below shows where the time goes.", ""]
    return lines


def render(report: BenchReport) -> str:
    m = report.machine
    lines = [
        "# Benchmarks",
        "",
        f"Measured on {m.date} on a {m.cpus}-CPU machine, code at commit {m.revision}, by "
        "`make bench` "
        "(`python -m benchmarks`), which rewrites this file; rerun it to get your machine's "
        "figures. Options: `python -m benchmarks --help`.",
        "",
    ]
    if "smtp-sink" not in m.receiver:
        lines += [
            f"**Receiver: {m.receiver}.** Postfix's smtp-sink was not used, so a Python "
            "receiver stood in; it may limit the figures.",
            "",
        ]
    if not report.sound:
        lines += [
            "**Warning: some deliveries did not finish, or went early; see the tables.**",
            "",
        ]
    lines += [f"- {note}" for note in report.notes]
    if report.notes:
        lines.append("")
    lines += results_section(report)
    lines += cost_section(report)
    lines += dkim_section(report)
    lines += rate_section(report)
    lines += relay_section(report)
    lines += recovery_section(report)
    lines += baseline_section(report)
    lines += components_section(report)
    lines += targets_section(report)
    lines += profile_section(report)
    lines += method_section(report)
    lines += machine_section(report)
    return "\n".join(lines).rstrip("\n") + "\n"


def write(path: Path, text: str) -> None:
    """Write the report, keeping any hand-written notes below KEEP_MARKER."""
    kept = ""
    if path.exists():
        old = path.read_text(encoding="utf-8")
        if KEEP_MARKER in old:
            kept = old.split(KEEP_MARKER, 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n" + KEEP_MARKER + kept.rstrip("\n") + "\n", encoding="utf-8")


def write_raw(path: Path, report: BenchReport) -> None:
    """Every figure as JSON, for comparing runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = asdict(report)
    data["ratio"] = report.ratio
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
