"""A target whose probe cannot start is reported: logged and counted once per stall, whatever the cause.

The scheduler keeps each target's last start on the monotonic clock; a target not started for
OVERDUE_INTERVALS of its intervals (plus its timeout) is overdue. Here the cause is a full pool
of probe slots (every slot held), on the daemon's own loop, with a real TCP target.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from conftest import scaled
from tocsin import aio, scheduler
from tocsin.config import parse_config
from tocsin.metrics import SelfMetrics
from tocsin.scheduler import OVERDUE_INTERVALS, ProbeScheduler


def _overdue_total(metrics: SelfMetrics) -> float:
    value = metrics.registry.get_sample_value("tocsin_scheduler_overdue_total")
    return 0.0 if value is None else value


def test_a_target_that_cannot_start_is_reported_once_per_stall(monkeypatch, caplog):
    monkeypatch.setattr(scheduler, "OVERDUE_CHECK_EVERY", 0.2)  # look often: the test stays short
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    targets = parse_config({"targets": [
        {"name": "db", "tcp": {"address": f"127.0.0.1:{port}"}, "interval": "300ms", "timeout": "200ms"},
    ]}, "test").targets
    allowed = OVERDUE_INTERVALS * 0.3 + 0.2  # seconds without a start before "overdue"
    results: list[bool] = []
    seen: dict[str, float] = {}

    async def scenario() -> None:
        metrics = SelfMetrics()
        probes = ProbeScheduler(metrics, lambda _s, result, _p: results.append(result.success), max_concurrent=1)
        probes.apply(targets)
        probes.start()
        try:
            await asyncio.sleep(scaled(1.0))  # probing freely: several results, nothing overdue
            seen["free_results"], seen["free_overdue"] = len(results), _overdue_total(metrics)
            await probes._slots.acquire()  # the pool is full from now on: no probe can start
            await asyncio.sleep(allowed + scaled(0.8))
            seen["stalled"] = _overdue_total(metrics)
            await asyncio.sleep(scaled(1.0))  # still stalled, looked at again: not counted again
            seen["still_stalled"] = _overdue_total(metrics)
            before_release = len(results)
            probes._slots.release()
            await asyncio.sleep(scaled(1.0))  # probing again: the target is no longer overdue
            seen["resumed_results"] = len(results) - before_release
            seen["resumed_flag"] = float(probes.states["db"].overdue)
            await probes._slots.acquire()  # full again (once the running probe ends): a second stall
            await asyncio.sleep(allowed + scaled(0.8))
            seen["second_stall"] = _overdue_total(metrics)
        finally:
            await probes.stop(grace=0.5)

    with caplog.at_level(logging.WARNING, logger="tocsin.scheduler"):
        aio.run(scenario())
    listener.close()
    assert seen["free_results"] >= 2 and all(results[: int(seen["free_results"])])
    assert seen["free_overdue"] == 0
    assert seen["stalled"] == 1, seen
    assert seen["still_stalled"] == 1, seen
    assert seen["resumed_results"] >= 1 and seen["resumed_flag"] == 0, seen
    assert seen["second_stall"] == 2, seen
    warnings = [r.getMessage() for r in caplog.records if "not probed for more than" in r.getMessage()]
    assert len(warnings) == 2 and all("db" in w for w in warnings), warnings

