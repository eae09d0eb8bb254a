"""The anchor stack of the whole-stack benchmarks (P2 CPU, P6 time to notify).

Not a benchmark itself (run_all.py only runs `p<N>_*.py`). Generic helpers (processes,
loopback servers, tocsin's configuration) are in common.py; this module holds what is
specific to the anchor stack, and only that.

The anchor stack is the standard blackbox set-up: Prometheus scrapes blackbox_exporter's
`/probe?module=http_2xx&target=<url>` once per target (static targets rewritten by
relabelling), evaluates a rule file, and sends alerts to Alertmanager, which routes them
to a webhook. tocsin does all of it in one process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    ALERTMANAGER,
    BLACKBOX,
    NGINX,
    PROMETHEUS,
    SHIPPED_RULES,
    Processes,
    dur,
    first_line,
    free_port,
    http_get,
    machine_base,
    tocsin_version,
    wait_until,
)

ANCHOR_BINARIES = (BLACKBOX, PROMETHEUS, ALERTMANAGER)


# ----------------------------------------------------------------------------- configurations

def write_blackbox_config(path: Path, timeout: float) -> None:
    path.write_text("modules:\n  http_2xx:\n    prober: http\n"
                    f"    timeout: {dur(timeout)}\n    http:\n      preferred_ip_protocol: ip4\n")


def write_prometheus_config(path: Path, blackbox_port: int, alertmanager_port: int, targets: list[tuple[str, str]],
                            rule_file: Path, scrape_interval: float | None, evaluation_interval: float | None,
                            scrape_timeout: float | None) -> None:
    """The standard blackbox job. An interval given as None is left out: Prometheus's default (1m) applies."""
    glob: dict = {}
    if scrape_interval is not None:
        glob["scrape_interval"] = dur(scrape_interval)
    if scrape_timeout is not None:
        glob["scrape_timeout"] = dur(scrape_timeout)
    if evaluation_interval is not None:
        glob["evaluation_interval"] = dur(evaluation_interval)
    cfg = {
        "global": glob,
        "rule_files": [str(rule_file)],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]},
        "scrape_configs": [{
            "job_name": "blackbox",
            "metrics_path": "/probe",
            "params": {"module": ["http_2xx"]},
            "static_configs": [{"targets": [url], "labels": {"target": name}} for name, url in targets],
            "relabel_configs": [
                {"source_labels": ["__address__"], "target_label": "__param_target"},
                {"source_labels": ["__param_target"], "target_label": "instance"},
                {"target_label": "__address__", "replacement": f"127.0.0.1:{blackbox_port}"},
            ],
        }],
    }
    if not glob:
        del cfg["global"]
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def write_alertmanager_config(path: Path, webhook_url: str, group_wait: float | None,
                              group_interval: float = 60.0, repeat_interval: float = 4 * 3600.0) -> None:
    """group_wait None: Alertmanager's default (30s)."""
    route: dict = {"receiver": "hook", "group_by": ["alertname", "target"]}
    if group_wait is not None:
        route["group_wait"] = dur(group_wait)
    route["group_interval"] = dur(group_interval)
    route["repeat_interval"] = dur(repeat_interval)
    cfg = {"route": route,
           "receivers": [{"name": "hook", "webhook_configs": [{"url": webhook_url, "send_resolved": True}]}]}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


# The shipped rules that read tocsin's own series, rewritten over the series blackbox_exporter
# gives Prometheus (one probe_success / probe_duration_seconds sample per probe), same meaning:
#   failure share over 5m   = 1 - avg_over_time(probe_success[5m])
#   probes in 5m            = count_over_time(probe_success[5m])
#   mean probe duration 5m  = avg_over_time(probe_duration_seconds[5m])
#   down, with no flapping judgement or maintenance windows = probe_success == 0
#   flapping (Prometheus's usual way) = more than 4 changes in 10 minutes
# TocsinOverloaded watches tocsin itself and has no counterpart: the stack runs without it.
STACK_EXPR = {
    "TargetDown": "probe_success == 0\n",
    "TargetHighErrorRate": ("(1 - avg_over_time(probe_success[5m])) > 0.05\n"
                            "and\ncount_over_time(probe_success[5m]) >= 10\n"),
    "TargetSlow": "avg_over_time(probe_duration_seconds[5m]) > 2\n",
    "TargetFlapping": "changes(probe_success[10m]) > 4\n",
}
TOCSIN_ONLY = {"TocsinOverloaded"}


