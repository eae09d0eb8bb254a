"""Reloads that would silently lose alerting: an empty file, a vanished rule file, a removed rule.

An empty configuration is refused (a truncated write must not drop every target and rule);
a rule file that disappears keeps its last good version, like an unreadable one; and a
reload that removes a rule sends the resolution of the alerts it had notified at once,
instead of leaving the page open until the receiver's resolve_timeout.
"""

from __future__ import annotations

import signal
import subprocess
import sys

from conftest import REPO, free_port, wait_for
from notify_sinks import HTTPSink, validate_webhook_v4

RULES = """
groups:
  - name: guard
    interval: 300ms
    rules:
      - alert: TargetDown
        expr: probe_success == 0
"""

OTHER_RULES = """
groups:
  - name: other
    interval: 300ms
    rules:
      - record: up_targets
        expr: sum(probe_success)
"""


def _config(sink: HTTPSink | None = None) -> str:
    alerting = "" if sink is None else f"""
alerting:
  route: {{receiver: hook, group_by: [alertname], group_wait: 0s, group_interval: 500ms, repeat_interval: 1h}}
  receivers:
    - name: hook
      webhook: {{url: "{sink.url}/hook", timeout: 2s}}
  resolve_timeout: 1h
"""
    return f"""
global: {{listen_address: "127.0.0.1:{{port}}", interval: 300ms, timeout: 250ms, state_dir: "{{dir}}/state"}}
targets:
  - {{name: db, tcp: {{address: "127.0.0.1:{free_port()}"}}}}
rule_files: [rules/*.yml]
""" + alerting


def test_check_config_refuses_an_empty_file(tmp_path):
    for text in ("", "# only a comment\n"):
        path = tmp_path / "empty.yml"
        path.write_text(text)
        proc = subprocess.run([sys.executable, "-m", "tocsin.cli", "check", "config", str(path)],
                              capture_output=True, text=True, cwd=REPO, timeout=60)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert f"{path}: the file is empty" in proc.stdout + proc.stderr


def test_sighup_with_an_empty_file_keeps_targets_and_rules(daemon_factory, tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "guard.yml").write_text(RULES)
    daemon = daemon_factory(_config())
    wait_for(lambda: daemon.sample("ALERTS", alertname="TargetDown", alertstate="firing") == 1,
             timeout=20, what="the alert firing")
    daemon.config.write_text("")
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: daemon.sample("tocsin_config_last_reload_successful") == 0, what="the reload refused")
    assert "the file is empty" in daemon.output()
    assert [t["name"] for t in daemon.targets()] == ["db"]
    assert daemon.sample("ALERTS", alertname="TargetDown", alertstate="firing") == 1
    assert daemon.stop() == 0


def test_a_vanished_rule_file_keeps_its_rules(daemon_factory, tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "guard.yml").write_text(RULES)
    (tmp_path / "rules" / "other.yml").write_text(OTHER_RULES)
    daemon = daemon_factory(_config())
    wait_for(lambda: daemon.sample("ALERTS", alertname="TargetDown", alertstate="firing") == 1,
             timeout=20, what="the alert firing")
    (tmp_path / "rules" / "guard.yml").unlink()
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: daemon.sample("tocsin_config_last_reload_successful") == 0, what="the reload reported")
    assert "guard.yml: rule file is missing; keeping its previous version" in daemon.output()
    wait_for(lambda: daemon.sample("tocsin_rule_group_last_evaluation_timestamp_seconds") is not None, what="groups")
    assert daemon.sample("ALERTS", alertname="TargetDown", alertstate="firing") == 1
    assert daemon.metrics().count("tocsin_rule_group_rules{") == 2  # both groups still evaluated

    # Emptying it (groups: []) is how its rules are removed on purpose; then it may go.
    (tmp_path / "rules" / "guard.yml").write_text("groups: []\n")
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: daemon.sample("tocsin_config_last_reload_successful") == 1, what="the reload applied")
    wait_for(lambda: daemon.sample("ALERTS", alertname="TargetDown", alertstate="firing") is None,
             what="the removed rule's alert gone")
    (tmp_path / "rules" / "guard.yml").unlink()
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: daemon.sample("tocsin_config_last_reload_successful") == 1, what="a clean reload")
    assert daemon.stop() == 0


def test_removing_a_rule_resolves_its_alert_at_the_receiver_at_once(daemon_factory, tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "guard.yml").write_text(RULES)
    sink = HTTPSink(validate=validate_webhook_v4)
    try:
        daemon = daemon_factory(_config(sink))
        wait_for(lambda: [b for b in sink.bodies() if b["status"] == "firing"], timeout=20,
                 what="the firing notification")
        (tmp_path / "rules" / "guard.yml").write_text(OTHER_RULES)
        daemon.proc.send_signal(signal.SIGHUP)
        # resolve_timeout is 1 h: only the reload itself can resolve it this soon.
        resolved = wait_for(lambda: [b for b in sink.bodies() if b["status"] == "resolved"], timeout=15,
                            what="the resolved notification")
        assert resolved[0]["alerts"][0]["labels"]["alertname"] == "TargetDown"
        assert daemon.sample("tocsin_config_last_reload_successful") == 1
        assert daemon.stop() == 0
    finally:
        sink.stop()
