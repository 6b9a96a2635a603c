"""The report's section on the installation's rate limit: its cost per message, the send
with a limit far above the achievable rate beside the unlimited one, and a send at a set
limit with the rate achieved against it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchmarks.formatting import count, duration, percent, rate, table
from benchmarks.rate_runs import TARGET_SHARE

if TYPE_CHECKING:
    from benchmarks.rate_runs import RateResult
    from benchmarks.report import BenchReport

TITLE = "## Rate limits"


def _share(result: RateResult) -> str:
    return "n/a" if result.share is None else percent(result.share)


def rate_targets(report: BenchReport) -> list[list[str]]:
    result = report.rate_limits
    if result is None or result.share is None:
        return []
    met = result.share >= TARGET_SHARE
    return [
        [
            f"{result.size:,}: a limit far above the achievable rate keeps "
            f"{TARGET_SHARE:.0%} of the unlimited throughput".replace("%", " %"),
            _share(result),
            "met" if met else "**missed**",
        ]
    ]


def rate_section(report: BenchReport) -> list[str]:
    result = report.rate_limits
    lines = [TITLE, ""]
    if result is None:
        return [*lines, "Not run this time (`--no-rate-limit`).", ""]
    cost = result.cost
    lines += [
        f"The limiter's own cost, {cost.acquisitions:,} acquisitions each: a message slot "
        f"from the GCRA Lua script on the local Redis takes **{cost.redis_script_us:.0f} µs** "
        f"a call ({cost.local_script_us:.0f} µs from the embedded mode's SQLite file); a "
        f"batch's pacing takes slots a few dozen at a time when the limit is far away, so a "
        f"message costs **{cost.paced_message_us:.1f} µs** "
        f"({cost.unlimited_message_us:.1f} µs with no limit set).",
        "",
    ]
    unlimited_label = "No limit" + (" (the main run above)" if result.unlimited_from_main else "")
    rows = [
        [
            unlimited_label,
            f"**{rate(result.unlimited.figures.throughput)}**",
            "",
            duration(result.unlimited.figures.last_s),
            "",
        ],
        [
            f"{result.far.limit:,.0f} msg/s (far above)",
            f"**{rate(result.far.achieved)}**",
            f"{_share(result)} of no limit",
            duration(result.far.run.figures.last_s),
            count(result.far.most_in_one_second),
        ],
        [
            f"{result.at_limit.limit:,.0f} msg/s",
            f"**{rate(result.at_limit.achieved)}**",
            "n/a"
            if result.at_limit.achieved is None
            else f"{percent(result.at_limit.achieved / result.at_limit.limit)} of the limit",
            duration(result.at_limit.run.figures.last_s),
            count(result.at_limit.most_in_one_second),
        ],
    ]
    lines += [
        f"The same {result.size:,}-recipient send with `DISTRIBUTOR_RATE_PER_SECOND` set, on "
        "Redis. Throughput runs from the embargo to the last acceptance. The busiest second "
        "counts replies in any window of one second as the workers timed them "
        "(`deliveries.finished_at`): a worker held up for a moment stamps the replies that "
        "came meanwhile together, so it reads above what the relay saw. The relay's own count "
        "is checked by `tests/test_rate_limits.py` (a relay that notes each arrival).",
        "",
        *table(
            ["Limit", "Throughput", "Against", "Last message", "Busiest second"],
            rows,
            "lrrrr",
        ),
        "",
    ]
    lines += [f"- {note}" for note in result.notes]
    return lines
