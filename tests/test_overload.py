"""An overloaded tocsin does not page for its own slowness.

The overload run: many targets at 1 s against a fast loopback HTTP server, while two busy
loops take the machine's cores and tocsin runs at the lowest CPU priority, so its event
loop runs late and its probes' deadlines pass with the answers unread. The shipped rules
(with short `for:` so the run is short) must fire no alert about the healthy targets, the
overload alert must fire instead, and the voided probes must be counted.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

import hostile
from conftest import REPO, scaled, wait_for
from hostile import HostileServer
from tocsin import aio
from tocsin.config import parse_config
from tocsin.overload import LoopLag
from tocsin.probes import ProbeResult, run_probe

TARGETS = 150
OVERLOAD_SECONDS = 20.0

# A loopback HTTP server that answers at once: an asyncio process of its own (at a raised CPU
# priority when the test may set one), so the only slow party in the run is tocsin.
FAST_SERVER = r"""
import asyncio

async def answer(reader, writer):
    try:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()

async def main():
    server = await asyncio.start_server(answer, "127.0.0.1", 0, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"""


def _raise_priority() -> None:
    try:
        os.nice(-10)
    except PermissionError:
        pass


@pytest.fixture
def fast_server() -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, "-c", FAST_SERVER], stdout=subprocess.PIPE, text=True,
                            preexec_fn=_raise_priority)
    try:
        assert proc.stdout is not None
        yield int(proc.stdout.readline())
    finally:
        proc.kill()
        proc.wait()


def _busy_loops(count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def _lowest_priority(pid: int) -> None:
    """Every thread of `pid` at nice 19 (threads it starts later inherit it)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.setpriority(os.PRIO_PROCESS, int(task.name), 19)
        except (ProcessLookupError, PermissionError):
            pass


def _shipped_rules_with_short_for() -> str:
    """etc/rules/tocsin.yml as shipped, every `for:` cut to 1 s: one late probe counted as a
    failure would fire TargetDown within the run."""
    text = (REPO / "etc/rules/tocsin.yml").read_text()
    text, cuts = re.subn(r"\bfor: \w+", "for: 1s", text)
    assert cuts >= 4
    return text


def test_an_overloaded_tocsin_does_not_page_for_its_own_slowness(daemon_factory, tmp_path, fast_server):
    (tmp_path / "rules.yml").write_text(_shipped_rules_with_short_for())
    targets = "\n".join(f'  - {{name: web-{i}, url: "http://127.0.0.1:{fast_server}/{i}"}}' for i in range(TARGETS))
    daemon = daemon_factory(f"""
global: {{listen_address: "127.0.0.1:{{port}}", interval: 1s, timeout: 500ms, evaluation_interval: 1s,
          state_dir: "{{dir}}/state"}}
targets:
{targets}
rule_files: [rules.yml]
""")
    # Before the load: every target answers, so what follows is about tocsin, not the targets.
    wait_for(lambda: daemon.sample("tocsin_targets_up") == TARGETS, timeout=10, what="every target up")
    assert daemon.proc is not None
    _lowest_priority(daemon.proc.pid)
    loops = _busy_loops(2)
    try:
        deadline = time.monotonic() + min(scaled(OVERLOAD_SECONDS), 2 * OVERLOAD_SECONDS)
        while time.monotonic() < deadline and "alert firing: TocsinOverloaded" not in daemon.output():
            time.sleep(0.5)
        time.sleep(2.0)  # a few more evaluations under load
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
    output = daemon.output()
    fired = re.findall(r"alert firing: (\w+)", output)
    false_alerts = [name for name in fired if name != "TocsinOverloaded"]
    assert not false_alerts, f"alerts fired for healthy targets: {sorted(set(false_alerts))}:\n{output[-3000:]}"
    assert "TocsinOverloaded" in fired, f"no overload alert in {OVERLOAD_SECONDS:g}s of overload:\n{output[-3000:]}"
    inconclusive = _sum_of(daemon, "tocsin_probes_inconclusive_total")
    assert inconclusive > 0
    assert _sum_of(daemon, "tocsin_probes_total", result="failure") == 0
    lag_samples = daemon.sample("tocsin_event_loop_lag_seconds_count")
    assert lag_samples is not None and lag_samples > 0


def _sum_of(daemon, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(daemon.metrics()):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


# ---------------------------------------------------------------- the judgement, on a real loop


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


def test_a_timeout_the_loop_caused_is_voided_and_retried_at_once(fast_server):
    attempts, verdict = _judged_probes(fast_server, stall=0.6)
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
