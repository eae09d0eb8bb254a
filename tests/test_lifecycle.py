"""A real daemon's lifecycle as systemd sees it: sd_notify, reload by SIGHUP, drain on SIGTERM.

systemd's side is played by an AF_UNIX datagram socket bound in tmp_path and passed in
NOTIFY_SOCKET (with WATCHDOG_USEC), exactly what the service manager gives a Type=notify
service. Targets are real HTTP servers on 127.0.0.1 that count the probes they receive.
"""

from __future__ import annotations

import http.server
import os
import re
import signal
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from conftest import wait_for


class NotifySocket:
    """The service manager's end of NOTIFY_SOCKET: records every datagram, in order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, dict[str, str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.messages.append((time.monotonic(), fields))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def events(self) -> list[str]:
        """The messages as a compact sequence: READY, STATUS, WATCHDOG, RELOADING, STOPPING."""
        names = []
        for _, fields in self.messages:
            for key in ("READY", "RELOADING", "STOPPING", "WATCHDOG", "STATUS"):
                if key in fields:
                    names.append(key)
        return names

    def count(self, key: str) -> int:
        return sum(1 for _, fields in self.messages if key in fields)

    def statuses(self) -> list[str]:
        return [fields["STATUS"] for _, fields in self.messages if "STATUS" in fields]


@pytest.fixture
def notify(tmp_path: Path):
    sock = NotifySocket(tmp_path / "notify.sock")
    yield sock
    sock.close()


class Target:
    """A real HTTP server on 127.0.0.1 that counts requests per path; /slow takes 30 s."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        hits = self.hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's API
                hits[self.path] += 1
                if self.path == "/slow":
                    time.sleep(30)
                body = b'{"status": "ok"}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def target():
    server = Target()
    yield server
    server.close()


def _env(notify: NotifySocket, **extra: str) -> dict[str, str]:
    env = {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "600000", **extra}
    env.pop("WATCHDOG_PID", None)
    return env


def _config(target: Target, *names: str, interval: str = "200ms", timeout: str = "150ms", extra: str = "") -> str:
    lines = "\n".join(f'  - {{name: {n}, url: "{target.url("/" + n)}", interval: {interval}, timeout: {timeout}}}'
                      for n in names)
    return f"""global: {{listen_address: "127.0.0.1:{{port}}", interval: 1s, timeout: 1s}}
targets:
{lines}
{extra}"""


def test_notify_sequence_ready_status_watchdog_reload_stopping(daemon_factory, notify, target):
    daemon = daemon_factory(_config(target, "a", "b"), env=_env(notify))
    wait_for(lambda: notify.count("READY"), what="READY=1")
    wait_for(lambda: notify.count("WATCHDOG") >= 3, timeout=5, what="three watchdog pings")
    wait_for(lambda: any("2 up" in s for s in notify.statuses()), what="STATUS with the probe results")

    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: notify.count("READY") >= 2, what="READY=1 after the reload")
    reloading = [f for _, f in notify.messages if "RELOADING" in f]
    assert len(reloading) == 1 and reloading[0]["RELOADING"] == "1"
    # MONOTONIC_USEC is the time of the reload on CLOCK_MONOTONIC, which processes share.
    assert before <= int(reloading[0]["MONOTONIC_USEC"]) <= time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    pings_after_reload = notify.count("WATCHDOG")
    wait_for(lambda: notify.count("WATCHDOG") > pings_after_reload, timeout=3, what="pings go on after the reload")

    from conftest import scaled

    started = time.monotonic()
    assert daemon.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < scaled(5)

    events = notify.events()
    first_ready = events.index("READY")
    assert "WATCHDOG" not in events[:first_ready], "no watchdog ping before the service is ready"
    assert events[:first_ready] == ["STATUS"] * first_ready, events  # "starting"
    assert events.index("RELOADING") > first_ready
    second_ready = events.index("READY", events.index("RELOADING"))
    assert "STATUS" in events[events.index("RELOADING"):second_ready]  # "reloading configuration"
    assert events.index("STOPPING") > second_ready
    assert "WATCHDOG" in events[first_ready:events.index("RELOADING")]
    assert not [e for e in events[events.index("STOPPING"):] if e in ("READY", "RELOADING")]
    statuses = notify.statuses()
    assert statuses[0] == "starting" and "reloading configuration" in statuses
    assert statuses[-1].startswith("stopping")


def test_watchdog_pings_stop_when_the_scheduler_hangs(daemon_factory, notify, target):
    """The test hook hangs the event loop: the scheduler stops, so do the pings; the
    listener threads still answer, so the pings never came from a free-running thread."""
    daemon = daemon_factory(_config(target, "a"), env=_env(notify, TOCSIN_TEST_HOOKS="1"))
    wait_for(lambda: notify.count("WATCHDOG") >= 3, timeout=5, what="watchdog pings")
    daemon.proc.send_signal(signal.SIGUSR2)
    wait_for(lambda: "hanging the event loop" in daemon.output(), what="the hook to fire")
    from conftest import scaled

    time.sleep(scaled(0.3))  # a ping already on its way may still land
    pings, hits = notify.count("WATCHDOG"), target.hits["/a"]
    time.sleep(1.5)  # 2.5 watchdog periods (WATCHDOG_USEC=600ms)
    assert notify.count("WATCHDOG") == pings
    assert target.hits["/a"] == hits, "probes stop with the scheduler"
    assert requests.get(daemon.url + "/-/healthy", timeout=2).status_code == 200


