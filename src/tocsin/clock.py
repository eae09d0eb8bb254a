"""Wall-clock steps: noticed, logged, counted, and handed to whoever stamped things with wall time.

Samples, alert timers and Alertmanager timestamps are wall time (Prometheus semantics), and
APScheduler's triggers are too; waiting is done on the monotonic clock. When the wall clock
steps (NTP correcting a drifted clock, `date -s`), the two part ways: left alone, a backward
step of an hour stops every probe for an hour, and a forward one empties every lookback
window at once, so firing alerts resolve and fire again.

`ClockWatch.check()` compares the offset wall − monotonic with the one seen last time; a
change larger than `TOLERANCE` is a step. NTP's slewing moves the offset by at most 0.5 ms
a second, so checks a few seconds apart never mistake it for one, and a step smaller than
the tolerance is harmless to everything here. Each listener gets the step (seconds,
positive when the clock moved forward) and shifts what it keeps in wall time by it, so the
history it holds looks as if the clock had always shown the new time. Checks are cheap (two
clock reads): the scheduler runs one at every wake-up and the rules at every ingest and
evaluation, so a step is seen before anything stamped after it is stored.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter

log = logging.getLogger("tocsin.clock")

TOLERANCE = 1.0  # seconds: below this, a change of the offset is drift or slewing, not a step

StepListener = Callable[[float], None]


class ClockWatch:
    """Tells listeners when the wall clock stepped, by how much. Thread-safe."""

    def __init__(self, registry: CollectorRegistry | None = None, tolerance: float = TOLERANCE) -> None:
        self.tolerance = tolerance
        self._lock = threading.RLock()
        self._offset = time.time() - time.monotonic()
        self._listeners: list[StepListener] = []
        self.steps = Counter("tocsin_clock_steps_total",
                             "Steps of the wall clock detected (and re-anchored: probes, samples, alert timers).",
                             registry=registry)

    def subscribe(self, listener: StepListener) -> None:
        with self._lock:
            self._listeners.append(listener)

    @property
    def lock(self) -> threading.RLock:
        """Held while listeners re-anchor: hold it to read wall time and state in one frame."""
        return self._lock

    def check(self) -> float:
        """Look for a step since the last check; re-anchor listeners if so. Returns the step (or 0)."""
        offset = time.time() - time.monotonic()
        if abs(offset - self._offset) <= self.tolerance:
            self._offset = offset  # follow slewing, so drift never adds up to a false step
            return 0.0
        with self._lock:
            step = offset - self._offset
            if abs(step) <= self.tolerance:  # another thread handled it meanwhile
                return 0.0
            self._offset = offset
            self.steps.inc()
            log.warning("wall clock stepped %+.3fs; re-anchoring probe schedules, samples and alert timers",
                        step, extra={"fields": {"step_seconds": round(step, 3)}})
            for listener in self._listeners:
                try:
                    listener(step)
                except Exception:  # noqa: BLE001 - one part failing to re-anchor must not stop the others
                    log.exception("re-anchoring after a clock step failed")
            return step

    def wall_of(self, monotonic: float) -> float:
        """The wall time (as of the last check) that a monotonic reading stands for."""
        return monotonic + self._offset
