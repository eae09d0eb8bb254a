"""Acknowledgements: `tocsin ack ALERT` quiets one firing alert until it resolves; the next firing pages.

A real daemon probes a TCP port the test opens and closes; the route repeats every second,
so an alert that is not quiet pages again and again while it fires.
"""

from __future__ import annotations

import subprocess
import sys
import time

import requests

from conftest import scaled, wait_for
from notify_sinks import HTTPSink
from toggle_port import Port

RULES = """
groups:
  - name: acks
    interval: 200ms
    rules:
      - alert: TargetDown
        expr: probe_success == 0
        labels: {severity: critical}
        annotations: {summary: "{{ $labels.target }} is down"}
"""


def _firing(sink: HTTPSink) -> list[dict]:
    return [b for b in sink.bodies() if b.get("status") == "firing"]


def test_an_acknowledged_alert_is_quiet_until_it_resolves(daemon_factory, tmp_path):
    (tmp_path / "rules.yml").write_text(RULES)
    sink = HTTPSink()
    target = Port()
    target.up()
    daemon = daemon_factory(f"""
global: {{listen_address: "127.0.0.1:{{port}}", interval: 200ms, timeout: 150ms, state_dir: "{{dir}}/state"}}
targets:
  - {{name: db, tcp: {{address: "127.0.0.1:{target.port}"}}}}
rule_files: [rules.yml]
alerting:
  route: {{receiver: hook, group_by: [alertname], group_wait: 100ms, group_interval: 300ms, repeat_interval: 1s}}
  receivers:
    - name: hook
      webhook: {{url: "{sink.url}/hook"}}
""")
    try:
        target.down()
        wait_for(lambda: _firing(sink), timeout=15, what="the first page")
        ack = subprocess.run([sys.executable, "-m", "tocsin.cli", "ack", "TargetDown", "--url", daemon.url,
                              "-c", "looking at the disk", "-a", "bob"], capture_output=True, text=True,
                             timeout=scaled(20))
        assert ack.returncode == 0, ack.stderr
        assert "acknowledged" in ack.stdout
        (record,) = requests.get(daemon.url + "/api/v1/acks", timeout=5).json()["data"]
        assert record["createdBy"] == "bob" and record["comment"] == "looking at the disk" and record["active"]
        assert record["labels"]["target"] == "db"
        (alert,) = requests.get(daemon.url + "/api/v2/alerts", timeout=5).json()
        assert alert["status"]["state"] == "suppressed" and alert["status"]["silencedBy"] == [record["id"]]

        assert daemon.sample("tocsin_alerts_acknowledged") == 1
        pages = len(_firing(sink))
        time.sleep(scaled(3.0))  # three repeat intervals: an alert not acknowledged would page again
        assert len(_firing(sink)) == pages
        assert daemon.sample("ALERTS", alertname="TargetDown", alertstate="firing") == 1  # it still fires

        target.up()
        resolved = wait_for(lambda: [b for b in sink.bodies() if b.get("status") == "resolved"], timeout=10,
                            what="the resolution, sent although the alert was acknowledged")
        assert resolved[0]["alerts"][0]["labels"]["target"] == "db"
        ended = wait_for(lambda: [a for a in requests.get(daemon.url + "/api/v1/acks", timeout=5).json()["data"]
                                  if not a["active"]], timeout=10, what="the acknowledgement ending on resolve")
        assert ended[0]["endReason"] == "resolved"
        assert daemon.sample("tocsin_alerts_acknowledged") == 0

        target.down()  # the next firing of the same alert pages
        wait_for(lambda: len(_firing(sink)) > pages, timeout=15, what="a page for the next firing")
    finally:
        target.down()


def test_ack_of_an_unknown_alert_is_refused(daemon_factory, tmp_path):
    (tmp_path / "rules.yml").write_text(RULES)
    daemon = daemon_factory("""
global: {listen_address: "127.0.0.1:{port}", interval: 1s, state_dir: "{dir}/state"}
rule_files: [rules.yml]
alerting:
  route: {receiver: none}
  receivers: [{name: none}]
""")
    answer = requests.post(daemon.url + "/api/v1/alerts/0123456789abcdef/ack", json={}, timeout=5)
    assert answer.status_code == 404 and answer.json()["status"] == "error"
    cli = subprocess.run([sys.executable, "-m", "tocsin.cli", "ack", "Nothing", "--url", daemon.url],
                         capture_output=True, text=True, timeout=scaled(20))
    assert cli.returncode == 1 and "no firing alert" in cli.stderr
