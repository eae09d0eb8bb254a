"""An overloaded tocsin does not page for its own slowness.

The overload run: many targets at 1 s against a fast loopback HTTP server, while two busy
loops take the machine's cores and tocsin runs at the lowest CPU priority, so its event
loop runs late and its probes' deadlines pass with the answers unread. The shipped rules
(with short `for:` so the run is short) must fire no alert about the healthy targets, the
overload alert must fire instead, and the voided probes must be counted.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import REPO, scaled, wait_for

TARGETS = 150
OVERLOAD_SECONDS = 20.0
MIN_OVERLOAD_SECONDS = 12.0

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
    """The port of a FAST_SERVER process."""
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
        # At least MIN_OVERLOAD_SECONDS of overload (every late probe a chance of a false alert),
        # and until the overload alert fires, within a bound.
        started = time.monotonic()
        deadline = started + min(scaled(OVERLOAD_SECONDS), 2 * OVERLOAD_SECONDS)
        while time.monotonic() < deadline and (time.monotonic() - started < MIN_OVERLOAD_SECONDS
                                               or "alert firing: TocsinOverloaded" not in daemon.output()):
            time.sleep(0.5)
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
    output = daemon.output()
    fired = re.findall(r"alert firing: (\w+)", output)
    inconclusive = _sum_of(daemon, "tocsin_probes_inconclusive_total")
    print(f"overload run: {time.monotonic() - started:.1f}s, load {os.getloadavg()[0]:.1f}; alerts fired "
          f"{dict(Counter(fired))}; probes: {_sum_of(daemon, 'tocsin_probes_total', result='success'):g} "
          f"succeeded, {_sum_of(daemon, 'tocsin_probes_total', result='failure'):g} failed, "
          f"{inconclusive:g} inconclusive; {_sum_of(daemon, 'tocsin_scheduler_skipped_runs_total'):g} runs skipped, "
          f"{_sum_of(daemon, 'tocsin_scheduler_missed_runs_total'):g} missed")
    false_alerts = [name for name in fired if name != "TocsinOverloaded"]
    assert not false_alerts, f"alerts fired for healthy targets: {sorted(set(false_alerts))}:\n{output[-3000:]}"
    assert "TocsinOverloaded" in fired, f"no overload alert in {OVERLOAD_SECONDS:g}s of overload:\n{output[-3000:]}"
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
