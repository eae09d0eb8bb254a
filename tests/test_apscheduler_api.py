"""The private parts of APScheduler that the probe scheduler builds on are still there, unchanged.

`LoopScheduler` replaces how AsyncIOScheduler arms its timer and `_MeasuredExecutor` hooks
into how AsyncIOExecutor submits a run: both lean on private methods and attributes, which
a release may rename or change without notice. pyproject.toml pins APScheduler's minor
version; this test is what a bump of that pin must pass first.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable

import apscheduler
from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from tocsin.loop_scheduler import LoopScheduler
from tocsin.scheduler import _MeasuredExecutor

# (class, method): the parameters it must take. Overridden: wakeup, _start_timer (scheduler),
# _do_submit_job (executor); called from the overrides: _stop_timer, _process_jobs.
EXPECTED = {
    (AsyncIOScheduler, "wakeup"): ["self"],
    (AsyncIOScheduler, "_start_timer"): ["self", "wait_seconds"],
    (AsyncIOScheduler, "_stop_timer"): ["self"],
    (AsyncIOScheduler, "_process_jobs"): ["self"],
    (AsyncIOExecutor, "_do_submit_job"): ["self", "job", "run_times"],
}


def parameters(function: Callable[..., object]) -> list[str]:
    return list(inspect.signature(inspect.unwrap(function)).parameters)


def test_apscheduler_is_the_pinned_minor_version():
    assert apscheduler.__version__.startswith("3.11."), apscheduler.__version__


def test_private_methods_exist_with_the_expected_signature():
    for (cls, name), expected in EXPECTED.items():
        method = getattr(cls, name, None)
        assert callable(method), f"{cls.__name__}.{name} is gone"
        assert parameters(method) == expected, f"{cls.__name__}.{name}{inspect.signature(method)}"


def test_overrides_match_what_they_replace():
    for ours, theirs in ((LoopScheduler, AsyncIOScheduler), (_MeasuredExecutor, AsyncIOExecutor)):
        for name, function in vars(ours).items():
            if callable(function) and name != "__init__" and hasattr(theirs, name):
                assert parameters(function) == parameters(getattr(theirs, name)), f"{ours.__name__}.{name}"
    assert not list(inspect.signature(AsyncIOExecutor.__init__).parameters)[1:], "AsyncIOExecutor() takes arguments"


def test_private_attributes_the_timer_relies_on():
    # _start_timer stores the armed timer in _timeout, and the stock _stop_timer cancels that;
    # _process_and_rearm reads _eventloop, None before start and after shutdown.
    assert AsyncIOScheduler._timeout is None and AsyncIOScheduler._eventloop is None
    assert "self._timeout" in inspect.getsource(AsyncIOScheduler._stop_timer)


def test_adding_or_rescheduling_a_job_calls_wakeup():
    """LoopScheduler's wakeup is where a new job gets its timer: it must still be the way in."""

    class Counting(AsyncIOScheduler):
        wakeups = 0

        def wakeup(self) -> None:
            self.wakeups += 1

    async def scenario() -> list[int]:
        scheduler = Counting()
        scheduler.start()
        counts = [scheduler.wakeups]
        job = scheduler.add_job(asyncio.sleep, "interval", args=(0,), seconds=60)
        counts.append(scheduler.wakeups)
        job.reschedule("interval", seconds=30)
        counts.append(scheduler.wakeups)
        scheduler.shutdown(wait=False)
        return counts

    started, added, rescheduled = asyncio.run(scenario())
    assert started < added < rescheduled, (started, added, rescheduled)
