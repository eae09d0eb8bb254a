"""A real `tocsin run` process probing real servers; what /metrics and the API show."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import requests

import hostile
from conftest import free_port, require_tool, wait_for
from hostile import HostileServer


def closed_port() -> int:
    return free_port()  # nothing listens there once the probe socket is closed


def test_daemon_probes_and_exports_blackbox_compatible_metrics(daemon_factory, tmp_path):
    with HostileServer(hostile.ok(b'{"status": "ok"}')) as web, HostileServer(hostile.status(500)) as broken:
        down_port = closed_port()
        daemon = daemon_factory(f"""
global: {{listen_address: "127.0.0.1:{{port}}", interval: 1s, timeout: 800ms}}
targets:
  - {{name: web, url: "{web.url()}", labels: {{team: core}}}}
  - {{name: broken, url: "{broken.url()}", retry: {{attempts: 2, initial_backoff: 50ms}}}}
  - {{name: db, tcp: {{address: "127.0.0.1:{web.port}"}}}}
  - {{name: gone, tcp: {{address: "127.0.0.1:{down_port}"}}}}
""")
        wait_for(lambda: all(daemon.sample("probe_success", target=t) is not None for t in ("web", "broken", "db", "gone")),
                 what="a first result for every target")
        assert daemon.sample("probe_success", target="web", team="core") == 1
        assert daemon.sample("probe_http_status_code", target="web") == 200
        assert daemon.sample("probe_http_content_length", target="web") == 16
        assert daemon.sample("probe_success", target="broken") == 0
        assert daemon.sample("probe_http_status_code", target="broken") == 500
        assert daemon.sample("tocsin_probe_attempts", target="broken") == 2
        assert daemon.sample("tocsin_probe_failure_reason", target="broken", reason="status") == 1
        assert daemon.sample("probe_success", target="db") == 1
        assert daemon.sample("probe_success", target="gone") == 0
        assert daemon.sample("tocsin_probe_failure_reason", target="gone", reason="connect") == 1
        wait_for(lambda: daemon.sample("tocsin_probes_total", target="web", result="success") >= 2, what="a second run")
        assert daemon.sample("tocsin_probe_duration_seconds_count", target="web") >= 2
        assert daemon.sample("tocsin_probe_failures_total", target="gone", reason="connect") >= 1

        targets = {t["name"]: t for t in daemon.targets()}
        assert targets["web"]["health"] == "up" and targets["web"]["labels"] == {"team": "core"}
        assert targets["broken"]["last_result"]["reason"] == "status"
        assert targets["broken"]["last_result"]["attempts"] == 2
        assert targets["gone"]["health"] == "down" and targets["gone"]["next_run"]
        assert requests.get(daemon.url + "/-/healthy", timeout=2).status_code == 200
        page = requests.get(daemon.url + "/", timeout=2)
        assert page.status_code == 200 and "broken" in page.text

        metrics_file = tmp_path / "metrics.txt"
        metrics_file.write_text(daemon.metrics())
        promtool = require_tool("promtool")
        lint = subprocess.run([promtool, "check", "metrics"], stdin=metrics_file.open(), capture_output=True, text=True)
        assert lint.returncode == 0, lint.stdout + lint.stderr
        assert daemon.stop() == 0


def test_hanging_targets_do_not_delay_healthy_ones(daemon_factory):
    from prometheus_client.parser import text_string_to_metric_families

    from conftest import slowdown

    # On an idle machine: the healthy target probed every 500 ms within 400 ms, its runs at most
    # 0.25 s late. Both stretch with the machine's load, the allowed lateness to 1 s at most;
    # the hanging probes hold their slots for 2 s, so a run queued behind them would still be
    # later than that.
    factor = slowdown()
    healthy_timeout = round(0.4 * factor, 1)
    healthy_interval = max(0.5, round(1.25 * healthy_timeout, 1))
    allowed = next(b for b in (0.25, 0.5, 1.0) if b >= min(0.25 * factor, 1.0))

    def ms(seconds: float) -> str:
        return f"{round(seconds * 1000)}ms"

    with HostileServer(hostile.accept_and_hang()) as hang, HostileServer(hostile.ok()) as web:
        hanging = "\n".join(f'  - {{name: hang{i}, url: "{hang.url()}", timeout: 2s}}' for i in range(60))
        daemon = daemon_factory(f"""
global: {{listen_address: "127.0.0.1:{{port}}", interval: 2s, timeout: 500ms, max_concurrent_probes: 100}}
targets:
{hanging}
  - {{name: healthy, url: "{web.url()}", interval: {ms(healthy_interval)}, timeout: {ms(healthy_timeout)}}}
