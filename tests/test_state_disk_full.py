"""A full disk under state_dir: nothing lost, nothing sent twice, and the fault is visible.

A real daemon writes its state on a small tmpfs, which the test fills with a file while a
receiver is failing: every outbox and rule-state write fails. The delivery lane must survive
(it used to die on its first failed write, and nothing was delivered again until a restart,
while /-/healthy said 200), deliver what was committed without sending it twice, hold a new
alert in memory, and say so in the log, in `tocsin_state_write_errors_total{db}`, in
`tocsin_notify_lane_stalled` and in /-/healthy. Once the file is gone, what was held is
delivered within one backoff, without a restart.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from conftest import IN_CI, free_port, scaled, wait_for
from notify_sinks import HTTPSink, validate_webhook_v4

MAX_BACKOFF = 0.5

RULES = """
groups:
  - name: disk
    interval: 300ms
    rules:
      - alert: TargetDown
        expr: probe_success == 0
"""


@pytest.fixture
def small_state_dir(tmp_path: Path):
    """tmp_path/state on a 16 MiB tmpfs of its own (needs root to mount)."""
    if os.geteuid() != 0:
        if IN_CI:
            pytest.fail("CI runs as root: mounting a tmpfs must work there")
        pytest.skip("mounting a tmpfs needs root")
    state = tmp_path / "state"
    state.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(state)], check=True)
    try:
        yield state
    finally:
        if subprocess.run(["umount", str(state)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(state)], check=False)


def fill(directory: Path) -> Path:
    """Write a file until the file system has no room left; return it."""
    path = directory / "filler"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    block = b"\0" * 65536
    try:
        while True:
            try:
                os.write(fd, block)
            except OSError:
                if len(block) == 1:
                    break
                block = block[: len(block) // 2]
    finally:
        os.close(fd)
    return path


def test_a_full_disk_stalls_delivery_visibly_and_it_drains_once_there_is_room(small_state_dir, daemon_factory,
                                                                              tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "disk.yml").write_text(RULES)
    cache = socket.create_server(("127.0.0.1", 0))  # up while it listens
    sink = HTTPSink(validate=validate_webhook_v4, mode="fail")
    try:
        daemon = daemon_factory(f"""
global: {{listen_address: "127.0.0.1:{{port}}", interval: 300ms, timeout: 250ms, state_dir: "{small_state_dir}"}}
targets:
  - {{name: db, tcp: {{address: "127.0.0.1:{free_port()}"}}}}
  - {{name: cache, tcp: {{address: "127.0.0.1:{cache.getsockname()[1]}"}}}}
rule_files: [rules/*.yml]
alerting:
  route: {{receiver: hook, group_by: [alertname, target], group_wait: 0s, group_interval: 500ms, repeat_interval: 1h}}
  receivers:
    - name: hook
      webhook: {{url: "{sink.url}/hook", timeout: 2s}}
  resolve_timeout: 1h
  delivery: {{initial_backoff: 100ms, max_backoff: {int(MAX_BACKOFF * 1000)}ms, breaker_failures: 100,
              breaker_cooldown: 500ms}}
""")
        # 1. db is down; its notification is committed and the receiver refuses it.
        wait_for(lambda: sink.attempts >= 2, timeout=20, what="failing deliveries")
        assert requests.get(daemon.url + "/-/healthy", timeout=scaled(2)).status_code == 200

        # 2. The disk fills up: recording the failed deliveries, and the rule state, fail.
        filler = fill(small_state_dir)
        wait_for(lambda: (daemon.sample("tocsin_state_write_errors_total", db="notify.sqlite") or 0) > 0,
                 timeout=10, what="failed outbox writes counted")
        wait_for(lambda: (daemon.sample("tocsin_state_write_errors_total", db="rules.db") or 0) > 0,
                 timeout=10, what="failed rule-state writes counted")
        wait_for(lambda: daemon.sample("tocsin_notify_lane_stalled", receiver="hook") == 1, what="the lane stalled")
        health = requests.get(daemon.url + "/-/healthy", timeout=scaled(2))
        assert health.status_code == 503 and "the file system is full" in health.text, health.text

        # 3. A new alert while the disk is full: it cannot be committed, and waits in memory.
        cache.close()
        wait_for(lambda: daemon.sample("tocsin_notify_dispatch_stalled") == 1, timeout=15,
                 what="the cache alert held back by the full disk")

        # 4. The receiver is back: what was committed is delivered, once, although it cannot be deleted.
        sink.mode = "ok"
        wait_for(lambda: sink.received, timeout=10, what="the db notification")
        time.sleep(scaled(3 * MAX_BACKOFF))
        keys = [r.headers["Idempotency-Key"] for r in sink.received]
        assert len(keys) == len(set(keys)) == 1, f"{len(keys)} deliveries of {len(set(keys))} notifications"
        assert [a["labels"]["target"] for a in sink.received[0].body["alerts"]] == ["db"]

        # 5. Room again: the held notification is delivered within one backoff, without a restart.
        freed = time.monotonic()
        filler.unlink()
        wait_for(lambda: len(sink.received) >= 2, timeout=MAX_BACKOFF + 2, interval=0.01,
                 what="the cache notification")
        delay = time.monotonic() - freed
        print(f"\ndelivered {delay:.2f}s after the disk had room again (max backoff {MAX_BACKOFF}s)")
        assert delay <= MAX_BACKOFF + scaled(0.5)
        assert [a["labels"]["target"] for a in sink.received[1].body["alerts"]] == ["cache"]
        wait_for(lambda: requests.get(daemon.url + "/-/healthy", timeout=scaled(2)).status_code == 200,
                 timeout=5, what="healthy again")
        assert daemon.sample("tocsin_notify_lane_stalled", receiver="hook") == 0
        assert daemon.sample("tocsin_notify_dispatch_stalled") == 0
        wait_for(lambda: daemon.sample("tocsin_outbox_length") == 0, what="the outbox emptied")
        assert len(sink.received) == 2 and not sink.errors
        output = daemon.output()
        assert "the file system is full" in output and "cannot rollback" not in output
        assert "delivery lane works again" in output
        assert daemon.stop() == 0
    finally:
        cache.close()
        sink.stop()
