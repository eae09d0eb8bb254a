"""When each target is probed: APScheduler jobs on the daemon's event loop.

One job per target, its first run spread over the interval by a hash of the target's
name (so 1 000 targets with one interval do not fire in the same second, and a restart
keeps the same phase), rounded up to a grid of SLOT seconds shared by every target.

Why the grid: on a virtual machine each wake-up of an idle process costs ~0.2 ms of CPU
whatever it does (bench/wakeup_cost.py), as much as a probe itself. 200 targets each on
its own phase wake the daemon 40 times a second at 5 s; on a 100 ms grid the same probes
start in at most 10 wake-ups a second, a few at a time. The load is still spread over the
interval.

APScheduler's `max_instances=1` guarantees a target never has two probes at once. Probes are coroutines: a hanging target holds a cheap slot of the
bounded pool until its deadline, never a thread, so it cannot delay healthy targets.

Run times are wall time (APScheduler's triggers), waits are monotonic (the loop's timers).
The scheduler wakes up at least every MAX_SLEEP seconds and asks the ClockWatch whether the
wall clock stepped; if it did, every job's next run time moves by the step (rounded to the
grid), so probing goes on at its cadence instead of stopping for as long as a backward step
or counting every run as missed after a forward one. Independently, each target's last
start is kept on the monotonic clock: a target not started for OVERDUE_INTERVALS of its
intervals is logged and counted, whatever the reason (a stalled scheduler, a full pool).
A probe runs through `overload.LoopLag`, which voids a timeout the loop's own lag caused.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client import Counter

from . import maintenance
from .clock import ClockWatch
from .config import Target
from .logs import log_context
from .loop_scheduler import SLOT, LoopScheduler, first_run, on_grid
from .metrics import SelfMetrics
from .overload import LoopLag
from .probes import ProbeResult, new_correlation_id, run_probe

log = logging.getLogger("tocsin.scheduler")


# Target names cannot start with "__" (config/schema.py), so this id never clashes with one.
HEARTBEAT_JOB = "__heartbeat__"


# A target whose probe has not started for this many intervals (plus its timeout) is overdue.
OVERDUE_INTERVALS = 3
OVERDUE_CHECK_EVERY = 5.0  # seconds (monotonic) between looks for overdue targets


@dataclass
class TargetState:
    """What the scheduler knows of one target between runs; survives reloads if unchanged."""

    target: Target
    interval: float
    consecutive_failures: int = 0
    last_result: ProbeResult | None = None
    last_started: float = field(default_factory=time.monotonic)  # monotonic; see OVERDUE_INTERVALS
    overdue: bool = False  # reported as overdue, not started since
    maintenance: bool = False  # inside one of its maintenance windows: not probed (see maintenance.py)
    flapping: bool = False  # as flapping.py last judged it (for the API and the status page)

    @property
    def up(self) -> bool | None:
        return None if self.last_result is None else self.last_result.success


class _MeasuredExecutor(AsyncIOExecutor):
    """The asyncio executor, noting when each run was due so the probe can measure lateness.

    Lateness is observed when the probe really starts (after it got a slot of the pool),
    against the earliest run it stands for when coalesced runs were missed.
    """

    def __init__(self, due: dict[str, datetime]) -> None:
        super().__init__()
        self._due = due

    def _do_submit_job(self, job, run_times):
        self._due[job.id] = run_times[0]
        return super()._do_submit_job(job, run_times)


class ProbeScheduler:
    """Owns the probe jobs; `apply(targets)` is the only way the set of targets changes."""

    def __init__(self, metrics: SelfMetrics, on_result: Callable[[TargetState, ProbeResult, ProbeResult | None], None],
                 max_concurrent: int = 4096, clock: ClockWatch | None = None,
                 on_inconclusive: Callable[[ProbeResult], None] = lambda _result: None) -> None:
        self._metrics = metrics
        self._on_result = on_result
        self._on_inconclusive = on_inconclusive  # a result tocsin's own lag voided (overload.py)
        self._slots = asyncio.Semaphore(max_concurrent)
        self._due: dict[str, datetime] = {}  # job id -> when its current run was due
        self._scheduler = LoopScheduler(
            executors={"default": _MeasuredExecutor(self._due)},
            job_defaults={"max_instances": 1, "coalesce": True},
            timezone=timezone.utc,
        )
        self._scheduler.add_listener(self._on_event, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        self.states: dict[str, TargetState] = {}
        # Jobs of targets applied before start(): added by start(), so that the work done
        # between the first apply and start-up's end does not make their first runs late.
        self._unstarted: dict[str, float] = {}
        self._unusual = {"missed": 0, "skipped": 0}
        self._unusual_logged = float("-inf")
        self._in_flight: set[asyncio.Task] = set()
        metrics.in_flight.set_function(lambda: len(self._in_flight))
        self.lag = LoopLag(metrics.registry, busy=lambda: bool(self._in_flight))
        self._overdue_runs = Counter(
            "tocsin_scheduler_overdue_total",
            f"Times a target's probe had not started for {OVERDUE_INTERVALS} of its intervals (once per stall).",
            registry=metrics.registry)
        self._next_overdue_check = 0.0
        self.clock = clock
        self.on_maintenance: Callable[[TargetState, bool], None] | None = None  # entering (True) / leaving
        if clock is not None:
            clock.subscribe(self._on_clock_step)
        self._scheduler.before_pass = self._before_pass

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start dispatching; targets applied before this get their phases from this moment."""
        now = datetime.now(timezone.utc)
        for name, interval in self._unstarted.items():
            self._add_job(name, interval, first_run(name, interval, now))
        self._unstarted.clear()
        started = time.monotonic()
        for state in self.states.values():
            state.last_started = started
        self._next_overdue_check = started + OVERDUE_CHECK_EVERY
        self._scheduler.start()
        self.lag.start(asyncio.get_event_loop())

    async def stop(self, grace: float) -> None:
        """Stop scheduling, then give in-flight probes up to `grace` seconds to finish."""
        if self._scheduler.running:
            self._scheduler.pause()  # no new runs; shutdown() would cancel the in-flight ones
        if self._in_flight:
            await asyncio.wait(list(self._in_flight), timeout=grace)
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)  # cancels only what outlived the grace
        self.lag.stop()

    @property
    def running(self) -> bool:
        return self._scheduler.running

    # ---------------------------------------------------------------- targets

    def apply(self, targets: list[Target]) -> dict[str, list[str]]:
        """Make the jobs match `targets`: add new, drop removed, restart changed, keep the rest."""
        wanted = {t.name: t for t in targets}
        changes: dict[str, list[str]] = {"added": [], "removed": [], "changed": [], "kept": []}
        for name in list(self.states):
            if name not in wanted:
                self._remove_job(name)
                del self.states[name]
                changes["removed"].append(name)
        now = datetime.now(timezone.utc)
        for name, target in wanted.items():
            state = self.states.get(name)
            if state is not None and state.target == target:
                changes["kept"].append(name)
                continue
            if state is not None:
                self._remove_job(name)
                changes["changed"].append(name)
            else:
                changes["added"].append(name)
            interval = target.interval
            self.states[name] = TargetState(target, interval)
            if self._scheduler.running:
                self._add_job(name, interval, first_run(name, interval, now))
            else:
                self._unstarted[name] = interval
        return changes

    def _add_job(self, name: str, interval: float, start: datetime) -> None:
        self._scheduler.add_job(
            self._run, IntervalTrigger(seconds=interval, start_date=start, timezone=timezone.utc),
            args=(name,), id=name, name=name, next_run_time=start,
            misfire_grace_time=max(1, int(interval)), replace_existing=True)

    def _remove_job(self, name: str) -> None:
        self._due.pop(name, None)
        self._unstarted.pop(name, None)
        if self._scheduler.get_job(name) is not None:
            self._scheduler.remove_job(name)

    def _reschedule(self, state: TargetState, interval: float) -> None:
        if interval == state.interval:
            return
        state.interval = interval
        job = self._scheduler.get_job(state.target.name)
        if job is not None:
            start = on_grid(datetime.now(timezone.utc) + timedelta(seconds=interval))
            job.reschedule(IntervalTrigger(seconds=interval, start_date=start, timezone=timezone.utc))

    def add_heartbeat(self, beat: Callable[[], None], every: float) -> None:
        """Run `beat` through the scheduler itself: it stops if the scheduler stops dispatching."""
        async def heartbeat() -> None:
            beat()

        self._scheduler.add_job(heartbeat, IntervalTrigger(seconds=max(every, 0.1), timezone=timezone.utc),
                                id=HEARTBEAT_JOB, replace_existing=True,
                                next_run_time=datetime.now(timezone.utc))

    def run_soon(self, name: str) -> None:
        """Probe `name` at the next step of the grid as well as on its schedule (whose phase stays):
        a push target whose job just reported, or whose deadline just passed."""
        job = self._scheduler.get_job(name)
        if job is not None:
            job.modify(next_run_time=on_grid(datetime.now(timezone.utc)))

    def next_run(self, name: str) -> datetime | None:
        job = self._scheduler.get_job(name)
        return getattr(job, "next_run_time", None)

    # ---------------------------------------------------------------- running

    async def _run(self, name: str) -> None:
        state = self.states.get(name)
        if state is None:
            return
        target = state.target
        if maintenance.skip_run(state, self.on_maintenance):
            return
        correlation_id = new_correlation_id()
        task = asyncio.current_task()
        self._in_flight.add(task)  # type: ignore[arg-type]  # never None inside a task
        try:
            with log_context(target=name, correlation_id=correlation_id):
                async with self._slots:
                    state.last_started, state.overdue = time.monotonic(), False
                    due = self._due.pop(name, None)
                    if due is not None:
                        self._metrics.lateness.observe((datetime.now(timezone.utc) - due).total_seconds())
                    result = await self.lag.probe(  # None: tocsin's own lag voided it (and its retry)
                        lambda: run_probe(target.probe, asyncio.get_running_loop().time() + target.timeout,
                                          correlation_id), self._on_inconclusive, len(self.states))
                if result is None or self.states.get(name) is not state:  # or removed/replaced while probing
                    return
                self._adjust_interval(state, result)
                previous, state.last_result = state.last_result, result
                self._on_result(state, result, previous)
        finally:
            self._in_flight.discard(task)

    def _adjust_interval(self, state: TargetState, result: ProbeResult) -> None:
        """Stretch the interval of a failing target (backoff_when_down); snap back on success."""
        base = state.target.interval
        state.consecutive_failures = 0 if result.success else state.consecutive_failures + 1
        policy = state.target.backoff_when_down
        if policy is None:
            return
        if result.success:
            self._reschedule(state, base)
        else:
            stretched = base * policy.multiplier ** state.consecutive_failures
            self._reschedule(state, min(policy.max_interval, stretched))

    # ---------------------------------------------------------------- clock and stalls

    def _before_pass(self) -> None:
        if self.clock is not None:
            self.clock.check()
        now = time.monotonic()
        if now >= self._next_overdue_check:
            self._next_overdue_check = now + OVERDUE_CHECK_EVERY
            self._report_overdue(now)

    def _report_overdue(self, now: float) -> None:
        """Log and count targets whose probe has not started for OVERDUE_INTERVALS intervals."""
        late = []
        for name, state in self.states.items():
            if state.overdue:
                continue
            allowed = OVERDUE_INTERVALS * state.interval + state.target.timeout
            if now - state.last_started > allowed:
                state.overdue = True
                late.append(name)
        if late:
            self._overdue_runs.inc(len(late))
            log.warning("%d target%s not probed for more than %d intervals: %s%s", len(late),
                        "" if len(late) == 1 else "s", OVERDUE_INTERVALS, ", ".join(late[:5]),
                        ", …" if len(late) > 5 else "")

    def _on_clock_step(self, step: float) -> None:
        """Move every job's next run (and the due times of runs waiting for a slot) by the step.

        The step is rounded to the grid so runs stay on it. Called from whichever thread saw
        the step first; APScheduler's job store takes its own lock."""
        delta = timedelta(microseconds=round(step / SLOT) * round(SLOT * 1_000_000))
        if not delta:
            return
        for job in self._scheduler.get_jobs():
            if job.next_run_time is not None:
                job.modify(next_run_time=job.next_run_time + delta)
        for name, due in list(self._due.items()):
            self._due[name] = due + delta

    def _on_event(self, event: JobEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            self._metrics.missed_runs.inc()
            self._unusual["missed"] += 1
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            self._metrics.skipped_runs.inc()
            self._unusual["skipped"] += 1
        now = time.monotonic()
        if now - self._unusual_logged >= 60:  # one summary a minute, not a line per target
            self._unusual_logged = now
            log.warning("probe runs not started on time in the last minute: %d missed (too late), "
                        "%d skipped (previous run still going)", self._unusual["missed"], self._unusual["skipped"])
            self._unusual = {"missed": 0, "skipped": 0}


# APScheduler checks a job function's signature against its args on every add_job;
# inspect.signature recomputes it each time (~14 µs: 0.14 s of start-up at 10 000 targets).
# A function's __signature__ is what inspect.signature returns for it, so compute it once.
ProbeScheduler._run.__signature__ = inspect.signature(ProbeScheduler._run)  # type: ignore[attr-defined]  # see above
