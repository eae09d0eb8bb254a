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
_TODAY = HOURS * _FIELDS  # where today's times follow the hours' in TargetSummary._times
_TIMES = _TODAY + _FIELDS
# TargetSummary._cache: the hour it was summed at, the closed hours' times and histogram; then
# for 7, 30 and 90 days the day it was summed at and the closed days' times. -1: not summed.
_CACHE_HIST = 4
_CACHE_7D = _CACHE_HIST + BUCKETS
_CACHE_30D, _CACHE_90D = _CACHE_7D + 4, _CACHE_7D + 8
_EMPTY_CACHE = [-1.0, 0.0, 0.0, 0.0] + [0.0] * BUCKETS + [-1.0, 0.0, 0.0, 0.0] * 3
_DAY_SPANS = {"7d": (_CACHE_7D, 7), "30d": (_CACHE_30D, 30), "90d": (_CACHE_90D, 90)}


@dataclass(frozen=True)
class DayBar:
    start: int  # unix time of 00:00 UTC
    uptime: float | None  # None: no result that day


class TargetSummary:
    """The rings, and the sums of their closed slots cached: a page of a thousand targets then
    adds one open hour and one open day per target instead of walking 24 hours and 30 days.
    `past_version` changes whenever a closed day changes, so a page may cache what it drew
    of the closed days under (today, past_version).

    A shard holds tens of thousands of these, so they are kept small (bench/memory_per_target.py):
    - a ring holds the latest hour (day) and the ones before it; a slot is emptied when the
      ring moves past it, so no slot needs to remember its start;
    - the hours' times and today's are one array of doubles, the hours' histograms one array of
      16-bit counts (widened to 32 bits the first time a count would overflow);
    - closed days are written once, when a day closes (or a late result lands in one), as
      float32 — exactly: the first value float32 cannot hold exactly widens the ring to
      doubles, so every figure read back is the double the old full-precision ring held. The
      day ring exists only once a day has closed, and holds down and maintenance seconds only
      once a closed day had some;
    - the cached sums of the closed slots are one small array, made at the first page view.
    """

    __slots__ = ("_times", "_hist", "_days", "_cache", "_latest_hour", "_latest_day", "past_version")

    def __init__(self) -> None:
        self._times = array("d", bytes(8 * _TIMES))  # hour slots (seconds, down, maintenance), then today's
        self._hist: array[int] = array("H", bytes(2 * HOURS * BUCKETS))
        self._days: array[float] | None = None  # closed days: seconds ×DAYS [, down ×DAYS, maintenance ×DAYS]
        self._cache: array[float] | None = None  # see _CACHE_* : the sums of the closed slots, by the hour/day
        self._latest_hour = self._latest_day = -1
        self.past_version = 0

    # ------------------------------------------------------------ writing

    def add(self, hour: int, day: int, rollup: Rollup) -> None:
        """Fold a rollup that lies within hour `hour` (an hour number) and day `day` (a day number)."""
        self.add_hour(hour, rollup)
        self.add_day(day, rollup)

    def add_hour(self, hour: int, rollup: Rollup) -> None:
        slot = self._hour_slot(hour)
        if slot < 0:
            return  # older than the ring
        times, base = self._times, slot * _FIELDS
        times[base] += rollup.seconds
        times[base + 1] += rollup.down_seconds
        times[base + 2] += rollup.maintenance_seconds
        for i, n in enumerate(rollup.histogram):
            if n:
                self._count(slot * BUCKETS + i, n)

    def add_result(self, hour: int, day: int, state: str, weight: float, bucket: int) -> None:
        """One result, without building a rollup for it (the history thread's per-result path)."""
        cache = self._cache
        if cache is not None and (hour < cache[0] or day < cache[_CACHE_7D] or day < cache[_CACHE_30D]
                                  or day < cache[_CACHE_90D]):
            self._drop_hours(hour)
            self._drop_days(day)
        times = self._times
        if hour == self._latest_hour:
            slot = hour % HOURS
            base = slot * _FIELDS
            times[base] += weight
            try:
                self._hist[slot * BUCKETS + bucket] += 1
            except OverflowError:
                self._count(slot * BUCKETS + bucket, 1)
            if state == DOWN:
                times[base + 1] += weight
            elif state == MAINTENANCE:
                times[base + 2] += weight
        else:
            slot = self._hour_slot(hour)
            if slot >= 0:
                base = slot * _FIELDS
                times[base] += weight
                self._count(slot * BUCKETS + bucket, 1)
                if state == DOWN:
                    times[base + 1] += weight
                elif state == MAINTENANCE:
                    times[base + 2] += weight
        if day == self._latest_day:
            times[_TODAY] += weight
            if state == DOWN:
                times[_TODAY + 1] += weight
            elif state == MAINTENANCE:
                times[_TODAY + 2] += weight
        else:
            self.add_day_times(day, weight, weight if state == DOWN else 0.0,
                               weight if state == MAINTENANCE else 0.0)

    def add_day(self, day: int, rollup: Rollup) -> None:
        self.add_day_times(day, rollup.seconds, rollup.down_seconds, rollup.maintenance_seconds)

    def add_day_times(self, day: int, seconds: float, down: float, maintenance: float) -> None:
        self._drop_days(day)
        latest = self._latest_day
        if day < latest:
            self.past_version += 1  # a closed day changed: a bar drawn of it is stale
        elif day > latest:
            self._open_day(latest, day)
        if day == self._latest_day:
            times = self._times
            times[_TODAY] += seconds
            times[_TODAY + 1] += down
            times[_TODAY + 2] += maintenance
        elif day > latest - DAYS:  # a late result in a closed day still counts
            slot = day % DAYS
            old_seconds, old_down, old_maintenance = self._closed_day(slot)
            self._store_day(slot, old_seconds + seconds, old_down + down, old_maintenance + maintenance)

    def _hour_slot(self, hour: int) -> int:
        """The slot of `hour`, the ring moved on to it if it is a new one; -1 if older than the ring."""
        self._drop_hours(hour)
        latest = self._latest_hour
        if hour > latest:
            times, hist = self._times, self._hist
            for number in range(max(latest + 1, hour - HOURS + 1), hour + 1):
                slot = number % HOURS
                for i in range(slot * _FIELDS, slot * _FIELDS + _FIELDS):
                    times[i] = 0.0
                for i in range(slot * BUCKETS, slot * BUCKETS + BUCKETS):
                    hist[i] = 0
            self._latest_hour = hour
        elif hour <= latest - HOURS:
            return -1
        return hour % HOURS

    def _count(self, index: int, n: int) -> None:
        try:
            self._hist[index] += n
        except OverflowError:  # more than 65 535 results of one bucket in an hour
            self._hist = array("I", self._hist)
            self._hist[index] += n

    def _open_day(self, latest: int, day: int) -> None:
        """Day `day` begins: today's times are written into the ring, the days skipped emptied."""
        times, days = self._times, self._days
        if days is not None:
            per_field = len(days) // DAYS
            for number in range(max(latest + 1, day - DAYS + 1), day + 1):
                for field in range(per_field):
                    days[field * DAYS + number % DAYS] = 0.0
        if latest > day - DAYS:
            self._store_day(latest % DAYS, times[_TODAY], times[_TODAY + 1], times[_TODAY + 2])
        times[_TODAY] = times[_TODAY + 1] = times[_TODAY + 2] = 0.0
        self._latest_day = day

    def _closed_day(self, slot: int) -> tuple[float, float, float]:
        days = self._days
        if days is None:
            return 0.0, 0.0, 0.0
        if len(days) == DAYS:
            return days[slot], 0.0, 0.0
        return days[slot], days[DAYS + slot], days[2 * DAYS + slot]

    def _store_day(self, slot: int, seconds: float, down: float, maintenance: float) -> None:
        days = self._days
        if days is None:
            if not (seconds or down or maintenance):
                return
            days = self._days = array("f", bytes(4 * DAYS))
        if (down or maintenance) and len(days) == DAYS:
            days.extend(array(days.typecode, bytes(days.itemsize * 2 * DAYS)))
        for _ in range(2):
            days[slot] = seconds
            if len(days) > DAYS:
                days[DAYS + slot] = down
                days[2 * DAYS + slot] = maintenance
            if days.typecode == "d" or self._closed_day(slot) == (seconds, down, maintenance):
                return
            days = self._days = array("d", days)  # float32 would round it: keep doubles from now on

    def _drop_hours(self, hour: int) -> None:
        """Hour `hour` changes: drop a cached sum of closed hours that includes it."""
        cache = self._cache
        if cache is not None and hour < cache[0]:
            cache[0] = -1.0

    def _drop_days(self, day: int) -> None:
        """Day `day` changes: drop the cached sums of closed days that include it."""
        cache = self._cache
        if cache is None:
            return
        for index in (_CACHE_7D, _CACHE_30D, _CACHE_90D):
            if day < cache[index]:
                cache[index] = -1.0
                self.past_version += 1

    # ------------------------------------------------------------ reading

    def window(self, now: float, span: str) -> Rollup:
        """The rollup of the last 24 h (whole hours, the current one included) or of the last
        7 or 30 days (whole UTC days, today included): what uptime figures are read from."""
        cache = self._cache
        if cache is None:
            cache = self._cache = array("d", _EMPTY_CACHE)
        out = Rollup()
        hist = out.histogram
        if span == "24h":
            current = int(now // 3600)
            if cache[0] != current:
                self._sum_hours(cache, current)
            out.seconds, out.down_seconds, out.maintenance_seconds = cache[1], cache[2], cache[3]
            for i in range(BUCKETS):
                hist[i] = int(cache[_CACHE_HIST + i])
            if self._latest_hour - HOURS < current <= self._latest_hour:
                slot = current % HOURS
                out.seconds += self._times[slot * _FIELDS]
                out.down_seconds += self._times[slot * _FIELDS + 1]
                out.maintenance_seconds += self._times[slot * _FIELDS + 2]
                for i in range(BUCKETS):
                    hist[i] += self._hist[slot * BUCKETS + i]
            out.count = sum(hist)
            return out
        index, days = _DAY_SPANS[span]
        today = int(now // 86400)
        if cache[index] != today:
            seconds = down = maintenance = 0.0
            for day in range(today - days + 1, today):
                values = self._day(day)
                if values is not None:
                    seconds += values[0]
                    down += values[1]
                    maintenance += values[2]
            cache[index:index + 4] = array("d", (today, seconds, down, maintenance))
        out.seconds, out.down_seconds, out.maintenance_seconds = cache[index + 1], cache[index + 2], cache[index + 3]
        values = self._day(today)
        if values is not None:
            out.seconds += values[0]
            out.down_seconds += values[1]
            out.maintenance_seconds += values[2]
        return out

    def _sum_hours(self, cache: array[float], current: int) -> None:
        seconds = down = maintenance = 0.0
        hist = [0] * BUCKETS
        times, counts, latest = self._times, self._hist, self._latest_hour
        for hour in range(max(current - HOURS + 1, latest - HOURS + 1), min(current, latest + 1)):
            slot = hour % HOURS
            seconds += times[slot * _FIELDS]
            down += times[slot * _FIELDS + 1]
            maintenance += times[slot * _FIELDS + 2]
            for i in range(BUCKETS):
                hist[i] += counts[slot * BUCKETS + i]
        cache[0:_CACHE_7D] = array("d", [current, seconds, down, maintenance, *hist])

    def _day(self, day: int) -> tuple[float, float, float] | None:
        """Seconds, down and maintenance of `day`; None when the ring does not hold it."""
        latest = self._latest_day
        if day == latest:
            return self._times[_TODAY], self._times[_TODAY + 1], self._times[_TODAY + 2]
        if latest - DAYS < day < latest:
            return self._closed_day(day % DAYS)
        return None

    def uptime(self, now: float, span: str) -> float | None:
        return self.window(now, span).uptime()

    def day_bars(self, now: float, days: int = DAYS) -> list[DayBar]:
        """One bar per UTC day, oldest first, today last."""
        today = int(now // 86400)
        bars = []
        for day in range(today - days + 1, today + 1):
            values = self._day(day)
            uptime = None
            if values is not None:
                seconds, down, maintenance = values
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