def test_test_hook_is_inert_without_its_variable(daemon_factory, notify, target):
    daemon = daemon_factory(_config(target, "a"), env=_env(notify))
    assert "TOCSIN_TEST_HOOKS" not in os.environ
    daemon.proc.send_signal(signal.SIGUSR2)  # no handler: the default action ends the process
    assert daemon.proc.wait(5) == -signal.SIGUSR2
    assert "hanging" not in daemon.output()


def test_sighup_with_a_broken_config_keeps_the_old_targets(daemon_factory, notify, target):
    daemon = daemon_factory(_config(target, "a", "b"), env=_env(notify))
    wait_for(lambda: target.hits["/a"] >= 1 and target.hits["/b"] >= 1, what="both targets probed")
    assert daemon.sample("tocsin_config_last_reload_successful") == 1

    daemon.write_config(_config(target, "a", "b").replace("timeout: 150ms}", "timeout: soon}", 1)
                        + "  - {name: c, url: 'http://127.0.0.1:1/', bogus_key: 1}\n")
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: daemon.sample("tocsin_config_last_reload_successful") == 0, what="the reload to fail")
    hits = dict(target.hits)
    wait_for(lambda: target.hits["/a"] >= hits["/a"] + 3 and target.hits["/b"] >= hits["/b"] + 3,
             what="the old targets to keep being probed")
    assert {t["name"] for t in daemon.targets()} == {"a", "b"}
    # One probe of 150 ms may time out on a crowded machine; a later one succeeds.
    wait_for(lambda: daemon.sample("probe_success", target="a") == 1, what="target a up under the old config")
    assert daemon.sample("probe_success", target="c") is None
    output = daemon.output()
    # Every error names the file, the line and the key path.
    assert re.search(rf"(?:{re.escape(str(daemon.config))}|tocsin\.yml):\d+:\d+: targets\[0\]\.timeout", output), output
    assert "targets[2].bogus_key" in output, output
    assert "reload failed, keeping the running configuration" in output
    assert any("last reload failed" in s for s in notify.statuses())
    assert notify.count("READY") == 2  # READY=1 again after the failed reload: systemd must not wait

    # A broken reload over HTTP says so too, and a fixed file recovers.
    response = requests.post(daemon.url + "/-/reload", timeout=10)
    assert response.status_code == 500 and "bogus_key" in response.text
    daemon.write_config(_config(target, "a", "b"))
    assert requests.post(daemon.url + "/-/reload", timeout=10).status_code == 200
    assert daemon.sample("tocsin_config_last_reload_successful") == 1
    assert daemon.stop() == 0


def test_sighup_adds_and_removes_targets_and_keeps_unchanged_schedules(daemon_factory, notify, target):
    steady = f'  - {{name: steady, url: "{target.url("/steady")}", interval: 1h}}\n'
    daemon = daemon_factory(_config(target, "a", "b", extra=steady), env=_env(notify))
    wait_for(lambda: daemon.sample("probe_success", target="a") == 1
             and daemon.sample("probe_success", target="b") == 1, what="a and b up")
    steady_next = {t["name"]: t for t in daemon.targets()}["steady"]["next_run"]

    daemon.write_config(_config(target, "b", "c", extra=steady))
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: daemon.sample("probe_success", target="c") == 1, what="the added target to be probed")
    metrics = daemon.metrics()
    assert 'target="a"' not in metrics, "a removed target leaves /metrics"
    assert daemon.sample("probe_success", target="b") == 1
    assert daemon.sample("tocsin_config_last_reload_successful") == 1
    views = {t["name"]: t for t in daemon.targets()}
    assert set(views) == {"b", "c", "steady"}
    assert views["steady"]["next_run"] == steady_next, "an unchanged target keeps its schedule"
    a_hits = target.hits["/a"]
    b_hits = target.hits["/b"]
    wait_for(lambda: target.hits["/b"] >= b_hits + 3, what="b still probed")
    assert target.hits["/a"] == a_hits, "a removed target is no longer probed"
    assert "reload finished" in daemon.output() and "added=c removed=a changed=- kept=2" in daemon.output()
    assert daemon.stop() == 0


def test_sigterm_drains_in_flight_probes_and_exits_zero(daemon_factory, notify, target):
    daemon = daemon_factory(_config(target, "a", interval="3s", timeout="2s").replace("/a", "/slow"),
                            env=_env(notify))
    wait_for(lambda: target.hits["/slow"] >= 1, what="a probe in flight")
    from conftest import scaled

    started = time.monotonic()
    assert daemon.stop(signal.SIGTERM) == 0
    elapsed = time.monotonic() - started
    # /slow answers after 30 s: the probe ends at its own 2 s deadline, not the server's pace
    assert elapsed < 2 + scaled(2.5), f"stopped after {elapsed:.1f}s; the probe's own deadline is 2s"
    assert notify.count("STOPPING") == 1
    output = daemon.output()
    assert "SIGTERM received: stopping" in output and "tocsin stopped" in output
    assert "CancelledError" not in output, "the in-flight probe ran to its deadline, not cancelled"
    assert "target is down" in output, output  # its result was recorded before the exit


def test_sigint_stops_like_sigterm(daemon_factory, notify, target):
    daemon = daemon_factory(_config(target, "a"), env=_env(notify))
    from conftest import scaled

    started = time.monotonic()
    assert daemon.stop(signal.SIGINT) == 0
    assert time.monotonic() - started < scaled(3)
    assert notify.count("STOPPING") == 1
