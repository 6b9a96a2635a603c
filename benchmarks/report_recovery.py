"""The report's sections on failure: recovery from a killed worker process, and what batch
leases and per-message recording cost in throughput and CPU."""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchmarks.formatting import (
    UNDER_TEST,
    count,
    cpu_per_message,
    cpus_others,
    duration,
    rate,
    table,
)
from benchmarks.profiling import CLAIM, LEASE, RECORD, RENEWAL, StepTime, step_time

if TYPE_CHECKING:
    from benchmarks.ours import OursResult
    from benchmarks.report import BenchReport
    from benchmarks.revision import RevisionResult

# The engine before batch leases and per-message recording, as its own report recorded it.
BEFORE_LEASES_REVISION = "61acd84"
BEFORE_LEASES_RECORDED = 2512.0  # msg/s, 10,000 recipients, in that revision's report
BEFORE_LEASES_OTHER_RUNS = (2692.0, 3375.0)  # msg/s, the range of other runs of that code
BEFORE_LEASES_CPU_MS = 0.66  # CPU time per message, all processes under test, same report
BEFORE_LEASES_SIZE = 10_000

ROW_RECOVERY_LEASE = "Lease (`DISTRIBUTOR_LEASE_SECONDS`)"
ROW_KILLED = "Worker pool process killed (SIGKILL)"
ROW_KILLED_CONNECTIONS = "SMTP connections it had open"
ROW_TAKEN_OVER = "Deliveries taken over from it"
ROW_KILL_TO_TAKEOVER = "Kill to takeover"
ROW_KILL_TO_LAST = "Kill to last delivery"
ROW_LOST = "Lost deliveries (not `sent` at the end)"
ROW_DUPLICATES = "Duplicates at the receiver (extra copies)"
ROW_RECOVERY_EARLY = "Arrived before the embargo (accepted or received)"
ROW_COST = "What leases and per-message recording cost"
REQUIRED_RECOVERY_ROWS = (
    ROW_RECOVERY_LEASE,
    ROW_KILLED,
    ROW_KILL_TO_LAST,
    ROW_LOST,
    ROW_DUPLICATES,
    ROW_RECOVERY_EARLY,
    ROW_COST,
)


def _bold(text: str) -> str:
    return f"**{text}**"


def recovery_section(report: BenchReport) -> list[str]:
    r = report.recovery
    lines = ["## Recovery from a killed worker process", ""]
    if r is None:
        rows = [[label, "n/a"] for label in (ROW_KILL_TO_LAST, ROW_LOST, ROW_DUPLICATES)]
        return [*lines, "Not run this time (`--skip-recovery`).", "", *table(["", ""], rows), ""]
    run = r.run
    settings = run.settings
    lines += [
        f"A send to {r.size:,} recipients with the same {run.workers} worker processes and "
        f"settings as above, scheduled {settings['lead_seconds']:g} s ahead. Once about a "
        "fifth of the messages had been accepted, the benchmark killed (SIGKILL) one worker "
        "pool process that held deliveries in `sending`, found from `deliveries.lease_owner`. "
        "Its batch leases then ran out, the scheduler took its batches over (what it held in "
        "`sending` became `deferred`, due at once) and the other processes sent the rest, "
        "with the same Message-IDs. Each of its relay connections may have had one message "
        "accepted whose outcome was not yet committed: those are sent twice, so the bound on "
        "duplicates is the number of connections it had open. The receiver was one of its "
        f"own for this send: {r.receiver}.",
        "",
    ]
    v = r.victim
    killed = (
        "not killed"
        if v is None
        else (
            f"pid {v.pid}, after {v.accepted:,} messages were accepted, "
            f"{duration(r.killed_after_s)} after the embargo"
        )
    )
    default = " (the production default)" if r.lease_seconds == r.default_lease_seconds else ""
    same_id = {
        True: ", each with the same Message-ID as its first copy",
        False: ", **with a different Message-ID**",
        None: "",
    }[r.same_message_id]
    rows = [
        ["Recipients", count(r.size)],
        [ROW_RECOVERY_LEASE, f"{r.lease_seconds:g} s{default}, renewed every third of it"],
        [ROW_KILLED, killed],
        [ROW_KILLED_CONNECTIONS, count(v.connections if v else None)],
        [ROW_TAKEN_OVER, f"{count(r.taken_over)} (in `sending` when the lease expired)"],
        [ROW_KILL_TO_TAKEOVER, duration(r.kill_to_takeover_s)],
        [_bold(ROW_KILL_TO_LAST), _bold(duration(r.kill_to_last_s))],
        ["Embargo to last delivery", duration(run.figures.last_s)],
        [_bold(ROW_LOST), _bold(count(r.lost))],
        [
            _bold(ROW_DUPLICATES),
            _bold(count(r.duplicates))
            + f" in {count(r.duplicated_recipients)} recipients (bound: {r.bound}, one per "
            f"connection it had open){same_id}",
        ],
        [_bold(ROW_RECOVERY_EARLY), _bold(count(r.early))],
        ["Claimed (`claimed_at`) before the embargo", count(r.claimed_early)],
        [
            "Copies the receiver accepted / recipients missing there",
            f"{count(r.copies)} / {count(r.missing)}",
        ],
        ["SMTP connections opened", count(run.smtp.sessions)],
    ]
    lines += [*table(["", ""], rows), ""]
    if r.victim is not None and r.kill_to_last_s is not None:
        lines += [
            f"The kill-to-last-delivery time is mostly the lease running out: a dead process "
            f"stops renewing, so its lease expires between {r.lease_seconds * 2 / 3:g} and "
            f"{r.lease_seconds:g} s after the kill, and the scheduler's next tick takes the "
            "batches over.",
            "",
        ]
    lines += [f"- {note}" for note in [*r.notes, *run.notes]]
    if r.notes or run.notes:
        lines.append("")
    return lines


