"""A reload that stops routing a notified alert to a receiver resolves it there at once.

Removing the `alerting` section, or changing a route so that the alert now goes elsewhere,
leaves nobody to tell the old receiver that the alert is over: it would stay paged until
someone closes it by hand (resolve_timeout is 1 h here, and the new notifier does not know
the old group anyway). The old notifier resolves such alerts before it stops, commits the
resolution to the outbox during the reload, and keeps delivering to a receiver the new
configuration removed until it has everything, even if that receiver is down for a while.
"""

from __future__ import annotations

import signal
import time

from conftest import free_port, scaled, wait_for
from notify_sinks import HTTPSink, validate_webhook_v4

RULES = """
groups:
  - name: guard
    interval: 300ms
    rules:
      - alert: TargetDown
        expr: probe_success == 0
"""


def _config(receiver: str | None, sinks: dict[str, HTTPSink]) -> str:
    alerting = "" if receiver is None else f"""
alerting:
  route: {{receiver: {receiver}, group_by: [alertname], group_wait: 0s, group_interval: 500ms, repeat_interval: 1h}}
  receivers:
""" + "".join(f"""    - name: {name}
      webhook: {{url: "{sink.url}/{name}", timeout: 2s}}
""" for name, sink in sinks.items()) + """  resolve_timeout: 1h
  delivery: {initial_backoff: 100ms, max_backoff: 300ms, breaker_failures: 100, breaker_cooldown: 300ms}
"""
    return f"""
global: {{listen_address: "127.0.0.1:{{port}}", interval: 300ms, timeout: 250ms, state_dir: "{{dir}}/state"}}
targets:
  - {{name: db, tcp: {{address: "127.0.0.1:{free_port()}"}}}}
rule_files: [rules/*.yml]
""" + alerting


def _statuses(sink: HTTPSink) -> list[str]:
    return [b["status"] for b in sink.bodies()]


def test_removing_the_alerting_section_resolves_at_once_even_if_the_receiver_is_down(daemon_factory, tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "guard.yml").write_text(RULES)
    sink = HTTPSink(validate=validate_webhook_v4)
    try:
        daemon = daemon_factory(_config("hook", {"hook": sink}))
        wait_for(lambda: _statuses(sink) == ["firing"], timeout=20, what="the firing notification")
        sink.mode = "fail"  # down during the reload: the resolution must wait for it, not be dropped
        daemon.write_config(_config(None, {}))
        started = time.monotonic()
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: sink.attempts >= 3, timeout=10, what="the resolution tried while the receiver is down")
        sink.mode = "ok"
        wait_for(lambda: _statuses(sink) == ["firing", "resolved"], timeout=10, what="the resolution")
        took = time.monotonic() - started
        print(f"\nresolved at the removed receiver {took:.2f}s after SIGHUP (down for part of it)")
        resolved = sink.bodies()[1]
        assert resolved["alerts"][0]["labels"]["alertname"] == "TargetDown"
        assert resolved["alerts"][0]["status"] == "resolved"
        assert daemon.sample("tocsin_config_last_reload_successful") == 1
        assert daemon.sample("ALERTS", alertname="TargetDown", alertstate="firing") == 1  # rules go on
        time.sleep(scaled(1.0))
        assert _statuses(sink) == ["firing", "resolved"], "nothing more once alerting is gone"
        assert daemon.stop() == 0
    finally:
        sink.stop()


def test_a_route_moved_to_another_receiver_resolves_at_the_old_one_and_fires_at_the_new(daemon_factory, tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "guard.yml").write_text(RULES)
    sinks = {"old": HTTPSink(validate=validate_webhook_v4), "new": HTTPSink(validate=validate_webhook_v4)}
    try:
        daemon = daemon_factory(_config("old", sinks))
        wait_for(lambda: _statuses(sinks["old"]) == ["firing"], timeout=20, what="the firing notification")
        daemon.write_config(_config("new", sinks))
        started = time.monotonic()
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: _statuses(sinks["old"]) == ["firing", "resolved"] and _statuses(sinks["new"]) == ["firing"],
                 timeout=5, what="resolved at the old receiver, firing at the new one")
        took = time.monotonic() - started
        print(f"\nold receiver resolved, new one notified, {took:.2f}s after SIGHUP")
        assert daemon.sample("tocsin_config_last_reload_successful") == 1
        time.sleep(scaled(1.0))
        assert _statuses(sinks["old"]) == ["firing", "resolved"] and _statuses(sinks["new"]) == ["firing"]

        # And back: the alert is new again at "old", and "new" is resolved.
        daemon.write_config(_config("old", sinks))
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: _statuses(sinks["old"]) == ["firing", "resolved", "firing"]
                 and _statuses(sinks["new"]) == ["firing", "resolved"], timeout=5, what="moved back")
        assert daemon.stop() == 0
    finally:
        for sink in sinks.values():
            sink.stop()