""")
        wait_for(lambda: (daemon.sample("tocsin_probes_total", target="healthy", result="success") or 0) >= 10,
                 timeout=15 * healthy_interval / 0.5, what="ten healthy probes")
        wait_for(lambda: daemon.sample("probe_success", target="hang0") == 0, timeout=10, what="hanging probes fail")
        text = daemon.metrics()  # one scrape: the counts below are of the same moment
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for family in text_string_to_metric_families(text) for s in family.samples}
        assert samples[("tocsin_probes_total", (("result", "failure"), ("target", "healthy")))] == 0, text
        # p99 of lateness: the +Inf bucket minus the ≤`allowed` bucket must be under 1 % of runs
        total = samples[("tocsin_scheduler_lateness_seconds_count", ())]
        within = samples[("tocsin_scheduler_lateness_seconds_bucket", (("le", str(allowed)),))]
        assert within >= 0.99 * total, (within, total, allowed)


def test_start_times_are_spread_over_the_interval(daemon_factory):
    count = 100
    targets = "\n".join(f'  - {{name: t{i}, tcp: {{address: "127.0.0.1:{closed_port()}"}}}}' for i in range(count))
    daemon = daemon_factory(f"""
global: {{listen_address: "127.0.0.1:{{port}}", interval: 4s, timeout: 1s}}
targets:
{targets}
""")
    started = time.time()
    wait_for(lambda: all(daemon.sample("tocsin_probe_last_run_timestamp_seconds", target=f"t{i}") for i in range(count)),
             timeout=15, what="every target probed once")
    firsts = [daemon.sample("tocsin_probe_last_run_timestamp_seconds", target=f"t{i}") for i in range(count)]
    seconds = Counter(int(ts - started) for ts in firsts)
    assert max(seconds.values()) <= count // 2, seconds  # evenly spread would be ~25 per second


def test_backoff_when_down_stretches_then_snaps_back(daemon_factory):
    port = free_port()
    daemon = daemon_factory(f"""
global: {{listen_address: "127.0.0.1:{{port}}", interval: 500ms, timeout: 300ms}}
targets:
  - name: flappy
    tcp: {{address: "127.0.0.1:{port}"}}
    backoff_when_down: {{max_interval: 2s, multiplier: 2}}
""")
    wait_for(lambda: daemon.sample("tocsin_probe_interval_seconds", target="flappy") == 2.0, timeout=10,
             what="the interval stretched to max_interval")
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(16)
        stop = threading.Event()

        def accept_forever():
            listener.settimeout(0.1)
            while not stop.is_set():
                try:
                    listener.accept()[0].close()
                except OSError:
                    pass

        thread = threading.Thread(target=accept_forever, daemon=True)
        thread.start()
        try:
            wait_for(lambda: daemon.sample("probe_success", target="flappy") == 1, timeout=10, what="recovery")
            assert daemon.sample("tocsin_probe_interval_seconds", target="flappy") == 0.5
        finally:
            stop.set()
            thread.join()


def test_a_target_never_has_two_probes_at_once(daemon_factory):
    active, peak, lock = [0], [0], threading.Lock()

    def slow(conn, stop):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            hostile._read_request(conn)
            stop.wait(0.45)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        finally:
            with lock:
                active[0] -= 1

    with HostileServer(slow) as server:
        daemon = daemon_factory(f"""
global: {{listen_address: "127.0.0.1:{{port}}"}}
targets:
  - {{name: slow, url: "{server.url()}", interval: 500ms, timeout: 500ms}}
""")
        wait_for(lambda: (daemon.sample("tocsin_probes_total", target="slow", result="success") or 0) >= 5,
                 timeout=15, what="five probes")
    assert peak[0] == 1


def test_probe_command_prints_and_exits_by_result():
    with HostileServer(hostile.ok()) as web:
        ok = subprocess.run([sys.executable, "-m", "tocsin.cli", "probe", web.url()], capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "success" in ok.stdout and "http_status_code" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "tocsin.cli", "probe", f"127.0.0.1:{closed_port()}", "--timeout", "1"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 1 and "failure (connect" in bad.stdout


def test_broken_config_at_start_exits_78_with_the_errors(daemon_factory):
    daemon = daemon_factory("global: {interval: soon}\n", start=False)
    result = subprocess.run([sys.executable, "-m", "tocsin.cli", "run", "--config", str(daemon.config)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 78
    assert f"{daemon.config}:1:10: global.interval: expected a duration" in result.stderr  # FILE:LINE:COL


def _wakeups(pid: int) -> int:
    """Voluntary context switches of every thread of `pid`: how often it went to sleep."""
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        for line in status.read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                total += int(line.split()[1])
    return total


def test_an_idle_daemon_stays_asleep(daemon_factory):
    """Nothing due, nothing to deliver: no thread polls. (The web listener used to wake 4 times
    a second and each notification thread once; on a VM each wake-up costs ~0.2 ms of CPU.)"""
    daemon = daemon_factory(f"""
global: {{listen_address: "127.0.0.1:{{port}}", interval: 1h, timeout: 1s, evaluation_interval: 1h,
          state_dir: "{{dir}}/state"}}
targets:
  - {{name: quiet, tcp: {{address: "127.0.0.1:{closed_port()}"}}}}
alerting:
  route: {{receiver: hook}}
  receivers:
    - name: hook
      webhook: {{url: "http://127.0.0.1:{closed_port()}/hook"}}
""")
    time.sleep(2.0)  # start-up's own work (first probe at its phase of the hour, not before) settles
    before = _wakeups(daemon.proc.pid)
    time.sleep(5.0)
    woke = _wakeups(daemon.proc.pid) - before
    assert woke <= 5, f"{woke} wake-ups in 5 s of idling"