def _step(report: BenchReport, label: str) -> StepTime | None:
    run = report.profiled
    if run is None or run.profile is None:
        return None
    return step_time(run.profile, label, run.figures.sent)


def _compared_run(report: BenchReport) -> OursResult | None:
    size = report.revision.size if report.revision else BEFORE_LEASES_SIZE
    same = [r for r in report.ours if r.size == size]
    return same[0] if same else (report.ours[0] if report.ours else None)


def _cpu_ms(run: OursResult) -> float | None:
    """CPU time per message of all processes under test, in ms."""
    if run.cpu is None or not run.figures.sent:
        return None
    used = sum(run.cpu.by_role.get(role, 0.0) for role in UNDER_TEST)
    return used / run.figures.sent * 1000


def _change(now: float | None, then: float | None) -> str:
    if not now or not then:
        return "n/a"
    return f"{(now / then - 1) * 100:+.0f} %"


def cost_section(report: BenchReport) -> list[str]:
    ours = _compared_run(report)
    lines = [f"## {ROW_COST}", ""]
    if ours is None:
        return [*lines, "No send was measured.", ""]
    now = ours.figures.throughput
    receiver = "smtp-sink" if "smtp-sink" in report.machine.receiver else "aiosmtpd"
    rows = [
        [
            f"This code ({report.machine.revision}), this run",
            _bold(rate(now)),
            cpu_per_message(ours.cpu, ours.figures.sent),
            cpus_others(ours.cpu),
            receiver,
        ]
    ]
    rev = report.revision
    if rev is not None:
        cpus = report.machine.cpus
        rows.append(
            [
                f"Commit {rev.revision}, this run",
                rate(rev.throughput),
                "n/a" if rev.cpu_per_message_ms is None else f"{rev.cpu_per_message_ms:.2f} ms",
                "n/a" if rev.other_cpus is None else f"{rev.other_cpus:.2f} of {cpus}",
                "smtp-sink" if rev.receiver and "smtp-sink" in rev.receiver else "aiosmtpd",
            ]
        )
    low, high = BEFORE_LEASES_OTHER_RUNS
    rows.append(
        [
            f"Commit {BEFORE_LEASES_REVISION}, as its report recorded it",
            f"{rate(BEFORE_LEASES_RECORDED)} ({low:,.0f} to {high:,.0f} in other runs)",
            f"{BEFORE_LEASES_CPU_MS:.2f} ms",
            "0.00 of 2",
            "smtp-sink",
        ]
    )
    lines += [
        f"The same {ours.size:,}-recipient send, this code against commit "
        f"{BEFORE_LEASES_REVISION}, the engine before batch leases and per-message recording "
        "(it recorded a chunk's outcomes in one transaction). The difference covers every "
        "change since that commit, not only those two; the profile and the recording "
        "component below give the recording's own cost. "
        + (
            f"Commit {rev.revision} was measured in this run by its own benchmark, on the same "
            "machine, services and kind of receiver."
            if rev is not None
            else "It was not measured in this run (`--compare-revision`)."
        ),
        "",
        *table(
            ["", "Throughput", "CPU per message", "CPUs busy elsewhere", "Receiver"], rows, "lrrrl"
        ),
        "",
    ]
    lines += _cost_line(report, ours, rev)
    if rev is not None and rev.notes:
        lines += [f"- {rev.revision}: {note}" for note in rev.notes] + [""]
    return lines


