"""tocsin's own slowness told apart from a target's: the event-loop lag, and the probe results it voids.

A probe's deadline runs on the event loop. When the loop is behind (the machine's cores are
busy with other work, a long callback, the GIL held by another thread), a healthy target's
answer sits unread in a socket while the deadline passes: the probe reports a timeout that
says nothing about the target. Counted as a failure, it pages for tocsin's own slowness.

`LoopLag` measures the loop: a timer re-armed every PERIOD_BUSY seconds while probes run
(and not at all while none does, so an idle daemon does not wake for it) notes how late it
fired. Each lateness goes to the histogram `tocsin_event_loop_lag_seconds` and to a short
history, from which `voided` judges one timed-out probe: the delay the loop imposed on it is
estimated as its longest stall, or LOOP_TURNS times the mean lateness (a probe waits on the
loop several times: connect, write, read, and each wake-up of its task), whichever is larger.
When that is at least LAG_SHARE of the probe's deadline, the timeout is *inconclusive*: it is
counted (`tocsin_probes_inconclusive_total{target}`), never recorded as a result (the
target's gauges, `probe_success` included, keep their last conclusive values, so no alert or
rule state moves), and retried at once, at most RETRIES_PER_RUN times a run and for at most
RETRY_SHARE of the targets at a time, so an overloaded loop is not given twice the work.

Only timeouts can be voided: a refused connection, a TLS error or a wrong status is the
target's answer however late tocsin read it. A success is always conclusive.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Histogram

from .metrics import MetricSample
from .probes import ProbeResult

log = logging.getLogger("tocsin.overload")

PERIOD_BUSY = 0.1  # seconds between lag samples while probes run (none while none does)
HISTORY = 4096  # lag samples kept for judging probes (≥ 400 s of busy sampling)
LOOP_TURNS = 8  # times a probe waits for the loop, roughly (connect, send, read, task wake-ups)
LAG_SHARE = 0.5  # a timeout whose loop delay reached this share of the deadline is inconclusive
RETRIES_PER_RUN = 1  # immediate retries of an inconclusive probe, per scheduled run
RETRY_SHARE = 0.1  # at most this share of the targets (and at least RETRY_FLOOR) retry at once
RETRY_FLOOR = 4
PUBLISH_EVERY = 1.0  # seconds between handing the lag histogram to the rules' sample store
SELF_SERIES_KEY = "__tocsin__"  # the sample store's key for tocsin's own series (no target has it)

LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

SampleListener = Callable[[str, list[MetricSample], float], None]


class LoopLag:
    """Samples the event loop's lateness; judges whether a timed-out probe was the loop's fault."""

    def __init__(self, registry: CollectorRegistry, busy: Callable[[], bool]) -> None:
        # A histogram rather than a gauge: every sample is counted, so rate() and
        # histogram_quantile() over any window show the lag the probes met between two
        # scrapes; a gauge would show only the lag at the instant of the scrape.
        self.histogram = Histogram(
            "tocsin_event_loop_lag_seconds",
            "How late the event loop ran a timer due at a known time (sampled every 0.1 s while probes run).",
            registry=registry, buckets=LAG_BUCKETS)
        self._busy = busy
        self._ticks: deque[tuple[float, float]] = deque(maxlen=HISTORY)  # (loop time, lateness)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._expected = 0.0
        self._listeners: list[SampleListener] = []
        self._next_publish = 0.0
        self._retrying = 0
        self._voided_since_log = 0
        self._logged_at = float("-inf")

    # ---------------------------------------------------------------- sampling

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self._loop = None

    def subscribe(self, listener: SampleListener) -> None:
        """`listener(SELF_SERIES_KEY, samples, unix_time)` gets the histogram's samples every
        PUBLISH_EVERY seconds (the rules' store: a shipped rule alerts on the lag)."""
        self._listeners.append(listener)

    def _arm(self, now: float, period: float) -> None:
        assert self._loop is not None
        self._expected = now + period
        self._handle = self._loop.call_at(self._expected, self._tick)

    def _tick(self) -> None:
        now = self._loop.time() if self._loop is not None else 0.0
        lateness = max(0.0, now - self._expected)
        self._ticks.append((now, lateness))
        self.histogram.observe(lateness)
        if self._listeners and now >= self._next_publish:
            self._next_publish = now + PUBLISH_EVERY
            self._publish()
        self._handle = None
        if self._loop is not None and self._busy():
            self._arm(now, PERIOD_BUSY)

    def watch(self) -> None:
        """A probe starts: sample until none runs."""
        if self._loop is not None and self._handle is None:
            self._arm(self._loop.time(), PERIOD_BUSY)

    def _publish(self) -> None:
        samples: list[MetricSample] = []
        for family in self.histogram.collect():
            for s in family.samples:
                if not s.name.endswith("_created"):
                    samples.append((s.name, tuple(s.labels.items()), s.value))
        stamp = time.time()
        for listener in self._listeners:
            listener(SELF_SERIES_KEY, samples, stamp)

    # ---------------------------------------------------------------- judging

    def delay_between(self, start: float, end: float) -> float:
        """The delay the loop put on a probe that ran from `start` to `end` (loop time, `end`
        being now): its longest stall, or LOOP_TURNS × the mean lateness, whichever is larger.
        A stall still going on now (the sampling timer overdue) counts as one."""
        lags = [lag for t, lag in reversed(self._ticks) if t >= start and t <= end] if self._ticks else []
        if self._handle is not None and end > self._expected:
            lags.append(end - self._expected)
        if not lags:
            return 0.0
        return max(max(lags), LOOP_TURNS * sum(lags) / len(lags))

    def voided(self, result: ProbeResult, start: float, end: float) -> bool:
        """Whether the loop, not the target, used up this result's deadline (see the module)."""
        if result.success or result.reason != "timeout":
            return False
        return self.delay_between(start, end) >= LAG_SHARE * result.timeout

    def _may_retry(self, targets: int) -> bool:
        return self._retrying < max(RETRY_FLOOR, int(targets * RETRY_SHARE))

    def _note_voided(self) -> None:
        """One warning a minute at most, however many probes the lag voided."""
        self._voided_since_log += 1
        now = time.monotonic()
        if now - self._logged_at >= 60:
            self._logged_at = now
            log.warning("%d probe result%s inconclusive: tocsin's event loop was too slow for the deadline "
                        "(see tocsin_event_loop_lag_seconds); retried, not counted as failures",
                        self._voided_since_log, "" if self._voided_since_log == 1 else "s")
            self._voided_since_log = 0

    async def probe(self, run: Callable[[], Awaitable[ProbeResult]], on_voided: Callable[[ProbeResult], None],
                    targets: int) -> ProbeResult | None:
        """Run `run()` until its result is conclusive or the bounded retries are used up.

        Returns the conclusive result, or None when the last one was voided as well (the
        caller then records nothing). `on_voided` is told of every voided result; `targets`
        (how many are scheduled) sizes the share that may retry at once."""
        loop, retrying = self._loop or asyncio.get_running_loop(), False
        try:
            for retries_left in range(RETRIES_PER_RUN, -1, -1):
                self.watch()
                start = loop.time()
                result = await run()
                if not self.voided(result, start, loop.time()):
                    return result
                on_voided(result)
                self._note_voided()
                if not retries_left or not (retrying or self._may_retry(targets)):
                    break
                if not retrying:
                    retrying = True
                    self._retrying += 1
            return None
        finally:
            if retrying:
                self._retrying -= 1
