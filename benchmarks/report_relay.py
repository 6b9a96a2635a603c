"""The report's section on a relay far away: the same send with a round trip added in
front of the receiver, beside the one on loopback."""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchmarks.formatting import count, duration, rate, table

if TYPE_CHECKING:
    from benchmarks.ours import OursResult
    from benchmarks.report import BenchReport

RELAY_TARGET_RATE = 2000.0  # msg/s at 20 ms, on this 2-core machine
RELAY_TARGET_LAST = 5.0  # seconds from the embargo to the last message at 20 ms


def _per_message(result: OursResult) -> str:
    sent = result.figures.sent
    if not result.round_trips or not sent:
        return "n/a"
    return f"{result.round_trips / sent:.2f}"


def relay_section(report: BenchReport) -> list[str]:
    runs = [r for r in report.ours if r.size in {x.size for x in report.relay_runs}][:1]
    runs += report.relay_runs
    if not report.relay_runs:
        return []
    rows = [
        [
            f"{r.relay_rtt_ms:g} ms",
            f"{r.size:,}",
            f"**{rate(r.figures.throughput)}**",
            duration(r.figures.first_s),
            duration(r.figures.last_s),
            count(r.connections_used),
            _per_message(r),
            count(r.figures.early),
        ]
        for r in runs
    ]
    lines = [
        "## A relay far away",
        "",
        "The same send with the receiver behind a user-space TCP proxy on loopback that holds "
        "each direction's bytes for half the round trip (TCP_NODELAY on both sides; the kernel "
        "here has no netem). Each worker process keeps `DISTRIBUTOR_SMTP_CONNECTIONS` "
        "connections busy; smtp-sink offers PIPELINING, so a message costs one round trip "
        "once the connection is going (the next message's envelope rides with the end of the "
        "one before). Round trips are counted by the workers (each wait for the relay).",
        "",
        *table(
            [
                "Round trip",
                "Recipients",
                "Throughput",
                "First message",
                "Last message",
                "Connections used",
                "Round trips a message",
                "Early",
            ],
            rows,
            "lrrrrrrr",
        ),
        "",
    ]
    for r in report.relay_runs:
        if r.relay_rtt_ms == 20.0 and r.figures.throughput is not None:
            met = (
                r.figures.throughput >= RELAY_TARGET_RATE
                and r.figures.last_s is not None
                and r.figures.last_s <= RELAY_TARGET_LAST
            )
            lines += [
                f"Target at 20 ms: at least {RELAY_TARGET_RATE:,.0f} msg/s and the last message "
                f"within {RELAY_TARGET_LAST:g} s: **{'met' if met else 'missed'}**.",
                "",
            ]
    return lines