def _cost_line(report: BenchReport, ours: OursResult, rev: RevisionResult | None) -> list[str]:
    now = ours.figures.throughput
    parts = [
        f"**{ROW_COST}:** {rate(now)} now against {rate(BEFORE_LEASES_RECORDED)} recorded at "
        f"{BEFORE_LEASES_REVISION} ({_change(now, BEFORE_LEASES_RECORDED)})"
    ]
    if rev is not None and rev.throughput is not None:
        parts[0] += (
            f" and {rate(rev.throughput)} measured in this run ({_change(now, rev.throughput)})"
        )
    parts[0] += "."
    cpu = _cpu_ms(ours)
    if rev is not None and rev.cpu_per_message_ms is not None and cpu is not None:
        parts.append(
            f"CPU time per message, which other load on the machine hardly changes: {cpu:.2f} ms "
            f"against {rev.cpu_per_message_ms:.2f} ms ({cpu - rev.cpu_per_message_ms:+.2f} ms, "
            f"{_change(cpu, rev.cpu_per_message_ms)})."
        )
    record, claiming = _step(report, RECORD), _step(report, CLAIM)
    leasing, renewal = _step(report, LEASE), _step(report, RENEWAL)
    if record is not None:
        text = (
            f"In the profile, recording outcomes takes {record.running_ms:.3f} ms per message "
            "running in a worker (the outcome recorder's thread: on the CPU, or waiting for "
            f"the interpreter's lock) and {record.database_ms:.3f} ms waiting for PostgreSQL"
        )
        if claiming is not None:
            text += f"; claiming {claiming.running_ms:.3f} ms and {claiming.database_ms:.3f} ms"
        if leasing is not None and renewal is not None:
            lease_ms = leasing.running_ms + leasing.database_ms
            renew_ms = renewal.running_ms + renewal.database_ms
            text += f"; taking and giving back leases {lease_ms:.3f} ms, renewing {renew_ms:.3f} ms"
        parts.append(text + ".")
    else:
        parts.append("No profile this time, so no per-step figures.")
    c = report.components
    if c is not None and c.recording:
        costs = [
            f"{cost.per_outcome_ms(cost.cpu_seconds):.3f} ms of the worker's CPU and "
            f"{cost.per_outcome_ms(cost.database_cpu_seconds):.3f} ms of PostgreSQL's "
            + ("with a commit per outcome" if cost.group == 1 else f"in commits of {cost.group}")
            for cost in c.recording
        ]
        parts.append(f"Measured on its own, one recorded outcome costs {' against '.join(costs)}.")
    return [" ".join(parts), ""]


def recovery_targets(report: BenchReport) -> list[list[str]]:
    r = report.recovery
    if r is None:
        return []

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    return [
        [f"Recovery, {r.size:,}: no delivery lost", count(r.lost), verdict(r.lost == 0)],
        [
            f"Recovery, {r.size:,}: duplicates at most one per open connection ({r.bound})",
            count(r.duplicates),
            verdict(r.duplicates <= r.bound and r.same_message_id is not False),
        ],
        [f"Recovery, {r.size:,}: none before the embargo", count(r.early), verdict(r.early == 0)],
    ]
