"""One rollup: what a span of time (a minute, an hour, a day) of one target's probes adds up to.

A rollup keeps counts, not rows: how many results, how many failed, how many seconds they
stood for (split into up, down and maintenance), the sum of durations, a small histogram
with fixed bucket bounds (so p50/p95 are read back to within a bucket), and the failure
reasons by count. Adding two rollups gives the rollup of both spans, which is how the
hour and the day are built from the same results as the minute and how a range query
sums whatever spans it covers. On disk the histogram and the reasons are short strings of
the non-empty entries only: a minute of a healthy target is a handful of bytes.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

# The states a stretch of time can be in. `maintenance` is time that counts neither up nor
# down (a maintenance window): it is recorded apart and left out of uptime.
UP, DOWN, MAINTENANCE = "up", "down", "maintenance"

# Upper bounds (seconds) of the response-time buckets; the last bucket is everything above.
BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BUCKETS = len(BOUNDS) + 1


def bucket_of(seconds: float) -> int:
    for index, bound in enumerate(BOUNDS):
        if seconds <= bound:
            return index
    return len(BOUNDS)


@dataclass(slots=True)
class Rollup:
    count: int = 0
    failures: int = 0
    seconds: float = 0.0       # the time the results stood for (each its target's interval)
    down_seconds: float = 0.0
    maintenance_seconds: float = 0.0
    duration_sum: float = 0.0
    # Counts in a machine array, not a list of ints: three open rollups per target held 36
    # int objects and 3 lists (1 KB a target; 10 MiB at 10 000 targets).
    histogram: array = field(default_factory=lambda: array("Q", bytes(8 * BUCKETS)))
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, state: str, weight: float, duration: float, reason: str, bucket: int = -1) -> None:
        """Fold in one result that stood for `weight` seconds (`bucket`: its duration's, if known)."""
        self.count += 1
        self.seconds += weight
        self.duration_sum += duration
        self.histogram[bucket if bucket >= 0 else bucket_of(duration)] += 1
        if state == DOWN:
            self.failures += 1
            self.down_seconds += weight
            key = reason or "error"
            self.reasons[key] = self.reasons.get(key, 0) + 1
        elif state == MAINTENANCE:
            self.maintenance_seconds += weight

    def merge(self, other: Rollup) -> None:
        self.count += other.count
        self.failures += other.failures
        self.seconds += other.seconds
        self.down_seconds += other.down_seconds
        self.maintenance_seconds += other.maintenance_seconds
        self.duration_sum += other.duration_sum
        for index, n in enumerate(other.histogram):
            self.histogram[index] += n
        for reason, n in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + n

    def uptime(self) -> float | None:
        """Up time over observed time outside maintenance, 0..1; None when nothing was observed."""
        observed = self.seconds - self.maintenance_seconds
        return None if observed <= 0 else max(0.0, 1.0 - self.down_seconds / observed)

    def mean_duration(self) -> float | None:
        return self.duration_sum / self.count if self.count else None

    def quantile(self, q: float) -> float | None:
        """The upper bound of the bucket holding the q-th result (the last bound for the top bucket)."""
        if not self.count:
            return None
        rank = q * self.count
        seen = 0
        for index, n in enumerate(self.histogram):
            seen += n
            if seen >= rank and n:
                return BOUNDS[min(index, len(BOUNDS) - 1)]
        return BOUNDS[-1]

    # ------------------------------------------------------------ storage form

    def to_row(self) -> tuple[int, int, float, float, float, float, str, str | None]:
        hist = ",".join(f"{i}:{n}" for i, n in enumerate(self.histogram) if n)
        reasons = ",".join(f"{k}:{n}" for k, n in sorted(self.reasons.items())) or None
        return (self.count, self.failures, self.seconds, self.down_seconds, self.maintenance_seconds,
                round(self.duration_sum, 6), hist, reasons)

    @classmethod
    def from_row(cls, count: int, failures: int, seconds: float, down: float, maintenance: float,
                 duration_sum: float, hist: str, reasons: str | None) -> Rollup:
        histogram = array("Q", bytes(8 * BUCKETS))
        for item in filter(None, (hist or "").split(",")):
            index, n = item.split(":")
            histogram[int(index)] = int(n)
        reason_counts = {}
        for item in filter(None, (reasons or "").split(",")):
            key, n = item.rsplit(":", 1)
            reason_counts[key] = int(n)
        return cls(count, failures, seconds, down, maintenance, duration_sum, histogram, reason_counts)


def total(rollups: list[Rollup]) -> Rollup:
    out = Rollup()
    for rollup in rollups:
        out.merge(rollup)
    return out
