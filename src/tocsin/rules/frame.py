"""Which wall-clock frame the rules' state is in, and moving it to the new one after a clock step.

Samples, evaluation timestamps and alert timers are wall time. When the wall clock steps
(tocsin/clock.py), everything stored — the sample store and every alert's timers — is
shifted by the step at once, so `for`, staleness, lookback and ranges see neither a gap
nor an overlap. That shift must not happen under a running evaluation (it would read half
of its windows in each frame), so it waits until none runs. Meanwhile nothing stops:
samples ingested and evaluations started before the shift are converted into the frame
the store is still in (`seen_ms` − `applied_ms` is the step not yet applied). New
evaluations hold back at most STEP_WAIT seconds to let the shift through, so one runaway
evaluation delays the shift, never the other groups for long.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from .alerting import Alert, AlertingRule
from .group import Group

STEP_WAIT = 2.0  # seconds an evaluation waits for in-flight ones to end so a pending shift can apply


class TimeFrame:
    """Evaluations (shared), rebuilds (exclusive) and clock-step shifts, serialised."""

    def __init__(self, shift: Callable[[int], None]) -> None:
        self._shift = shift          # moves the store and alert timers by a number of ms
        self.lock = threading.Condition(threading.RLock())
        self.seen_ms = 0             # sum of the steps the clock made (since start)
        self.applied_ms = 0          # the part of it the stored state has been shifted by
        self._evaluating = 0
        self._exclusive = False

    def on_step(self, step_s: float) -> None:
        """ClockWatch listener (any thread): note the step, shift now if nothing evaluates."""
        with self.lock:
            self.seen_ms += round(step_s * 1000)
            self._apply_if_quiet()
            self.lock.notify_all()

    def to_store(self, wall_ms: int, frame_ms: int | None = None) -> int:
        """A wall time read in frame `frame_ms` (default: the clock now) in the store's frame."""
        with self.lock:
            return wall_ms + self.applied_ms - (self.seen_ms if frame_ms is None else frame_ms)

    def _apply_if_quiet(self) -> None:
        delta = self.seen_ms - self.applied_ms
        if delta and not self._evaluating and not self._exclusive:
            self._shift(delta)
            self.applied_ms = self.seen_ms

    @contextmanager
    def evaluation(self, tick_ms: int, tick_frame_ms: int | None,
                   check: Callable[[], object] | None = None) -> Iterator[int]:
        """Hold for one group evaluation; yields its timestamp in the store's frame."""
        if check is not None:  # outside the lock: ClockWatch's lock is taken before ours, never after
            check()  # a step not yet seen is noted before this evaluation reads anything
        with self.lock:
            deadline = time.monotonic() + STEP_WAIT
            while self._exclusive or (self.seen_ms != self.applied_ms and self._evaluating
                                      and time.monotonic() < deadline):
                self.lock.wait(0.1)
            self._apply_if_quiet()
            self._evaluating += 1
            ts = tick_ms + self.applied_ms - (self.seen_ms if tick_frame_ms is None else tick_frame_ms)
        try:
            yield ts
        finally:
            with self.lock:
                self._evaluating -= 1
                self._apply_if_quiet()
                self.lock.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold with no evaluation running (a rebuild swaps groups and copies their alerts)."""
        with self.lock:
            while self._exclusive:
                self.lock.wait()
            self._exclusive = True
            while self._evaluating:
                self.lock.wait()
        try:
            yield
        finally:
            with self.lock:
                self._exclusive = False
                self._apply_if_quiet()
                self.lock.notify_all()


_ALERT_TIMES = ("active_at", "fired_at", "resolved_at", "last_sent_at", "valid_until", "keep_firing_since")


def shift_alert_timers(groups: Iterable[Group], delta_ms: int) -> None:
    """Move every alert's timers (and what restoring them compares with) by a clock step."""
    for group in groups:
        if group.stats.last_eval_ms:
            group.stats.last_eval_ms += delta_ms
        for rule in group.rules:
            if isinstance(rule, AlertingRule):
                if rule.restore_down_at:
                    rule.restore_down_at += delta_ms
                for alert in [*rule.active.values(), *rule.to_restore.values()]:
                    _shift_alert(alert, delta_ms)


def _shift_alert(alert: Alert, delta_ms: int) -> None:
    for name in _ALERT_TIMES:
        t = getattr(alert, name)
        if t:  # 0 is "never"
            setattr(alert, name, t + delta_ms)
