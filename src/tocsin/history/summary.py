"""What the overview shows of one target, kept in memory so a page of a thousand targets
reads no database: the last 24 hours and the last 90 days in fixed rings.

A ring holds the latest hour (or day) and the ones before it; a slot is emptied when the ring
moves past it, so nothing is ever shifted or pruned and no slot needs to remember its start.
The recorder feeds the rings from the same results as the database's rollups, and fills
them from the database at start, so the page after a restart shows what it showed before.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass

from .rollup import BUCKETS, DOWN, MAINTENANCE, Rollup

HOURS, DAYS = 24, 90
_FIELDS = 3  # seconds, down, maintenance
# TargetSummary._open: the latest hour's times, today's, the latest hour's number, today's number.
_HOUR, _TODAY, _LATEST_HOUR, _LATEST_DAY = 0, 3, 6, 7
_EMPTY_OPEN = [0.0] * 6 + [-1.0, -1.0]
# TargetSummary._cache: the hour it was summed at, the closed hours' times and histogram; then
# for 7, 30 and 90 days the day it was summed at and the closed days' times. -1: not summed.
_CACHE_HIST = 4
_CACHE_7D = _CACHE_HIST + BUCKETS
_CACHE_30D, _CACHE_90D = _CACHE_7D + 4, _CACHE_7D + 8
_EMPTY_CACHE = [-1.0, 0.0, 0.0, 0.0] + [0.0] * BUCKETS + [-1.0, 0.0, 0.0, 0.0] * 3
_DAY_SPANS = {"7d": (_CACHE_7D, 7), "30d": (_CACHE_30D, 30), "90d": (_CACHE_90D, 90)}
_NO_TIME = (0.0, 0.0, 0.0)  # seconds, down, maintenance of a span without results


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
    the latest hour and today are summed in doubles; a closed hour or day is written once (again
    if a late result lands in it) as float32 — exactly: the first value float32 cannot hold
    exactly widens that ring to doubles, so every figure read back is the very double a
    full-precision ring would hold. The hours' histograms are 16-bit counts, widened to 32 bits
    the first time one would overflow. The day ring is made when a day first closes with
    results; after its 90 seconds come (slot, down, maintenance) triples for the closed days
    that had any. The cached sums are one small array, made at the first page view.
    """

    __slots__ = ("_open", "_hours", "_hist", "_days", "_cache", "past_version")

    def __init__(self) -> None:
        self._open = array("d", _EMPTY_OPEN)
        self._hours: array[float] = array("f", bytes(4 * HOURS * _FIELDS))  # closed hours, by slot
        self._hist: array[int] = array("H", bytes(2 * HOURS * BUCKETS))  # every hour's, by slot
        self._days: array[float] | None = None  # closed days: seconds ×DAYS, then (slot, down, maintenance)…
        self._cache: array[float] | None = None
        self.past_version = 0

    # ------------------------------------------------------------ writing

    def add(self, hour: int, day: int, rollup: Rollup) -> None:
        """Fold a rollup that lies within hour `hour` (an hour number) and day `day` (a day number)."""
        self.add_hour(hour, rollup)
        self.add_day(day, rollup)

    def add_hour(self, hour: int, rollup: Rollup) -> None:
        if self._add_hour_times(hour, rollup.seconds, rollup.down_seconds, rollup.maintenance_seconds):
            base = hour % HOURS * BUCKETS
            for i, n in enumerate(rollup.histogram):
                if n:
                    self._count(base + i, n)

    def add_result(self, hour: int, day: int, state: str, weight: float, bucket: int) -> None:
        """One result, without building a rollup for it (the history thread's per-result path)."""
        cache = self._cache
        if cache is not None and (hour < cache[0] or day < cache[_CACHE_7D] or day < cache[_CACHE_30D]
                                  or day < cache[_CACHE_90D]):
            self._drop_hours(hour)
            self._drop_days(day)
        times = self._open
        if hour == times[_LATEST_HOUR]:
            _add_state(times, _HOUR, state, weight)
            try:
                self._hist[hour % HOURS * BUCKETS + bucket] += 1
            except OverflowError:
                self._count(hour % HOURS * BUCKETS + bucket, 1)
        elif self._add_hour_times(hour, weight, weight if state == DOWN else 0.0,
                                  weight if state == MAINTENANCE else 0.0):
            self._count(hour % HOURS * BUCKETS + bucket, 1)
        if day == times[_LATEST_DAY]:
            _add_state(times, _TODAY, state, weight)
        else:
            self.add_day_times(day, weight, weight if state == DOWN else 0.0,
                               weight if state == MAINTENANCE else 0.0)

    def add_day(self, day: int, rollup: Rollup) -> None:
        self.add_day_times(day, rollup.seconds, rollup.down_seconds, rollup.maintenance_seconds)

    def add_day_times(self, day: int, seconds: float, down: float, maintenance: float) -> None:
        self._drop_days(day)
        times = self._open
        latest = int(times[_LATEST_DAY])
        if day < latest:
            self.past_version += 1  # a closed day changed: a bar drawn of it is stale
        elif day > latest:
            self._open_day(latest, day)
        if day == times[_LATEST_DAY]:
            times[_TODAY] += seconds
            times[_TODAY + 1] += down
            times[_TODAY + 2] += maintenance
        elif day > latest - DAYS:  # a late result in a closed day still counts
            slot = day % DAYS
            old_seconds, old_down, old_maintenance = self._closed_day(slot)
            self._store_day(slot, old_seconds + seconds, old_down + down, old_maintenance + maintenance)

    def _add_hour_times(self, hour: int, seconds: float, down: float, maintenance: float) -> bool:
        """Add to hour `hour` (the ring moved on to it if it is a new one); False: older than the ring."""
        self._drop_hours(hour)
        times = self._open
        latest = int(times[_LATEST_HOUR])
        if hour > latest:
            hist = self._hist
            for number in range(max(latest + 1, hour - HOURS + 1), hour + 1):
                self._store_hour(number % HOURS, *_NO_TIME)
                for i in range(number % HOURS * BUCKETS, (number % HOURS + 1) * BUCKETS):
                    hist[i] = 0
            if latest > hour - HOURS:
                self._store_hour(latest % HOURS, times[_HOUR], times[_HOUR + 1], times[_HOUR + 2])
            times[_HOUR:_HOUR + 3] = array("d", _NO_TIME)
            times[_LATEST_HOUR] = latest = hour
        if hour == latest:
            times[_HOUR] += seconds
            times[_HOUR + 1] += down
            times[_HOUR + 2] += maintenance
        elif hour > latest - HOURS:
            base = hour % HOURS * _FIELDS
            hours = self._hours
            self._store_hour(hour % HOURS, hours[base] + seconds, hours[base + 1] + down,
                             hours[base + 2] + maintenance)
        else:
            return False
        return True

    def _store_hour(self, slot: int, seconds: float, down: float, maintenance: float) -> None:
        hours, base = self._hours, slot * _FIELDS
        hours[base], hours[base + 1], hours[base + 2] = seconds, down, maintenance
        if hours.typecode == "f" and (hours[base], hours[base + 1], hours[base + 2]) != (seconds, down, maintenance):
            hours = self._hours = array("d", hours)  # float32 would round it: doubles from now on
            hours[base], hours[base + 1], hours[base + 2] = seconds, down, maintenance

    def _count(self, index: int, n: int) -> None:
        try:
            self._hist[index] += n
        except OverflowError:  # more than 65 535 results of one bucket in an hour
            self._hist = array("I", self._hist)
            self._hist[index] += n

    def _open_day(self, latest: int, day: int) -> None:
        """Day `day` begins: today's times are written into the ring, the days skipped emptied."""
        times = self._open
        if self._days is not None:
            for number in range(max(latest + 1, day - DAYS + 1), day + 1):
                self._store_day(number % DAYS, *_NO_TIME)
        if latest > day - DAYS:
            self._store_day(latest % DAYS, times[_TODAY], times[_TODAY + 1], times[_TODAY + 2])
        times[_TODAY:_TODAY + 3] = array("d", _NO_TIME)
        times[_LATEST_DAY] = day

    def _closed_day(self, slot: int) -> tuple[float, float, float]:
        days = self._days
        if days is None:
            return _NO_TIME
        for i in range(DAYS, len(days), _FIELDS):
            if days[i] == slot:
                return days[slot], days[i + 1], days[i + 2]
        return days[slot], 0.0, 0.0

    def _store_day(self, slot: int, seconds: float, down: float, maintenance: float) -> None:
        days = self._days
        if days is None:
            if not (seconds or down or maintenance):
                return
            days = self._days = array("f", bytes(4 * DAYS))
        faults = next((i for i in range(DAYS, len(days), _FIELDS) if days[i] == slot), -1)
        # The triples change size in a new array, never in place: the status page reads the day
        # bars without the recorder's lock, and must not find the array shorter than it measured.
        if faults >= 0 and not (down or maintenance):
            days = self._days = days[:faults] + days[faults + _FIELDS:]
        elif faults < 0 and (down or maintenance):
            days = self._days = days + array(days.typecode, (slot, down, maintenance))
        elif faults >= 0:
            days[faults + 1], days[faults + 2] = down, maintenance
        days[slot] = seconds
        if days.typecode == "f" and self._closed_day(slot) != (seconds, down, maintenance):
            self._days = array("d", days)  # float32 would round it: doubles from now on
            self._store_day(slot, seconds, down, maintenance)

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
            values = self._hour(current)
            if values is not None:
                out.seconds += values[0]
                out.down_seconds += values[1]
                out.maintenance_seconds += values[2]
                for i in range(BUCKETS):
                    hist[i] += self._hist[current % HOURS * BUCKETS + i]
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
        latest, counts = int(self._open[_LATEST_HOUR]), self._hist
        for hour in range(max(current - HOURS + 1, latest - HOURS + 1), min(current, latest + 1)):
            values = self._hour(hour) or _NO_TIME
            seconds += values[0]
            down += values[1]
            maintenance += values[2]
            for i in range(BUCKETS):
                hist[i] += counts[hour % HOURS * BUCKETS + i]
        cache[0:_CACHE_7D] = array("d", [current, seconds, down, maintenance, *hist])

    def _hour(self, hour: int) -> tuple[float, float, float] | None:
        """Seconds, down and maintenance of `hour`; None when the ring does not hold it."""
        latest = self._open[_LATEST_HOUR]
        if hour == latest:
            return self._open[_HOUR], self._open[_HOUR + 1], self._open[_HOUR + 2]
        if latest - HOURS < hour < latest:
            base = hour % HOURS * _FIELDS
            return self._hours[base], self._hours[base + 1], self._hours[base + 2]
        return None

    def _day(self, day: int) -> tuple[float, float, float] | None:
        """Seconds, down and maintenance of `day`; None when the ring does not hold it."""
        latest = self._open[_LATEST_DAY]
        if day == latest:
            return self._open[_TODAY], self._open[_TODAY + 1], self._open[_TODAY + 2]
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


def _add_state(times: array, base: int, state: str, weight: float) -> None:
    """Add a result's `weight` seconds to the (seconds, down, maintenance) triple at `base`."""
    times[base] += weight
    if state == DOWN:
        times[base + 1] += weight
    elif state == MAINTENANCE:
        times[base + 2] += weight
