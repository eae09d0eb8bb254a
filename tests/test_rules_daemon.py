"""Alert rules in a real daemon: persistence across restarts, and a real Prometheus agreeing."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest
import requests

from conftest import free_port, require_tool, wait_for

RULES = """
groups:
  - name: live
    interval: 1s
    rules:
      - alert: Down
        expr: probe_success == 0
        for: 2s
        labels: {severity: page}
        annotations: {summary: "{{ $labels.target }} is down"}
      - alert: Alive
        expr: probe_success == 1
"""

CONFIG = """
global: {{listen_address: "127.0.0.1:{{port}}", interval: 500ms, timeout: 400ms, evaluation_interval: 1s,
          state_dir: "{{dir}}/state"}}
targets:
  - {{name: up, url: "http://127.0.0.1:{{port}}/-/healthy"}}
  - {{name: down, tcp: {{address: "127.0.0.1:{closed}"}}}}
rule_files: [rules.yml]
"""


def alerts_on_metrics(daemon) -> set[tuple[str, str, str]]:
    from prometheus_client.parser import text_string_to_metric_families

    out = set()
    for family in text_string_to_metric_families(daemon.metrics()):
        for s in family.samples:
            if s.name == "ALERTS":
                out.add((s.labels["alertname"], s.labels.get("target", ""), s.labels["alertstate"]))
    return out


def test_alert_state_survives_a_restart_and_clears_after(daemon_factory, tmp_path):
    (tmp_path / "rules.yml").write_text(RULES)
    closed = free_port()
    daemon = daemon_factory(CONFIG.format(closed=closed))
    wait_for(lambda: ("Down", "down", "firing") in alerts_on_metrics(daemon), timeout=15, what="Down firing")
    active_at = daemon.sample("ALERTS_FOR_STATE", alertname="Down", target="down")
    alerts = requests.get(daemon.url + "/api/tocsin/alerts", timeout=5).json()["data"]
    assert {(a["labels"]["alertname"], a["labels"]["target"], a["state"]) for a in alerts} >= {
        ("Down", "down", "firing"), ("Alive", "up", "firing")}
    assert daemon.sample("tocsin_rule_group_rules") == 2
    assert daemon.stop() == 0

    # Restart: the alert is firing again at the first evaluation, with the same ActiveAt.
    daemon.start()
    wait_for(lambda: daemon.sample("ALERTS_FOR_STATE", alertname="Down", target="down") is not None,
             timeout=10, what="restored alert")
    assert daemon.sample("ALERTS_FOR_STATE", alertname="Down", target="down") == active_at
    assert daemon.sample("ALERTS", alertname="Down", target="down", alertstate="firing") == 1
    assert daemon.stop() == 0

    # The target recovers while tocsin is down: the alert resolves after the next start.
    daemon.write_config(CONFIG.format(closed=closed).replace(f'tcp: {{address: "127.0.0.1:{closed}"}}',
                                                             'url: "http://127.0.0.1:{port}/-/healthy"'))
    daemon.start()
    wait_for(lambda: "alert resolved: Down" in daemon.output(), timeout=10, what="resolution logged")
    assert ("Down", "down", "firing") not in alerts_on_metrics(daemon)


def test_reload_with_a_broken_rule_file_keeps_the_previous_rules(daemon_factory, tmp_path):
    (tmp_path / "rules.yml").write_text(RULES)
    daemon = daemon_factory(CONFIG.format(closed=free_port()))
    wait_for(lambda: ("Down", "down", "firing") in alerts_on_metrics(daemon), timeout=15, what="Down firing")
    (tmp_path / "rules.yml").write_text("groups:\n  - name: live\n    rules:\n      - alert: X\n        expr: sum(\n")
    response = requests.post(daemon.url + "/-/reload", timeout=30)
    assert response.status_code >= 400 or "could not parse" in response.text
    assert daemon.sample("tocsin_config_last_reload_successful") == 0
    time.sleep(1.5)
    assert ("Down", "down", "firing") in alerts_on_metrics(daemon)


def test_editing_a_firing_rule_keeps_its_alert_across_a_reload(daemon_factory, tmp_path):
    """As Prometheus: a rule is matched by group, name and labels, so a new `for` and new
    annotations apply to the alert already firing, which keeps its activeAt."""
    (tmp_path / "rules.yml").write_text(RULES)
    daemon = daemon_factory(CONFIG.format(closed=free_port()))
    wait_for(lambda: ("Down", "down", "firing") in alerts_on_metrics(daemon), timeout=15, what="Down firing")

    def down_alert() -> dict:
        (alert,) = [a for a in requests.get(daemon.url + "/api/tocsin/alerts", timeout=5).json()["data"]
                    if a["labels"]["alertname"] == "Down"]
        return alert

    before = down_alert()
    active_at = daemon.sample("ALERTS_FOR_STATE", alertname="Down", target="down")
    assert before["annotations"] == {"summary": "down is down"}
    (tmp_path / "rules.yml").write_text(RULES.replace("for: 2s", "for: 30s").replace(
        "{{ $labels.target }} is down", "{{ $labels.target }} is still down"))
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: down_alert()["annotations"] == {"summary": "down is still down"}, timeout=15,
             what="the new annotation")
    after = down_alert()
    assert after["state"] == "firing"
    assert after["activeAt"] == before["activeAt"] and after["startsAt"] == before["startsAt"]
    assert daemon.sample("ALERTS_FOR_STATE", alertname="Down", target="down") == active_at
    assert daemon.sample("ALERTS", alertname="Down", target="down", alertstate="firing") == 1
    assert daemon.sample("tocsin_config_last_reload_successful") == 1


@pytest.mark.external
def test_prometheus_fires_the_same_alerts(daemon_factory, tmp_path):
    prometheus = require_tool("prometheus")
    (tmp_path / "rules.yml").write_text(RULES)
    daemon = daemon_factory(CONFIG.format(closed=free_port()))
    port = free_port()
    (tmp_path / "prometheus.yml").write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [{tmp_path / 'rules.yml'}]
scrape_configs:
  - job_name: tocsin
    static_configs: [{{targets: ["127.0.0.1:{daemon.port}"]}}]
""")
    proc = subprocess.Popen([prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("wb"))
    try:
        def prometheus_alerts() -> set[tuple[str, str, str]]:
            data = requests.get(f"http://127.0.0.1:{port}/api/v1/alerts", timeout=2).json()["data"]["alerts"]
            return {(a["labels"]["alertname"], a["labels"].get("target", ""), a["state"]) for a in data}

        expected = {("Down", "down", "firing"), ("Alive", "up", "firing")}
        wait_for(lambda: prometheus_alerts() == expected, timeout=40, what="Prometheus firing both alerts")
        wait_for(lambda: alerts_on_metrics(daemon) == expected, timeout=10, what="tocsin firing both alerts")
        summary = {a["labels"]["target"]: a["annotations"]["summary"] for a in
                   requests.get(f"http://127.0.0.1:{port}/api/v1/alerts", timeout=2).json()["data"]["alerts"]
                   if a["labels"]["alertname"] == "Down"}
        ours = {a["labels"]["target"]: a["annotations"]["summary"] for a in
                requests.get(daemon.url + "/api/tocsin/alerts", timeout=2).json()["data"]
                if a["labels"]["alertname"] == "Down"}
        assert summary == ours == {"down": "down is down"}
    finally:
        proc.terminate()
        proc.wait(10)
