"""The deliveries-per-second chart as shapes and words: a template draws them as SVG.

Everything a reader needs is written on the chart, not behind a pointer: both axes are
labelled with their units, the embargo is a marked line named with its local time, and the
busiest second carries its number.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from distributor.reporting.timeline import Timeline

X_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600)
Y_TICKS = 4
HEADROOM = 1.15
MINUS = "\u2212"


@dataclass(frozen=True, slots=True)
class Layout:
    """A canvas and the room around its plot for the tick labels and the axis titles."""

    name: str
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    # The least distance between two labels of the time axis.
    label_spacing: int


# For a page as wide as a desktop's, and one drawn for a phone's width, whose words would be
# too small if the wide one were shrunk to fit.
WIDE = Layout("wide", 600, 290, left=72, right=24, top=38, bottom=64, label_spacing=80)
COMPACT = Layout("compact", 340, 250, left=54, right=22, top=36, bottom=58, label_spacing=66)
LAYOUTS = (WIDE, COMPACT)


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    accepted: bool
    # What the bar stands for, as words (the SVG's <title>, for a pointer and screen readers).
    words: str


@dataclass(frozen=True, slots=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True, slots=True)
class Label:
    x: float
    y: float
    text: str


@dataclass(frozen=True, slots=True)
class Chart:
    layout: str
    width: int
    height: int
    left: float
    top: float
    right: float
    bottom: float
    bars: list[Bar]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    # Where the embargo line is; None when the window does not reach back to it.
    embargo_x: float | None
    embargo_label: str
    peak: Label | None
    summary: str
    x_title: str
    y_title: str


def seconds_label(offset: int) -> str:
    """'0', '+5 s', '-10 s' (with a true minus sign), '+1:30' (minutes from a minute on)."""
    if offset == 0:
        return "0"
    sign = "+" if offset > 0 else MINUS
    span = abs(offset)
    if span < 60:
        return f"{sign}{span} s"
    return f"{sign}{span // 60}:{span % 60:02d}"


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least `value` (>= 1)."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * power >= value:
            return float(factor * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def build_chart(timeline: Timeline, *, embargo_label: str, layout: Layout = WIDE) -> Chart:
    """Lay the timeline out on the layout's canvas."""
    left, top = layout.left, layout.top
    right, bottom = layout.width - layout.right, layout.height - layout.bottom
    plot_width, plot_height = right - left, bottom - top
    buckets = len(timeline.accepted)
    slot = plot_width / buckets
    gap = min(2.0, slot * 0.2)
    rates = [timeline.per_second(i) for i in range(buckets)]
    # Headroom above the busiest bar for its number, clear of the embargo's label.
    top_rate = nice_ceiling(max(rates, default=0.0) * HEADROOM)

    def y_of(rate: float) -> float:
        return bottom - plot_height * rate / top_rate

    def x_of(offset: float) -> float:
        return left + (offset - timeline.start) / timeline.bucket_seconds * slot

    unit = "second" if timeline.bucket_seconds == 1 else f"{timeline.bucket_seconds} s"
    bars = []
    for index in range(buckets):
        at = timeline.bucket_start(index)
        when = f"{seconds_label(at)} to {seconds_label(at + timeline.bucket_seconds)}"
        base = float(bottom)
        for count, accepted in (
            (timeline.accepted[index], True),
            (timeline.refused[index], False),
        ):
            if not count:
                continue
            height = plot_height * count / timeline.bucket_seconds / top_rate
            what = "accepted by the relay" if accepted else "failed or bounced"
            bars.append(
                Bar(
                    x=x_of(at) + gap / 2,
                    y=base - height,
                    width=max(slot - gap, 0.5),
                    height=height,
                    accepted=accepted,
                    words=f"{when}: {count:,} {what}",
                )
            )
            base -= height
    peak = None
    if timeline.peak_index is not None:
        index = timeline.peak_index
        peak = Label(
            x=x_of(timeline.bucket_start(index)) + slot / 2,
            y=y_of(rates[index]) - 6,
            text=f"{_number(rates[index])}/s",
        )
    embargo_x = x_of(0) if timeline.start <= 0 <= timeline.end else None
    return Chart(
        layout=layout.name,
        width=layout.width,
        height=layout.height,
        left=left,
        top=top,
        right=right,
        bottom=bottom,
        bars=bars,
        x_ticks=_x_ticks(timeline, x_of, most=max(2, int(plot_width // layout.label_spacing))),
        y_ticks=[
            Tick(at=y_of(top_rate * i / Y_TICKS), label=_number(top_rate * i / Y_TICKS))
            for i in range(Y_TICKS + 1)
        ],
        embargo_x=embargo_x,
        embargo_label=embargo_label,
        peak=peak,
        summary=_summary(timeline, rates, unit),
        x_title="seconds from the embargo",
        y_title="deliveries a second",
    )


def _x_ticks(timeline: Timeline, x_of: Callable[[float], float], *, most: int) -> list[Tick]:
    span = timeline.end - timeline.start
    step = next((s for s in X_STEPS if span / s <= most), X_STEPS[-1])
    step = max(step, timeline.bucket_seconds)
    first = step * math.ceil(timeline.start / step)
    return [
        Tick(at=x_of(offset), label=seconds_label(offset))
        for offset in range(first, timeline.end + 1, step)
    ]


def _summary(timeline: Timeline, rates: list[float], unit: str) -> str:
    if not timeline.total:
        return "No message has gone out yet."
    words = [f"{timeline.shown:,} outcomes shown, counted per {unit}"]
    if timeline.peak_index is not None:
        at = timeline.bucket_start(timeline.peak_index)
        words.append(
            f"busiest at {seconds_label(at)} from the embargo, "
            f"{_number(rates[timeline.peak_index])} a second"
        )
    if timeline.earlier:
        words.append(f"{timeline.earlier:,} earlier, not shown")
    if timeline.later:
        words.append(f"{timeline.later:,} later (retries), not shown")
    return "; ".join(words) + "."
