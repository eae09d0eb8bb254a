"""A restart inside `group_wait` must not lose the page.

The durable boundary starts where the alert fires, not where its group flushes: an alert
that fired before a `kill -9` or a clean stop, and still fires after the restart, reaches
the receiver within group_wait of the restart, not after the resend delay (1 min), and a
group that was already notified is not notified twice.
"""

from __future__ import annotations

import signal
import time

import pytest

from conftest import free_port, wait_for
from notify_sinks import HTTPSink, validate_webhook_v4

RULES = """
groups:
  - name: down
    interval: 300ms
    rules:
      - alert: TargetDown
        expr: probe_success == 0
        labels: {severity: critical}
"""


def _config(sink: HTTPSink, group_wait: str) -> str:
    return f"""
global: {{listen_address: "127.0.0.1:{{port}}", interval: 300ms, timeout: 250ms, state_dir: "{{dir}}/state"}}
targets:
  - {{name: db, tcp: {{address: "127.0.0.1:{free_port()}"}}}}
rule_files: [rules/*.yml]
alerting:
  route: {{receiver: hook, group_by: [alertname], group_wait: {group_wait}, group_interval: 1s, repeat_interval: 1h}}
  receivers:
    - name: hook
      webhook: {{url: "{sink.url}/hook", timeout: 2s}}
"""


def _firing(sink: HTTPSink) -> list[dict]:
    return [b for b in sink.bodies() if b["status"] == "firing"]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_alert_that_fired_inside_group_wait_is_notified_after_a_restart(daemon_factory, tmp_path, sig):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "down.yml").write_text(RULES)
    sink = HTTPSink(validate=validate_webhook_v4)
    try:
        config = _config(sink, group_wait="4s")
        first = daemon_factory(config)
        wait_for(lambda: "alert firing" in first.output(), timeout=20, what="the alert firing")
        time.sleep(0.5)  # well inside group_wait: nothing was sent yet
        first.stop(sig)
        assert _firing(sink) == []

        restarted = time.monotonic()
        second = daemon_factory(config)
        firing = wait_for(lambda: _firing(sink), timeout=30, what="the firing notification after the restart")
        # group_wait (4 s) counts from the alert's start, so the flush is due at once after a
        # restart; far below the 60 s resend delay the alert would otherwise wait for.
        assert time.monotonic() - restarted < 25
        assert firing[0]["alerts"][0]["labels"]["alertname"] == "TargetDown"
        assert second.stop() == 0
        assert sink.errors == []
    finally:
        sink.stop()


def test_a_group_notified_before_a_restart_is_not_notified_again(daemon_factory, tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "down.yml").write_text(RULES)
    sink = HTTPSink(validate=validate_webhook_v4)
    try:
        config = _config(sink, group_wait="0s")
        first = daemon_factory(config)
        wait_for(lambda: _firing(sink), timeout=20, what="the first firing notification")
        # Delivered and acknowledged: killed before that, the outbox rightly delivers it again.
        wait_for(lambda: first.sample("tocsin_outbox_length") == 0, what="the outbox empty")
        first.stop(signal.SIGKILL)

        second = daemon_factory(config)
        wait_for(lambda: "alert" in second.output() and second.sample("ALERTS", alertname="TargetDown",
                                                                       alertstate="firing") == 1,
                 timeout=20, what="the alert firing again after the restart")
        time.sleep(3)  # a few group intervals: the notification log says it was sent already
        assert len(_firing(sink)) == 1
        assert second.stop() == 0
    finally:
        sink.stop()
