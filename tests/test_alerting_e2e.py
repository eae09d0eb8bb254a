"""The whole flow in one real daemon: probe → sample store → rule → alert → route → webhook."""

from __future__ import annotations

import signal
import socket
import threading
import time

from conftest import free_port, wait_for
from notify_sinks import HTTPSink, validate_webhook_v4

RULES = """
groups:
  - name: e2e
    interval: 500ms
    rules:
      - alert: TargetDown
        expr: probe_success == 0
        for: 1s
        labels: {severity: critical}
        annotations: {summary: "Target {{ $labels.target }} is down"}
"""


class Listener:
    """A TCP port that can be switched between accepting and refused (closed)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def up(self) -> None:
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", self.port))
        self._sock.listen(64)
        self._sock.settimeout(0.05)
        self._stop.clear()

        def accept() -> None:
            while not self._stop.is_set():
                try:
                    self._sock.accept()[0].close()  # type: ignore[union-attr]
                except OSError:
                    pass

        self._thread = threading.Thread(target=accept, daemon=True)
        self._thread.start()

    def down(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        if self._sock:
            self._sock.close()


def test_target_down_fires_a_webhook_then_resolves(daemon_factory, tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "e2e.yml").write_text(RULES)
    sink = HTTPSink(validate=validate_webhook_v4)
    port = free_port()
    service = Listener(port)
    service.up()
    try:
        daemon = daemon_factory(f"""
global: {{listen_address: "127.0.0.1:{{port}}", interval: 300ms, timeout: 250ms, state_dir: "{{dir}}/state",
          external_labels: {{site: lab}}}}
targets:
  - {{name: db, tcp: {{address: "127.0.0.1:{port}"}}, labels: {{team: data}}}}
rule_files: [rules/*.yml]
alerting:
  route: {{receiver: hook, group_by: [alertname], group_wait: 200ms, group_interval: 1s, repeat_interval: 1h}}
  receivers:
    - name: hook
      webhook: {{url: "{sink.url}/hook"}}
""")
        wait_for(lambda: daemon.sample("probe_success", target="db") == 1, what="the target up")
        went_down = time.monotonic()
        service.down()
        firing = wait_for(lambda: [b for b in sink.bodies() if b["status"] == "firing"], timeout=20,
                          what="a firing notification")
        time_to_notify = time.monotonic() - went_down
        body = firing[0]
        assert body["receiver"] == "hook" and body["groupLabels"] == {"alertname": "TargetDown"}
        alert = body["alerts"][0]
        assert alert["labels"] == {"alertname": "TargetDown", "target": "db", "team": "data",
                                   "severity": "critical", "site": "lab"}
        assert alert["annotations"]["summary"] == "Target db is down"
        # interval + for + group_wait + evaluation interval, with room for a loaded machine
        from conftest import scaled

        assert time_to_notify < scaled(10), time_to_notify
        assert daemon.sample("ALERTS", alertname="TargetDown", alertstate="firing", target="db") == 1
        alerts = __import__("requests").get(daemon.url + "/api/tocsin/alerts", timeout=5).json()["data"]
        assert any(a["labels"]["alertname"] == "TargetDown" for a in alerts)

        service.up()
        resolved = wait_for(lambda: [b for b in sink.bodies() if b["status"] == "resolved"], timeout=20,
                            what="a resolved notification")
        assert resolved[0]["alerts"][0]["labels"]["target"] == "db"
        assert [b["status"] for b in sink.bodies()].count("firing") == 1  # no duplicate while it fired
        assert sink.errors == []
        assert daemon.sample("tocsin_outbox_length") == 0
        assert daemon.stop() == 0
    finally:
        service.down()
        sink.stop()


def test_notification_survives_sigkill_of_the_daemon(daemon_factory, tmp_path):
    """Receiver down → alert fires → kill -9; restart → delivery stalls → kill -9; restart → it arrives."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "e2e.yml").write_text(RULES)
    sink = HTTPSink(validate=validate_webhook_v4, mode="fail")
    config = f"""
global: {{listen_address: "127.0.0.1:{{port}}", interval: 300ms, timeout: 250ms, state_dir: "{{dir}}/state"}}
targets:
  - {{name: db, tcp: {{address: "127.0.0.1:{free_port()}"}}}}
rule_files: [rules/*.yml]
alerting:
  route: {{receiver: hook, group_by: [alertname], group_wait: 0s, group_interval: 1s, repeat_interval: 1h}}
  receivers:
    - name: hook
      webhook: {{url: "{sink.url}/hook", timeout: 1s}}
  delivery: {{initial_backoff: 50ms, max_backoff: 200ms, breaker_failures: 3, breaker_cooldown: 300ms}}
"""
    try:
        first = daemon_factory(config)
        wait_for(lambda: (first.sample("tocsin_outbox_length") or 0) >= 1 and sink.attempts >= 1, timeout=20,
                 what="a notification in the outbox, its delivery refused")
        first.stop(signal.SIGKILL)

        sink.mode, attempts = "stall", sink.attempts
        second = daemon_factory(config)
        wait_for(lambda: sink.attempts > attempts, timeout=20, what="a delivery in flight after restart")
        second.stop(signal.SIGKILL)

        sink.mode = "ok"
        sink._release.set()  # let the stalled request go: its sender is gone
        third = daemon_factory(config)
        wait_for(lambda: sink.received, timeout=30, what="the notification delivered after two kills")
        wait_for(lambda: third.sample("tocsin_outbox_length") == 0, timeout=10, what="an empty outbox")
        firing = [r for r in sink.received if r.body["status"] == "firing"]
        assert firing and all(r.body["alerts"][0]["labels"]["alertname"] == "TargetDown" for r in firing)
        keys = {r.headers["Idempotency-Key"] for r in firing}
        assert len(keys) == 1, keys  # a duplicate may only repeat the same notification
        assert sink.errors == []
        assert third.stop() == 0
    finally:
        sink.stop()
