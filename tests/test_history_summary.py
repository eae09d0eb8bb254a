"""The overview's in-memory summary: small per target, and the very figures of full-precision rings."""

from __future__ import annotations

import gc
import random
import tracemalloc

import pytest

from tocsin.history.rollup import BUCKETS, DOWN, MAINTENANCE, UP, Rollup
from tocsin.history.summary import DAYS, HOURS, TargetSummary, uptime_percent

DAY = 86400
NOW = 20_000 * DAY + 13 * 3600 + 600


class Reference:
    """What the summary must read back: every hour and day summed in doubles, in arrival order,
    the latest 24 hours and 90 days held."""

    def __init__(self) -> None:
        self.hours: dict[int, list] = {}
        self.days: dict[int, list[float]] = {}

    def add(self, hour: int, day: int, state: str, weight: float, bucket: int) -> None:
        down = weight if state == DOWN else 0.0
        maintenance = weight if state == MAINTENANCE else 0.0
        if not self.hours or hour > max(self.hours) - HOURS:
            slot = self.hours.setdefault(hour, [0.0, 0.0, 0.0, [0] * BUCKETS])
            slot[0] += weight
            slot[1] += down
            slot[2] += maintenance
            slot[3][bucket] += 1
        if not self.days or day > max(self.days) - DAYS:
            times = self.days.setdefault(day, [0.0, 0.0, 0.0])
            times[0] += weight
            times[1] += down
            times[2] += maintenance

    def window(self, now: float, span: str) -> tuple[float, float, float, list[int]]:
        if span == "24h":
            current, latest = int(now // 3600), max(self.hours)
            held = [h for h in range(current - HOURS + 1, current + 1) if h in self.hours and h > latest - HOURS]
            closed, hist = [0.0, 0.0, 0.0], [0] * BUCKETS
            for hour in held[:-1] if held and held[-1] == current else held:
                for i in range(3):
                    closed[i] += self.hours[hour][i]
                hist = [a + b for a, b in zip(hist, self.hours[hour][3], strict=True)]
            if current in held:
                return (closed[0] + self.hours[current][0], closed[1] + self.hours[current][1],
                        closed[2] + self.hours[current][2], [a + b for a, b in zip(hist, self.hours[current][3], strict=True)])
            return closed[0], closed[1], closed[2], hist
        today, latest = int(now // DAY), max(self.days)
        closed = [0.0, 0.0, 0.0]
        for day in range(today - {"7d": 7, "30d": 30}[span] + 1, today):
            if day in self.days and day > latest - DAYS:
                for i in range(3):
                    closed[i] += self.days[day][i]
        opened = self.days.get(today, [0.0, 0.0, 0.0])
        return closed[0] + opened[0], closed[1] + opened[1], closed[2] + opened[2], []


@pytest.mark.parametrize("interval", [0.1, 0.3, 1.0, 10.0, 7.7, 300.0])
def test_figures_are_those_of_full_precision_rings(interval):
    """Closed hours and days are stored as float32 only while exact: a 0.1 s interval's sums are
    not, and must read back as the very doubles (late results into closed hours and days included)."""
    rnd = random.Random(int(interval * 10))
    summary, reference = TargetSummary(), Reference()
    t = NOW - 3 * DAY
    step = max(interval, 97.0)
    while t < NOW:
        at = t - (rnd.randrange(1, 30) * 3600 if rnd.random() < 0.03 else 0)  # a late result now and then
        state = rnd.choice([UP] * 6 + [DOWN, MAINTENANCE])
        bucket = rnd.randrange(BUCKETS)
        summary.add_result(int(at // 3600), int(at // DAY), state, interval, bucket)
        reference.add(int(at // 3600), int(at // DAY), state, interval, bucket)
        t += step
        if rnd.random() < 0.05:
            for span in ("24h", "7d", "30d"):
                got = summary.window(t, span)
                seconds, down, maintenance, hist = reference.window(t, span)
                assert (got.seconds, got.down_seconds, got.maintenance_seconds) == (seconds, down, maintenance)
                if span == "24h":
                    assert list(got.histogram) == list(hist) and got.count == sum(hist)
            bars = summary.day_bars(t, 4)
            for bar in bars:
                times = reference.days.get(bar.start // DAY)
                observed = times[0] - times[2] if times else 0.0
                expected = None if not times or observed <= 0 else max(0.0, 1.0 - times[1] / observed)
                assert bar.uptime == expected


def test_a_late_result_in_a_closed_day_counts_and_changes_the_past_version():
    summary = TargetSummary()
    for day in range(20_000 - 10, 20_001):
        summary.add_day_times(day, 86400.0, 0.0, 0.0)
    assert summary.uptime(NOW, "7d") == 1.0
    version = summary.past_version
    summary.add_day_times(20_000 - 3, 0.0, 864.0, 0.0)  # a closed day, stored compactly
    assert summary.past_version != version
    assert summary.window(NOW, "7d").down_seconds == 864.0
    assert uptime_percent(summary.uptime(NOW, "7d")) == "99.9 %"
    assert [bar.uptime for bar in summary.day_bars(NOW, 4)] == [0.99, 1.0, 1.0, 1.0]
    summary.add_day_times(20_000 - 3, 0.0, -864.0, 0.0)  # its down time gone again: the bar is whole
    assert summary.day_bars(NOW, 4)[0].uptime == 1.0


def test_an_hour_holds_more_results_of_one_bucket_than_16_bits_count():
    summary = TargetSummary()
    hour, day = int(NOW // 3600), int(NOW // DAY)
    for _ in range(70_000):
        summary.add_result(hour, day, UP, 0.05, 3)
    one = Rollup()
    one.add(UP, 0.05, 0.0, "", 3)
    summary.add(hour - 1, day, one)  # a closed hour after the widening
    window = summary.window(NOW, "24h")
    assert window.histogram[3] == 70_001 and window.count == 70_001


def test_a_summary_fed_a_day_and_viewed_takes_at_most_2_2_kb():
    """Tens of thousands of targets per shard: a day of results (some down, some in
    maintenance) and a page view must cost ≤ 2.2 KB per target (it was 7 KB)."""
    def build() -> TargetSummary:
        summary = TargetSummary()
        for day in range(20_000 - 89, 20_000):
            summary.add_day_times(day, 86400.0, 120.0 if day % 10 == 0 else 0.0, 0.0)
        t, i = NOW - DAY, 0
        while t < NOW:
            state = DOWN if i % 97 == 0 else MAINTENANCE if i % 211 == 0 else UP
            summary.add_result(int(t // 3600), int(t // DAY), state, 300.0, i % 4)
            t, i = t + 300, i + 1
        for span in ("24h", "7d", "30d"):
            summary.window(NOW, span)
        summary.day_bars(NOW)
        return summary

    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [build() for _ in range(300)]
        per_target = (tracemalloc.get_traced_memory()[0] - before) / len(kept)
    finally:
        tracemalloc.stop()
    assert per_target <= 2.2 * 1024, per_target


def test_a_result_older_than_the_rings_leaves_the_current_hour_and_day_alone():
    """A result a day late maps to the current hour's slot: it must not replace that hour."""
    summary = TargetSummary()
    hour, day = int(NOW // 3600), int(NOW // DAY)
    summary.add_result(hour, day, UP, 10.0, 1)
    summary.add_result(hour - HOURS, day - 1, DOWN, 10.0, 1)  # left out of the 24 h ring
    summary.add_result(hour - HOURS * DAYS, day - DAYS, DOWN, 10.0, 1)  # and of the 90-day ring
    assert summary.window(NOW, "24h").seconds == 10.0 and summary.uptime(NOW, "24h") == 1.0
    assert summary.window(NOW, "30d").down_seconds == 10.0  # yesterday's result counts in 30 days
