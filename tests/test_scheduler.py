"""The probe schedule: phases on a shared grid, and one wake-up per grid slot, not per job."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from apscheduler.triggers.interval import IntervalTrigger

from tocsin import aio
from tocsin.loop_scheduler import SLOT, LoopScheduler, first_run, phase_offset

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def test_first_runs_sit_on_the_grid_just_after_their_phase():
    now = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
    for i in range(500):
        name = f"target-{i}"
        when = first_run(name, 5.0, now)
        assert when == first_run(name, 5.0, now)  # stable: a restart keeps the phase
        assert (when - EPOCH) % timedelta(seconds=SLOT) == timedelta(0), when
        earliest = now + timedelta(seconds=phase_offset(name, 5.0))
        assert earliest <= when < earliest + timedelta(seconds=SLOT), (name, earliest, when)


def test_first_runs_still_spread_over_the_interval():
    now = datetime.now(timezone.utc)
    offsets = {round((first_run(f"t{i}", 5.0, now) - now).total_seconds(), 1) for i in range(1000)}
    assert len(offsets) >= 45  # 5 s in 0.1 s slots: 50 possible first-run slots, nearly all used


class _CountingScheduler(LoopScheduler):
    def __init__(self, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self.passes = 0

    def _process_jobs(self):  # type: ignore[no-untyped-def]
        self.passes += 1
        return super()._process_jobs()


def _passes_and_runs(start_of: Callable[[int, datetime], datetime]) -> tuple[int, list[tuple[str, float]]]:
    """40 no-op jobs every second on the daemon's loop (uvloop) for 3 s: scheduler passes, runs."""
    runs: list[tuple[str, float]] = []

    async def scenario() -> int:
        loop = asyncio.get_running_loop()
        scheduler = _CountingScheduler(job_defaults={"max_instances": 1, "coalesce": True}, timezone=timezone.utc)
        scheduler.start()

        async def job(name: str) -> None:
            runs.append((name, loop.time()))

        now = datetime.now(timezone.utc)
        for i in range(40):
            start = start_of(i, now)
            scheduler.add_job(job, IntervalTrigger(seconds=1.0, start_date=start, timezone=timezone.utc),
                              args=(f"job-{i}",), id=f"job-{i}", next_run_time=start)
        await asyncio.sleep(1.2)  # every job has run once; the adds' own wake-ups are behind us
        runs.clear()
        before = scheduler.passes
        window[0] = loop.time()
        await asyncio.sleep(3.0)
        window[1] = loop.time()
        scheduler.shutdown(wait=False)
        return scheduler.passes - before

    window = [0.0, 0.0]
    passes = aio.run(scenario())
    # every job ran about once a second of the window (3 s, longer if a busy machine overslept),
    # give or take 0.25 s of runs at its edges (more when busy: runs are late there)
    from conftest import scaled

    seconds, edge = window[1] - window[0], scaled(0.25)
    assert 40 * (seconds - edge) <= len(runs) <= 40 * (seconds + edge), (len(runs), seconds)
    assert len({name for name, _ in runs}) == 40
    return passes, runs


def test_jobs_due_in_one_slot_start_in_one_wakeup():
    """On the grid, 40 jobs a second start in at most ~10 passes a second, not 40."""
    passes, runs = _passes_and_runs(lambda i, now: first_run(f"job-{i}", 1.0, now))
    seconds_of_runs = len(runs) / 40  # ~3, more if a busy machine stretched the window
    assert passes <= seconds_of_runs * round(1.0 / SLOT) + 5, (passes, len(runs))


def test_each_due_time_costs_one_pass_not_a_spin():
    """Off the grid (25 ms apart), one pass per run: the timer does not fire early and spin.

    The stock AsyncIOScheduler on uvloop measured ~3.6 passes per run here."""
    passes, runs = _passes_and_runs(lambda i, now: now + timedelta(seconds=0.5 + i * 0.025))
    assert passes <= 1.2 * len(runs) + 5, (passes, len(runs))
