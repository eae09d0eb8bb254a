"""/api/v1/rules, /api/v1/alerts and /api/v1/query answer as a real Prometheus 2.42 does.

The same rule file runs in tocsin and in Debian's `prometheus`, which scrapes tocsin's
/metrics (job and instance dropped, so a series has the same labels in both). Once both
have evaluated, the answers are compared: every key and JSON type, and every value that
does not depend on when each evaluated (names, queries, labels, annotations, states, alert
values, sample values at a common query time).
"""

from __future__ import annotations

import subprocess
import time
from typing import Any

import pytest
import requests

from conftest import free_port, require_tool, wait_for

RULES = """
groups:
  - name: compare
    interval: 1s
    rules:
      - record: target:probe_success:max
        expr: max by (target) (probe_success)
        labels: {source: rec}
      - alert: Down
        expr: probe_success == 0
        for: 1s
        labels: {severity: page}
        annotations: {summary: "{{ $labels.target }} is down"}
      - alert: Waiting
        expr: probe_success == 1
        for: 1h
      - alert: Never
        expr: probe_success == 5
        keep_firing_for: 5m
  - name: more
    interval: 2s
    rules:
      - record: up:count
        expr: count(probe_success)
      - record: target:written:differently
        expr: max(probe_success{target=~"up|down",  job!="x"}) by (target) * on(target) group_left() (probe_success  offset 1s)
      - record: target:long:expression
        expr: sum by (target) (probe_success{target=~"up|down|some-target-with-a-long-name|another-target-with-a-long-name"}) / count by (target) (probe_success) > 0
"""

CONFIG = """
global: {{listen_address: "127.0.0.1:{{port}}", interval: 500ms, timeout: 400ms, evaluation_interval: 1s,
          state_dir: "{{dir}}/state"}}
targets:
  - {{name: up, url: "http://127.0.0.1:{{port}}/-/healthy"}}
  - {{name: down, tcp: {{address: "127.0.0.1:{closed}"}}}}
rule_files: [{rules}]
"""

# Depend on when each evaluated or how long it took, not on what.
TIMING = {"evaluationTime", "lastEvaluation", "activeAt"}


def _shape(value: Any) -> Any:
    """The value with every timing field replaced by its JSON type (their presence and type still compared)."""
    if isinstance(value, dict):
        return {k: (type(v).__name__ if k in TIMING else _shape(v)) for k, v in value.items()}
    if isinstance(value, list):
        return sorted((_shape(v) for v in value), key=repr)
    return value


@pytest.mark.external
def test_read_api_answers_like_prometheus(daemon_factory, tmp_path):
    prometheus = require_tool("prometheus")
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    daemon = daemon_factory(CONFIG.format(closed=free_port(), rules=rules))
    port = free_port()
    (tmp_path / "prometheus.yml").write_text(f"""
global: {{scrape_interval: 500ms, evaluation_interval: 1s}}
rule_files: [{rules}]
scrape_configs:
  - job_name: tocsin
    static_configs: [{{targets: ["127.0.0.1:{daemon.port}"]}}]
    metric_relabel_configs:
      - {{action: labeldrop, regex: "job|instance"}}
      - {{source_labels: [__name__], regex: "ALERTS|ALERTS_FOR_STATE", action: drop}}
""")
    proc = subprocess.Popen([prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("wb"))
    theirs, ours = f"http://127.0.0.1:{port}", daemon.url
    try:
        def get(base: str, path: str, **params: str) -> Any:
            return requests.get(base + path, params=params, timeout=5).json()

        def alerts(base: str) -> Any:
            return _shape(get(base, "/api/v1/alerts"))

        def both_settled() -> bool:
            prom = alerts(theirs)
            states = {(a["labels"]["alertname"], a["state"]) for a in prom["data"]["alerts"]}
            return states == {("Down", "firing"), ("Waiting", "pending")} and alerts(ours) == prom

        wait_for(both_settled, timeout=40, what="the same alerts in Prometheus and tocsin")
        settled = time.time()
        assert alerts(ours) == alerts(theirs)

        def rules_view(base: str, **params: str) -> Any:
            return _shape(get(base, "/api/v1/rules", **params))

        wait_for(lambda: rules_view(ours) == rules_view(theirs), timeout=10, what="the same /api/v1/rules")
        for kind in ("alert", "record"):
            assert rules_view(ours, type=kind) == rules_view(theirs, type=kind)
        rules_ours = get(ours, "/api/v1/rules")["data"]["groups"]
        assert [r["type"] for r in rules_ours[0]["rules"]] == ["recording", "alerting", "alerting", "alerting"]
        assert rules_ours[0]["lastEvaluation"].endswith("Z") and rules_ours[0]["rules"][1]["health"] == "ok"

        time.sleep(max(0.0, settled + 2.5 - time.time()))  # both have evaluated every group past `settled`
        at = f"{time.time():.3f}"
        for query in ("probe_success", "target:probe_success:max", "up:count", "ALERTS", 'ALERTS{alertstate="firing"}',
                      "sum(probe_success) + 0.5", "1 + 1", '"text"', "probe_success == 7", "count(ALERTS_FOR_STATE)"):
            def same(query: str = query) -> bool:
                """At one instant both have answered; on a busy machine a group may run a little late,
                so a query is asked again at a later common instant before it counts as different."""
                nonlocal at
                mine, real = get(ours, "/api/v1/query", query=query, time=at), get(theirs, "/api/v1/query", query=query, time=at)
                if _shape(mine) == _shape(real):
                    return True
                at = f"{time.time() - 0.5:.3f}"
                return False

            wait_for(same, timeout=10, what=f"the same answer to {query}")
        matrix = get(ours, "/api/v1/query", query="probe_success[3s]")
        real_matrix = get(theirs, "/api/v1/query", query="probe_success[3s]")
        assert matrix["data"]["resultType"] == real_matrix["data"]["resultType"] == "matrix"
        assert sorted(s["metric"]["target"] for s in matrix["data"]["result"]) == \
            sorted(s["metric"]["target"] for s in real_matrix["data"]["result"])
        posted = requests.post(ours + "/api/v1/query", data={"query": "up:count", "time": at}, timeout=5).json()
        assert _shape(posted) == _shape(get(theirs, "/api/v1/query", query="up:count", time=at))
        for bad in ({"query": "sum("}, {"query": ""}, {"query": "up", "time": "yesterday"}):
            mine_r = requests.get(ours + "/api/v1/query", params=bad, timeout=5)
            real_r = requests.get(theirs + "/api/v1/query", params=bad, timeout=5)
            assert mine_r.status_code == real_r.status_code == 400, bad
            assert set(mine_r.json()) == set(real_r.json()) and mine_r.json()["errorType"] == "bad_data"
    finally:
        proc.terminate()
        proc.wait(10)
