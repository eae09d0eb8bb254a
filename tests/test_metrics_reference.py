"""docs/metrics.md and the Grafana dashboard against what a running tocsin exports.

One sample daemon (every probe kind, the shipped rules, a log receiver) serves all tests
here: its /metrics must be documented, whatever is documented must be exported (or be a
probe family of the kinds' registry, which a short run may not show), and every query of
the dashboard must parse and name only exported metrics — and, in a real Prometheus
scraping that daemon, return data.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from conftest import free_port, require_tool, scaled, wait_for
from tocsin.promql.nodes import VectorSelector, children
from tocsin.promql.parse import parse
from tocsin.reference.metrics_reference import (
    documented_names,
    family_of,
    parse_exposition,
    probe_families,
    sample_daemon,
)

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "contrib" / "grafana" / "tocsin.json"
# What Grafana substitutes before a query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$target": ".*"}


@pytest.fixture(scope="module")
def daemon_url() -> Iterator[str]:
    with sample_daemon(patience=scaled(60)) as url:
        time.sleep(scaled(2))  # a few more probe rounds and evaluations
        yield url


@pytest.fixture(scope="module")
def exported(daemon_url) -> dict:
    return parse_exposition(requests.get(f"{daemon_url}/metrics", timeout=scaled(10)).text)


def test_every_exported_metric_is_documented(exported):
    documented = documented_names((ROOT / "docs" / "metrics.md").read_text(encoding="utf-8"))
    missing = sorted(set(exported) - documented)
    assert not missing, f"exported but not in docs/metrics.md (run `make docs`): {missing}"
    assert len(exported) >= 50  # the sample daemon exercised the parts


def test_every_documented_metric_is_exported(exported):
    documented = documented_names((ROOT / "docs" / "metrics.md").read_text(encoding="utf-8"))
    unknown = sorted(documented - set(exported) - set(probe_families()))
    assert not unknown, f"in docs/metrics.md but exported by nothing: {unknown}"


def _queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(name, value)
            found.append((panel["title"], expr))
    return found


def _metric_names(expr: str) -> set[str]:
    names, stack = set(), [parse(expr)]
    while stack:
        node = stack.pop()
        if isinstance(node, VectorSelector) and node.name:
            names.add(node.name)
        stack.extend(children(node))
    return names


def test_the_dashboard_is_well_formed():
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert {v["name"] for v in dashboard["templating"]["list"]} == {"datasource", "target"}
    titles = {title for title, _ in _queries()}
    for wanted in ("Target up/down", "Failures by reason", "Probe duration", "Days until certificate expiry",
                   "Active alerts", "Outbox", "Scheduler lateness"):
        assert wanted in titles
    for _, expr in _queries():
        assert "$" not in expr, f"a Grafana variable the test does not know: {expr}"


def test_every_dashboard_query_parses_and_names_exported_metrics(exported):
    known = {**probe_families(), **exported}
    for title, expr in _queries():
        names = _metric_names(expr)  # raises on a query tocsin's PromQL parser refuses
        assert names, f"{title}: {expr} names no metric"
        for name in names:
            assert family_of(name, known) is not None, f"{title}: {name} is not a metric tocsin exports"


@pytest.mark.external
def test_every_dashboard_query_returns_data_in_prometheus(daemon_url, exported, tmp_path):
    prometheus = require_tool("prometheus")
    port = free_port()
    (tmp_path / "prometheus.yml").write_text(f"""
global: {{scrape_interval: 1s}}
scrape_configs:
  - job_name: tocsin
    static_configs: [{{targets: ["{daemon_url.removeprefix('http://')}"]}}]
""")
    proc = subprocess.Popen([prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("wb"))
    api = f"http://127.0.0.1:{port}/api/v1/query"

    def result(expr: str) -> list:
        reply = requests.get(api, params={"query": expr}, timeout=scaled(5)).json()
        assert reply["status"] == "success", (expr, reply)
        return reply["data"]["result"]

    try:
        # rate() needs two samples of a counter: wait for a few scrapes.
        wait_for(lambda: result("rate(tocsin_probes_total[1m])"), timeout=60, what="Prometheus scraping tocsin")
        # A metric with no samples in a short run (no certificate probed, no notification sent yet)
        # leaves its panel empty; every other panel must show data.
        text = requests.get(f"{daemon_url}/metrics", timeout=scaled(5)).text
        silent = {name for name in {**probe_families(), **exported} if not _has_samples(name, text)}
        silent |= {name + suffix for name in silent for suffix in ("_bucket", "_count", "_sum", "_total")}  # as queried
        empty, excused = [], []
        def shows(expr: str) -> bool:
            """Data now, or within a few scrapes (a series born just now has one sample: no rate yet)."""
            deadline = time.monotonic() + scaled(5)
            while not result(expr):
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.5)
            return True

        for title, expr in _queries():
            if not shows(expr):
                (excused if _metric_names(expr) & silent else empty).append(f"{title}: {expr}")
        assert not empty, "queries without data:\n" + "\n".join(empty)
        # Only what the sample run cannot show: a certificate (no TLS target) and notifications (none due yet).
        assert all(re.search(r"probe_ssl_|tocsin_notification", query) for query in excused), excused
    finally:
        proc.terminate()
        proc.wait(10)


def _has_samples(name: str, text: str) -> bool:
    return re.search(rf"^{re.escape(name)}(_bucket|_count|_sum|_total)?[{{ ]", text, re.MULTILINE) is not None
