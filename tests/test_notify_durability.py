"""At-least-once delivery across SIGKILL: a real process, a real outbox, a receiver that comes back.

The process is killed (1) while the receiver is down, (2) while a delivery is in flight to a
receiver that accepted the connection and stalls, (3) in the middle of a stream of slow
deliveries; then it restarts with a healthy receiver. Every notification must arrive, and
a duplicate may only repeat a notification with the same idempotency key.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections import defaultdict

from conftest import REPO, free_port, wait_for
from notify_sinks import HTTPSink, validate_webhook_v4

N = 20
DRIVER = """
import sys, time
from datetime import datetime, timezone
from tocsin.config import load_config
from tocsin.notify import Alert, Notifier
config = load_config(sys.argv[1]).config
notifier = Notifier(config.alerting, state_dir=config.global_.state_dir,
                    external_labels=config.global_.external_labels)
notifier.start()
started = datetime(2024, 1, 1, tzinfo=timezone.utc)
alerts = [Alert(labels={"alertname": "TargetDown", "target": f"t{i:02d}"}, starts_at=started)
          for i in range(int(sys.argv[2]))]
while True:  # like the rule engine: the same firing alerts after every evaluation
    notifier.submit(alerts)
    time.sleep(0.2)
"""

CONFIG = """
global: {{state_dir: {state}, external_labels: {{site: lab}}}}
alerting:
  route: {{receiver: hook, group_by: ['...'], group_wait: 0s, group_interval: 200ms, repeat_interval: 1h}}
  receivers:
    - name: hook
      webhook: {{url: 'http://127.0.0.1:{port}/hook', timeout: 1s}}
  delivery: {{initial_backoff: 50ms, max_backoff: 200ms, breaker_failures: 3, breaker_cooldown: 300ms}}
"""


def test_every_notification_survives_sigkill(tmp_path):
    port = free_port()
    state = tmp_path / "state"
    config = tmp_path / "tocsin.yml"
    config.write_text(CONFIG.format(state=state, port=port))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    db = state / "notify.sqlite"

    def spawn() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", DRIVER, str(config), str(N)], env=env,
                                stdout=subprocess.DEVNULL, stderr=(tmp_path / "driver.log").open("ab"))

    def outbox_length() -> int:
        if not db.exists():
            return -1
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

    def kill(proc: subprocess.Popen) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)

    sink = None
    proc = spawn()
    try:
        # 1. The receiver is down: all N notifications are committed, none delivered; SIGKILL.
        wait_for(lambda: outbox_length() == N, timeout=15, what="N notifications in the outbox")
        kill(proc)
        # 2. The receiver accepts the connection and stalls: SIGKILL with a delivery in flight.
        sink = HTTPSink(validate=validate_webhook_v4, port=port, mode="stall")
        proc = spawn()
        wait_for(lambda: sink.attempts >= 1, timeout=15, what="a delivery in flight")
        kill(proc)
        assert sink.received == [] and outbox_length() == N
        # 3. Slow receiver: it records each request, then answers after 150 ms; SIGKILL mid-stream.
        sink.mode, sink.delay = "ok", 0.15
        proc = spawn()
        wait_for(lambda: len(sink.received) >= 5, timeout=15, what="some deliveries")
        kill(proc)
        after_kill = len(sink.received)
        # 4. Healthy receiver: the rest arrives.
        sink.delay = 0.0
        proc = spawn()
        wait_for(lambda: outbox_length() == 0, timeout=20, what="outbox drained")
        kill(proc)
    finally:
        if proc.poll() is None:
            kill(proc)
        if sink:
            sink.stop()

    by_key: dict[str, list] = defaultdict(list)
    keys_by_target: dict[str, set[str]] = defaultdict(set)
    for r in sink.received:
        key = r.headers["Idempotency-Key"]
        by_key[key].append(r.body)
        for alert in r.body["alerts"]:
            keys_by_target[alert["labels"]["target"]].add(key)
    targets = sorted(keys_by_target)
    duplicates = len(sink.received) - len(by_key)
    print(f"\ndurability: {N} notifications, {len(sink.received)} deliveries received, {len(by_key)} distinct "
          f"idempotency keys, {duplicates} duplicates (same key); {after_kill} received before the third kill")
    assert targets == [f"t{i:02d}" for i in range(N)], "every notification arrived"
    assert all(len(keys) == 1 for keys in keys_by_target.values()), "restarts did not create new notifications"
    assert all(all(b == bodies[0] for b in bodies) for bodies in by_key.values()), "a duplicate repeats its key"
    assert len(by_key) == N and duplicates <= 2
    assert not sink.errors
