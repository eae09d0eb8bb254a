"""The overload judgement on a real loop: a timeout the loop caused is voided and retried once;
one the target caused, with the loop free, is a failure."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry

import hostile
from hostile import HostileServer
from tocsin import aio
from tocsin.config import parse_config
from tocsin.overload import LoopLag
from tocsin.probes import ProbeResult, run_probe


def _judged_probes(port: int, stall: float, timeout: float = 0.4) -> tuple[list[ProbeResult], ProbeResult | None]:
    """Probe 127.0.0.1:`port` through LoopLag on tocsin's loop; the first attempt has the loop
    blocked for `stall` seconds just after it starts. Returns (every attempt's result, verdict)."""
    target = parse_config({"targets": [{"name": "t", "url": f"http://127.0.0.1:{port}/", "timeout": f"{round(timeout * 1000)}ms",
                                        "interval": "30s"}]}, "test").targets[0]
    attempts: list[ProbeResult] = []
    voided: list[ProbeResult] = []

    async def scenario() -> ProbeResult | None:
        loop = asyncio.get_running_loop()
        lag = LoopLag(CollectorRegistry(), busy=lambda: True)
        lag.start(loop)

        async def run() -> ProbeResult:
            if not attempts and stall:
                loop.call_soon(time.sleep, stall)  # the loop's own slowness, not the target's
            result = await run_probe(target.probe, loop.time() + target.timeout)
            attempts.append(result)
            return result

        try:
            return await lag.probe(run, voided.append, targets=1)
        finally:
            lag.stop()

    verdict = aio.run(scenario())
    assert len(voided) == len(attempts) - (verdict is not None)
    return attempts, verdict


def test_a_timeout_the_loop_caused_is_voided_and_retried_at_once():
    with HostileServer(hostile.ok()) as server:
        attempts, verdict = _judged_probes(server.port, stall=0.6)
    assert [a.reason for a in attempts] == ["timeout", ""]  # the stall ate the deadline; the retry succeeded
    assert verdict is attempts[1] and verdict.success


def test_a_target_that_hangs_while_the_loop_is_free_is_a_failure():
    with HostileServer(hostile.accept_and_hang()) as server:
        attempts, verdict = _judged_probes(server.port, stall=0.0)
    assert len(attempts) == 1 and verdict is attempts[0]
    assert not verdict.success and verdict.reason == "timeout"


def test_voided_results_are_retried_once_per_run_not_in_a_storm():
    with HostileServer(hostile.accept_and_hang()) as server:
        # The loop is blocked in every attempt: the first is voided, its one retry too, then it stops.
        target_stall = 0.6

        async def scenario() -> tuple[int, int]:
            loop = asyncio.get_running_loop()
            lag = LoopLag(CollectorRegistry(), busy=lambda: True)
            lag.start(loop)
            target = parse_config({"targets": [{"name": "t", "url": f"http://127.0.0.1:{server.port}/",
                                                "timeout": "400ms", "interval": "30s"}]}, "test").targets[0]
            runs, voided = [0], []

            async def run() -> ProbeResult:
                runs[0] += 1
                loop.call_soon(time.sleep, target_stall)
                return await run_probe(target.probe, loop.time() + target.timeout)

            verdict = await lag.probe(run, voided.append, targets=1)
            lag.stop()
            assert verdict is None  # nothing recorded
            return runs[0], len(voided)

        assert aio.run(scenario()) == (2, 2)


def test_an_inconclusive_result_is_counted_and_the_last_conclusive_gauges_stand():
    """/metrics and the rules' store both keep the last conclusive probe_success; the store gets
    it again with the counter, so none of the target's series goes stale (no alert resolves)."""
    from tocsin.metrics import ProbeMetrics

    target = parse_config({"targets": [{"name": "api", "url": "http://127.0.0.1:1/", "labels": {"team": "core"}}]},
                          "test").targets[0]
    metrics = ProbeMetrics()
    metrics.ensure(target)
    delivered: list[tuple[str, dict[str, float], float]] = []
    metrics.subscribe(lambda name, samples, t: delivered.append(
        (name, {(n + str(dict(labels[2:]) or "")): v for n, labels, v in samples}, t)))
    down = ProbeResult(target="api", kind="http", success=False, reason="connect", message="refused", duration=0.01,
                       attempts=1, first_attempt_success=False, correlation_id="c", started_at=1000.0, timeout=1.0)
    metrics.record(down)
    metrics.record_inconclusive("api", 1005.0)
    (_, first, _), (name, second, when) = delivered
    assert name == "api" and when == 1005.0
    assert second["probe_success"] == first["probe_success"] == 0.0
    assert second["tocsin_probes_inconclusive_total"] == 1.0 and first["tocsin_probes_inconclusive_total"] == 0.0
    assert set(first) <= set(second)  # every series the conclusive result fed, fed again
    text = metrics.render()
    assert 'probe_success{target="api",team="core"} 0\n' in text
    assert 'tocsin_probes_inconclusive_total{target="api",team="core"} 1\n' in text
    assert 'tocsin_probes_total{target="api",team="core",result="failure"} 1\n' in text