def write_stack_rules(path: Path) -> list[str]:
    """The shipped rule file with the tocsin_* expressions replaced (see STACK_EXPR); returns the names changed."""
    doc = yaml.safe_load(SHIPPED_RULES.read_text())
    changed = []
    for group in doc["groups"]:
        group["rules"] = [rule for rule in group["rules"] if rule.get("alert") not in TOCSIN_ONLY]
        for rule in group["rules"]:
            if "tocsin_" in rule.get("expr", ""):
                rule["expr"] = STACK_EXPR[rule["alert"]]
                changed.append(rule["alert"])
    doc["groups"] = [group for group in doc["groups"] if group["rules"]]
    path.write_text(yaml.safe_dump(doc, sort_keys=False, width=1000))
    return changed


def write_single_rule(path: Path, for_s: float, group_interval: float | None = None) -> None:
    """The shipped TargetDown rule alone, with `for` set to `for_s` (both sides read this same file)."""
    doc = yaml.safe_load(SHIPPED_RULES.read_text())
    rule = next(r for g in doc["groups"] for r in g["rules"] if r.get("alert") == "TargetDown")
    rule["for"] = dur(for_s)
    group: dict = {"name": "tocsin-targets", "rules": [rule]}
    if group_interval is not None:
        group["interval"] = dur(group_interval)
    path.write_text(yaml.safe_dump({"groups": [group]}, sort_keys=False, width=1000))


# ----------------------------------------------------------------------------- anchor stack

class AnchorStack:
    """blackbox_exporter + Prometheus + Alertmanager, configured and started in `workdir`."""

    def __init__(self, procs: Processes, workdir: Path, targets: list[tuple[str, str]], rule_file: Path,
                 webhook_url: str, *, probe_timeout: float, scrape_interval: float | None,
                 evaluation_interval: float | None, group_wait: float | None, group_interval: float = 60.0) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.bb_port, self.prom_port, self.am_port = free_port(), free_port(), free_port()
        write_blackbox_config(workdir / "blackbox.yml", probe_timeout)
        timeout = None
        if scrape_interval is not None:
            timeout = min(probe_timeout, scrape_interval)
        write_prometheus_config(workdir / "prometheus.yml", self.bb_port, self.am_port, targets, rule_file,
                                scrape_interval, evaluation_interval, timeout)
        write_alertmanager_config(workdir / "alertmanager.yml", webhook_url, group_wait, group_interval)
        (workdir / "prom-data").mkdir(exist_ok=True)
        (workdir / "am-data").mkdir(exist_ok=True)
        self.blackbox = procs.start([BLACKBOX, f"--config.file={workdir / 'blackbox.yml'}",
                                     f"--web.listen-address=127.0.0.1:{self.bb_port}"], workdir / "blackbox.log")
        self.alertmanager = procs.start([ALERTMANAGER, f"--config.file={workdir / 'alertmanager.yml'}",
                                         f"--storage.path={workdir / 'am-data'}",
                                         f"--web.listen-address=127.0.0.1:{self.am_port}",
                                         "--cluster.listen-address="], workdir / "alertmanager.log")
        self.prometheus = procs.start([PROMETHEUS, f"--config.file={workdir / 'prometheus.yml'}",
                                       f"--storage.tsdb.path={workdir / 'prom-data'}",
                                       f"--web.listen-address=127.0.0.1:{self.prom_port}"], workdir / "prometheus.log")

    @property
    def named(self) -> dict[str, subprocess.Popen]:
        return {"blackbox_exporter": self.blackbox, "prometheus": self.prometheus, "alertmanager": self.alertmanager}

    def wait_ready(self, timeout: float = 30.0) -> None:
        for name, port, path, proc in (("blackbox_exporter", self.bb_port, "/-/healthy", self.blackbox),
                                       ("alertmanager", self.am_port, "/-/ready", self.alertmanager),
                                       ("prometheus", self.prom_port, "/-/ready", self.prometheus)):
            wait_until(lambda port=port, path=path: http_get(f"http://127.0.0.1:{port}{path}", 1)[0] == 200, timeout, name, proc)

    def query(self, expr: str) -> list[dict]:
        url = f"http://127.0.0.1:{self.prom_port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        status, body = http_get(url, 5.0)
        if status != 200:
            raise RuntimeError(f"prometheus query {expr!r}: {status} {body[:200]!r}")
        return json.loads(body)["data"]["result"]


# ----------------------------------------------------------------------------- report

def machine() -> dict:
    """The machine report of P2 and P6: the anchor stack's versions too."""
    return {**machine_base(), "tocsin": tocsin_version(),
            "blackbox_exporter": first_line([BLACKBOX, "--version"]),
            "prometheus": first_line([PROMETHEUS, "--version"]),
            "alertmanager": first_line([ALERTMANAGER, "--version"]),
            "nginx": first_line([NGINX, "-v"]),
            "loadavg_at_start": open("/proc/loadavg").read().split()[:3]}
