"""The report's pure parts: outcomes counted per second around the embargo, the chart laid
out from them, failure reasons without addresses, and the export's CSV."""

from __future__ import annotations

import csv
import io

from distributor.reporting.chart import COMPACT, WIDE, build_chart, nice_ceiling, seconds_label
from distributor.reporting.delivery_export import COLUMNS, csv_text
from distributor.reporting.failure_reasons import without_addresses
from distributor.reporting.timeline import MAX_BUCKETS, Outcome, build_timeline


def burst(count: int, *, start: float = 0.1, every: float = 0.01, accepted: bool = True):
    return [Outcome(start + i * every, accepted) for i in range(count)]


def test_a_burst_at_the_lift_is_counted_per_second_from_a_few_seconds_before() -> None:
    timeline = build_timeline([*burst(300), Outcome(0.5, False), Outcome(2.2, False)])

    assert timeline.bucket_seconds == 1
    assert timeline.start == -5, "the seconds before the lift are shown, empty"
    assert timeline.accepted[:5] == [0, 0, 0, 0, 0]
    assert timeline.accepted[5:9] == [90, 100, 100, 10]
    assert timeline.refused[5] == 1 and timeline.refused[7] == 1
    assert timeline.total == 302 and timeline.earlier == timeline.later == 0
    assert timeline.peak_index == 7 and timeline.per_second(7) == 101


def test_anything_early_is_shown_before_the_embargo_line() -> None:
    timeline = build_timeline([Outcome(-12.5, True), *burst(10)])

    assert timeline.start == -13
    assert timeline.accepted[0] == 1
    chart = build_chart(timeline, embargo_label="embargo 09:00:00 BST")
    assert chart.embargo_x is not None and chart.embargo_x > chart.left


def test_a_long_send_gets_wider_buckets_and_stragglers_are_counted_apart() -> None:
    steady = [Outcome(i * 0.5, True) for i in range(1200)]  # ten minutes at 2 a second
    retried = [Outcome(3000.0, True)]

    timeline = build_timeline(steady)
    assert timeline.bucket_seconds == 10
    assert len(timeline.accepted) <= MAX_BUCKETS + 1
    assert timeline.per_second(3) == 2

    with_tail = build_timeline(burst(500) + retried)
    assert with_tail.bucket_seconds == 1 and with_tail.later == 1
    assert with_tail.end < 20


def test_a_send_that_went_out_long_after_its_embargo_is_charted_from_its_first_outcome() -> None:
    timeline = build_timeline(burst(50, start=3600.0))

    assert timeline.start == 3595 and timeline.earlier == 0
    chart = build_chart(timeline, embargo_label="embargo 09:00:00 BST")
    assert chart.embargo_x is None, "the embargo is off this chart"


def test_nothing_sent_yet_is_an_empty_chart_that_says_so() -> None:
    chart = build_chart(build_timeline([]), embargo_label="embargo 09:00:00 BST")

    assert chart.bars == [] and chart.peak is None
    assert chart.summary == "No message has gone out yet."
    assert chart.embargo_x is not None


def test_the_chart_labels_its_axes_the_embargo_and_the_peak() -> None:
    timeline = build_timeline([*burst(300), Outcome(0.5, False)])

    for layout in (WIDE, COMPACT):
        chart = build_chart(timeline, embargo_label="embargo 09:00:00 BST", layout=layout)
        assert chart.width == layout.width
        assert chart.x_title == "seconds from the embargo"
        assert chart.y_title == "deliveries a second"
        assert chart.embargo_label == "embargo 09:00:00 BST"
        assert chart.peak is not None and chart.peak.text == "100/s"
        assert [t.label for t in chart.y_ticks][-1] == "200", "room above the peak"
        assert "0" in [t.label for t in chart.x_ticks]
        # Every bar within the plot; refused ones stacked on the accepted.
        for bar in chart.bars:
            assert chart.left <= bar.x and bar.x + bar.width <= chart.right + 0.01
            assert chart.top <= bar.y and bar.y + bar.height <= chart.bottom + 0.01
        refused = [bar for bar in chart.bars if not bar.accepted]
        assert [bar.words for bar in refused] == ["0 to +1 s: 1 failed or bounced"]
    wide = build_chart(timeline, embargo_label="", layout=WIDE)
    compact = build_chart(timeline, embargo_label="", layout=COMPACT)
    assert len(compact.x_ticks) < len(wide.x_ticks), "a phone's chart has fewer labels"


def test_labels_read_as_seconds_and_minutes() -> None:
    assert [seconds_label(s) for s in (0, 5, -10, 90, -600)] == [
        "0",
        "+5 s",
        "\u221210 s",
        "+1:30",
        "\u221210:00",
    ]
    assert [nice_ceiling(v) for v in (0, 1, 3, 7, 12, 130, 2100)] == [1, 1, 5, 10, 20, 200, 2500]


def test_failure_reasons_lose_the_addresses_they_quote() -> None:
    assert without_addresses("550 5.1.1 <ann@example.com>: no such user") == (
        "550 5.1.1 <recipient>: no such user"
    )
    assert without_addresses("550 user bob.b@mail.example.org. unknown") == (
        "550 user <recipient>. unknown"
    )
    assert without_addresses("421 4.7.0 try again later") == "421 4.7.0 try again later"


def test_the_export_writes_every_row_with_formulas_kept_as_text() -> None:
    rows = [
        [1, "public", n, f"r{n}@example.com", "=cmd|' /C calc'!A0", "", "sent", 1]
        + [""] * (len(COLUMNS) - 8)
        for n in range(1200)
    ]

    pieces = list(csv_text(rows, lines_per_piece=500))

    assert len(pieces) == 3
    read = list(csv.reader(io.StringIO("".join(pieces))))
    assert read[0] == list(COLUMNS) and len(read) == 1201
    assert read[1][4] == "'=cmd|' /C calc'!A0"
