"""What the overview shows of one target, kept in memory so a page of a thousand targets
reads no database: the last 24 hours and the last 90 days in fixed rings.

Each slot of a ring holds one hour (or day) and the time it starts; a slot whose start is
not the one asked for is stale and counts as empty, so nothing is ever shifted or pruned.
The recorder feeds the rings from the same results as the database's rollups, and fills
them from the database at start, so the page after a restart shows what it showed before.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass

from .rollup import BUCKETS, DOWN, MAINTENANCE, Rollup

HOURS, DAYS = 24, 90
_FIELDS = 3  # seconds, down, maintenance


@dataclass(frozen=True)
class DayBar:
    start: int  # unix time of 00:00 UTC
    uptime: float | None  # None: no result that day


class TargetSummary:
    """The rings, and the sums of their closed slots cached: a page of a thousand targets then
    adds one open hour and one open day per target instead of walking 24 hours and 30 days.
    `past_version` changes whenever a closed day changes, so a page may cache what it drew
    of the closed days under (today, past_version)."""

    __slots__ = ("hour_start", "hour_time", "hour_hist", "day_start", "day_time", "past_version", "_latest_hour",
                 "_latest_day", "_closed")

    def __init__(self) -> None:
        self.hour_start = array("q", [-1] * HOURS)
        self.hour_time = array("d", [0.0] * (HOURS * _FIELDS))
        self.hour_hist = array("I", [0] * (HOURS * BUCKETS))
        self.day_start = array("q", [-1] * DAYS)
        self.day_time = array("d", [0.0] * (DAYS * _FIELDS))
        self.past_version = 0
        self._latest_hour = self._latest_day = -1
        self._closed: dict[tuple[str, int], Rollup] = {}  # (span, current hour or day) -> sum of the closed slots

    def add(self, hour: int, day: int, rollup: Rollup) -> None:
        """Fold a rollup that lies within hour `hour` (an hour number) and day `day` (a day number)."""
        self.add_hour(hour, rollup)
        self.add_day(day, rollup)

    def _touch(self, span: str, number: int) -> None:
        """Hour or day `number` changes: drop a cached sum of closed slots that includes it."""
        for key in [k for k in self._closed if k[0] == span and number < k[1]]:
            del self._closed[key]
            if span != "24h":
                self.past_version += 1

    def add_hour(self, hour: int, rollup: Rollup) -> None:
        self._touch("24h", hour)
        self._latest_hour = max(self._latest_hour, hour)
        slot = hour % HOURS
        if self.hour_start[slot] != hour:
            self.hour_start[slot] = hour
            for i in range(_FIELDS):
                self.hour_time[slot * _FIELDS + i] = 0.0
            for i in range(BUCKETS):
                self.hour_hist[slot * BUCKETS + i] = 0
        base = slot * _FIELDS
        self.hour_time[base] += rollup.seconds
        self.hour_time[base + 1] += rollup.down_seconds
        self.hour_time[base + 2] += rollup.maintenance_seconds
        for i, n in enumerate(rollup.histogram):
            if n:
                self.hour_hist[slot * BUCKETS + i] += n

    def add_result(self, hour: int, day: int, state: str, weight: float, bucket: int) -> None:
        """One result, without building a rollup for it (the history thread's per-result path)."""
        slot = hour % HOURS
        if self._closed:
            self._touch("24h", hour)
        if self.hour_start[slot] != hour or hour < self._latest_hour:
            one = Rollup()
            one.add(state, weight, 0.0, "", bucket)
            self.add(hour, day, one)
            return
        base = slot * _FIELDS
        self.hour_time[base] += weight
        self.hour_hist[slot * BUCKETS + bucket] += 1
        if state == DOWN:
            self.hour_time[base + 1] += weight
        elif state == MAINTENANCE:
            self.hour_time[base + 2] += weight
        dslot = day % DAYS
        if self._closed:
            self._touch("7d", day)
            self._touch("30d", day)
        if self.day_start[dslot] != day or day < self._latest_day:
            one = Rollup()
            one.add(state, weight, 0.0, "", bucket)
            self.add_day(day, one)
            return
        base = dslot * _FIELDS
        self.day_time[base] += weight
        if state == DOWN:
            self.day_time[base + 1] += weight
        elif state == MAINTENANCE:
            self.day_time[base + 2] += weight

    def add_day(self, day: int, rollup: Rollup) -> None:
        self.add_day_times(day, rollup.seconds, rollup.down_seconds, rollup.maintenance_seconds)

    def add_day_times(self, day: int, seconds: float, down: float, maintenance: float) -> None:
        self._touch("7d", day)
        self._touch("30d", day)
        if day < self._latest_day:
            self.past_version += 1  # a closed day changed: a bar drawn of it is stale
        self._latest_day = max(self._latest_day, day)
        slot = day % DAYS
        if self.day_start[slot] != day:
            self.day_start[slot] = day
            for i in range(_FIELDS):
                self.day_time[slot * _FIELDS + i] = 0.0
        base = slot * _FIELDS
        self.day_time[base] += seconds
        self.day_time[base + 1] += down
        self.day_time[base + 2] += maintenance

    # ------------------------------------------------------------ reading

    def window(self, now: float, span: str) -> Rollup:
        """The rollup of the last 24 h (whole hours, the current one included) or of the last
        7 or 30 days (whole UTC days, today included): what uptime figures are read from."""
        if span == "24h":
            current = int(now // 3600)
            closed = self._closed.get((span, current))
            if closed is None:
                closed = self._keep(span, current, self._hours(current - HOURS + 1, current))
            out = Rollup()
            out.merge(closed)
            out.merge(self._hours(current, current + 1))
            out.count = sum(out.histogram)
            return out
        days = {"7d": 7, "30d": 30, "90d": 90}[span]
        today = int(now // 86400)
        closed = self._closed.get((span, today))
        if closed is None:
            closed = self._keep(span, today, self._days(today - days + 1, today))
        out = Rollup()
        out.merge(closed)
        out.merge(self._days(today, today + 1))
        return out

    def _keep(self, span: str, current: int, closed: Rollup) -> Rollup:
        for key in [k for k in self._closed if k[0] == span]:
            del self._closed[key]  # an hour or a day has passed: the old sum is of no use
        self._closed[(span, current)] = closed
        return closed

    def _hours(self, first: int, end: int) -> Rollup:
        out = Rollup()
        for hour in range(first, end):
            slot = hour % HOURS
            if self.hour_start[slot] == hour:
                self._fold(out, self.hour_time, slot)
                for i in range(BUCKETS):
                    out.histogram[i] += self.hour_hist[slot * BUCKETS + i]
        return out

    def _days(self, first: int, end: int) -> Rollup:
        out = Rollup()
        for day in range(first, end):
            slot = day % DAYS
            if self.day_start[slot] == day:
                self._fold(out, self.day_time, slot)
        return out

    @staticmethod
    def _fold(out: Rollup, values: array, slot: int) -> None:
        out.seconds += values[slot * _FIELDS]
        out.down_seconds += values[slot * _FIELDS + 1]
        out.maintenance_seconds += values[slot * _FIELDS + 2]

    def uptime(self, now: float, span: str) -> float | None:
        return self.window(now, span).uptime()

    def day_bars(self, now: float, days: int = DAYS) -> list[DayBar]:
        """One bar per UTC day, oldest first, today last."""
        today = int(now // 86400)
        bars = []
        for day in range(today - days + 1, today + 1):
            slot = day % DAYS
            uptime = None
            if self.day_start[slot] == day:
                seconds, down, maintenance = self.day_time[slot * _FIELDS:slot * _FIELDS + _FIELDS]
                observed = seconds - maintenance
                uptime = None if observed <= 0 else max(0.0, 1.0 - down / observed)
            bars.append(DayBar(day * 86400, uptime))
        return bars


def uptime_percent(uptime: float | None) -> str:
    """Uptime as people read it: one decimal, never rounded up to 100.0 when something failed."""
    if uptime is None:
        return "–"
    percent = uptime * 100
    text = f"{percent:.1f}"
    if text == "100.0" and uptime < 1.0:
        text = "99.9"
    return text + " %"
