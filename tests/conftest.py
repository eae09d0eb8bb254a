"""Shared fixtures: free ports, a real daemon process, and tools that CI must have."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
import requests

REPO = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_tool(name: str) -> str:
    """The path of an external tool; skip without it, except in CI, where its absence fails."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed"
        if IN_CI:
            pytest.fail(f"{message} (CI must install it: see .ci/run)")
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_run(count: int) -> int:
    """A port p with p … p+count-1 free, for shards (shard i listens on the port + i).

    Taken below the kernel's ephemeral range: a port there is never the local end of some
    outgoing connection (a probe's, a test client's), which may take p + 1 in the ephemeral
    range between this check and the shard's bind."""
    low, _ = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    rng = random.Random()
    for _ in range(500):
        port = rng.randrange(max(1024, low - 12_000), low - count)
        try:
            for i in range(count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port + i))
        except OSError:
            continue
        return port
    raise AssertionError(f"no {count} consecutive free ports")


# How much slower than an idle machine this one may be taken to run. A bound scaled past this is
# no longer a bound: at 8, a 1 s allowance becomes 8 s, still short of a hang or a forgotten timer.
MAX_SLOWDOWN = 8.0
_slowdown_cache: list[float] = [float("-inf"), 1.0]  # when last measured, value


def _cpu_share_slowdown(cpu_seconds: float = 0.02) -> float:
    """Wall time over CPU time of a short busy loop: 1 when this process has a core to itself,
    ~N/cores when N runnable processes share the cores (other test runs, builds, busy loops)."""
    wall0, cpu0 = time.perf_counter(), time.thread_time()
    while time.thread_time() - cpu0 < cpu_seconds:
        pass
    return (time.perf_counter() - wall0) / max(time.thread_time() - cpu0, 1e-9)


def slowdown() -> float:
    """How many times longer than on an idle machine things take here now, in [1, MAX_SLOWDOWN].

    Timing bounds in the tests are written for an idle machine and multiplied by this, so they
    stay tight where the machine is free and hold where it is shared. Two measures, the larger
    wins: this process's share of a CPU right now (instantaneous), and the load average per
    core (the last minute, which catches load that comes and goes in bursts). Measured at most
    once a second (it costs 20 ms of CPU)."""
    now = time.monotonic()
    if now - _slowdown_cache[0] >= 1.0:
        cores = len(os.sched_getaffinity(0)) or 1
        measured = max(_cpu_share_slowdown(), os.getloadavg()[0] / cores)
        _slowdown_cache[:] = [now, min(MAX_SLOWDOWN, max(1.0, measured))]
    return _slowdown_cache[1]


def scaled(seconds: float) -> float:
    """A duration written for an idle machine, stretched to what this machine can do now."""
    return seconds * slowdown()


def wait_for(condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    """Poll until `condition()` is truthy; return its value or fail after `timeout` seconds.

    `timeout` is for an idle machine; it is scaled by `slowdown()`, so a loaded machine waits
    longer before declaring failure (a passing wait returns as soon as the condition holds)."""
    factor = slowdown()
    timeout *= factor
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except AssertionError:  # the condition knows it can never become true (a daemon exited)
            raise
        except Exception as exc:  # noqa: BLE001 - keep polling, report the last error
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.1f}s (slowdown {factor:.1f}) waiting for {what}"
                         + (f" (last error: {last_exc!r})" if last_exc else ""))


class DaemonProcess:
    """A real `tocsin run` process on a free port, with helpers to read its endpoints."""

    def __init__(self, tmp_path: Path, config_text: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.dir = tmp_path
        self.config = tmp_path / "tocsin.yml"
        self.write_config(config_text)
        self.log = tmp_path / "daemon.out"
        self._env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_config(self, text: str) -> None:
        self.config.write_text(text.replace("{port}", str(self.port)).replace("{dir}", str(self.dir)))

    def start(self, wait_ready: bool = True) -> "DaemonProcess":
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tocsin.cli", "run", "--config", str(self.config)],
            cwd=self.dir, env=self._env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        if wait_ready:
            wait_for(self._ready, timeout=20, what="daemon ready")
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"daemon exited with {self.proc.returncode}:\n{self.output()}")
        return requests.get(self.url + "/-/ready", timeout=scaled(2)).status_code == 200

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def metrics(self) -> str:
        return requests.get(self.url + "/metrics", timeout=scaled(5)).text

    def sample(self, name: str, **labels: str) -> float | None:
        """The value of the first sample of `name` whose labels include `labels`."""
        from prometheus_client.parser import text_string_to_metric_families

        for family in text_string_to_metric_families(self.metrics()):
            for s in family.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return s.value
        return None

    def targets(self) -> list[dict]:
        return requests.get(self.url + "/api/v1/targets", timeout=scaled(5)).json()["data"]

    def stop(self, sig: int = 15, timeout: float = 20) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        timeout = scaled(timeout)
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"daemon did not stop within {timeout:.1f}s:\n{self.output()}") from None


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    started: list[DaemonProcess] = []

    def make(config_text: str, env: dict[str, str] | None = None, start: bool = True) -> DaemonProcess:
        d = DaemonProcess(tmp_path, config_text, env)
        started.append(d)
        return d.start() if start else d

    yield make
    for d in started:
        if d.proc is not None and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()


@pytest.fixture
def listen() -> Iterator[Callable[..., object]]:
    """`listen(**web)`: a started web listener (tests/listener_harness.py) with that `web:`
    configuration, on 127.0.0.1; every one is stopped after the test."""
    from listener_harness import Listener
    from tocsin.config import WebConfig

    started: list[Listener] = []

    def make(**web: object) -> Listener:
        listener = Listener(WebConfig(**web))
        started.append(listener)
        return listener

    yield make
    for listener in started:
        listener.stop()
