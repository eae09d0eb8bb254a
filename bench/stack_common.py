"""Shared pieces of the whole-stack benchmarks (P2 CPU, P6 time to notify).

Not a benchmark itself (run_all.py only runs `p<N>_*.py`). Everything listens on 127.0.0.1
on ports chosen at run time; `Processes.stop_all()` ends every child started here, and
only those.

The anchor stack is the standard blackbox set-up: Prometheus scrapes blackbox_exporter's
`/probe?module=http_2xx&target=<url>` once per target (static targets rewritten by
relabelling), evaluates a rule file, and sends alerts to Alertmanager, which routes them
to a webhook. tocsin does all of it in one process.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

CLK_TCK = os.sysconf("SC_CLK_TCK")
ROOT = Path(__file__).resolve().parent.parent
SHIPPED_RULES = ROOT / "etc" / "rules" / "tocsin.yml"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
BLACKBOX = shutil.which("prometheus-blackbox-exporter") or "/usr/bin/prometheus-blackbox-exporter"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
ANCHOR_BINARIES = (BLACKBOX, PROMETHEUS, ALERTMANAGER)


# ----------------------------------------------------------------------------- processes, /proc

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_times(pid: int) -> tuple[float, float]:
    """(utime, stime) of the whole process (all threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def rss_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MiB."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, kib, _ = line.split()
                values[key[:-1]] = int(kib) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback only
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: process exited with {proc.returncode}")
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what}: not ready after {timeout}s")


class Processes:
    """Every child started by the benchmark; `stop_all` ends them (and only them)."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []
        self._lock = threading.Lock()

    def start(self, argv: list[str], log_path: Path, **kwargs) -> subprocess.Popen:
        log = open(log_path, "ab")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, **kwargs)
        log.close()
        with self._lock:
            self.procs.append(proc)
        return proc

    @staticmethod
    def stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def stop_all(self) -> None:
        with self._lock:
            procs, self.procs = list(self.procs), []
        for proc in reversed(procs):
            try:
                self.stop(proc)
            except Exception:  # noqa: BLE001 - keep stopping the others
                pass


TOCSIN_ENV: dict[str, str] = {}   # extra environment of tocsin processes (see use_tocsin_rev)
TOCSIN_REV: list[str] = []


def use_tocsin_rev(rev: str, into: Path) -> str:
    """Run tocsin from `git archive REV src` (exported into `into`) instead of the working tree.

    Other work in progress under src/ then cannot change what is measured in the middle of a
    run. Returns the short commit id.
    """
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", rev], capture_output=True, text=True,
                            check=True).stdout.strip()
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "src"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    TOCSIN_ENV["PYTHONPATH"] = str(into / "src")
    TOCSIN_REV[:] = [commit]
    return commit


def tocsin_env() -> dict[str, str] | None:
    return {**os.environ, **TOCSIN_ENV} if TOCSIN_ENV else None


def tocsin_argv() -> list[str]:
    exe = Path(sys.executable).parent / "tocsin"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "import sys; from tocsin.cli import main; sys.exit(main())"]


# ----------------------------------------------------------------------------- loopback servers

class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class WebhookSink:
    """Receives webhook POSTs (Alertmanager payload v4) and records when each arrived."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[tuple[float, dict]] = []
        self.changed = threading.Condition()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                at = time.time()
                try:
                    payload = json.loads(body)
                except ValueError:
                    payload = {"unparsable": body[:200].decode("latin-1")}
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with sink.changed:
                    sink.received.append((at, payload))
                    sink.changed.notify_all()

            def log_message(self, *args) -> None:
                pass

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def firing(self, alertname: str, target: str | None = None) -> list[tuple[float, dict]]:
        """Notifications (arrival time, payload) holding a firing alert `alertname` (for `target`)."""
        out = []
        with self.changed:
            items = list(self.received)
        for at, payload in items:
            for alert in payload.get("alerts", []):
                labels = alert.get("labels", {})
                if (alert.get("status") == "firing" and labels.get("alertname") == alertname
                        and (target is None or labels.get("target") == target)):
                    out.append((at, payload))
                    break
        return out

    def wait_firing(self, alertname: str, target: str | None, since: float, timeout: float) -> float | None:
        """Arrival time of the first firing notification for (alertname, target) after `since`."""
        deadline = time.monotonic() + timeout
        while True:
            hits = [at for at, _ in self.firing(alertname, target) if at >= since]
            if hits:
                return min(hits)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            with self.changed:
                self.changed.wait(min(left, 0.2))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class SwitchableTarget:
    """A tiny HTTP health endpoint whose listener can be closed: the target "goes down".

    After `down()` nothing listens on the port, so a probe gets connection refused at once.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[tuple[float, str]] = []   # (time, User-Agent)
        self.down_at: float | None = None
        target = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                body = b'{"status": "ok"}\n'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True
                target.requests.append((time.time(), self.headers.get("User-Agent", "")))

            def log_message(self, *args) -> None:
                pass

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health"

    def down(self) -> float:
        """Close the listener; returns the time (time.time()) from which nothing listens."""
        if self.down_at is None:
            self._server.shutdown()
            self._server.server_close()
            self.down_at = time.time()
        return self.down_at

    def close(self) -> None:
        self.down()


# ----------------------------------------------------------------------------- configurations

def dur(seconds: float) -> str:
    """A Prometheus/tocsin duration string."""
    ms = round(seconds * 1000)
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def write_tocsin_config(path: Path, port: int, targets: list[tuple[str, str]], interval: float, timeout: float,
                        evaluation_interval: float, rule_file: Path, webhook_url: str, group_wait: float,
                        group_interval: float = 60.0, repeat_interval: float = 4 * 3600.0) -> None:
    cfg = {
        "global": {"listen_address": f"127.0.0.1:{port}", "interval": dur(interval), "timeout": dur(timeout),
                   "evaluation_interval": dur(evaluation_interval), "state_dir": str(path.parent / "state")},
        "logging": {"level": "warning", "console": {"format": "text"}},
        "targets": [{"name": name, "url": url} for name, url in targets],
        "rule_files": [str(rule_file)],
        "alerting": {
            "route": {"receiver": "hook", "group_by": ["alertname", "target"], "group_wait": dur(group_wait),
                      "group_interval": dur(group_interval), "repeat_interval": dur(repeat_interval)},
            "receivers": [{"name": "hook", "webhook": {"url": webhook_url, "send_resolved": True}}],
        },
    }
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


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


# The two shipped rules that read tocsin's own counters, rewritten over the series blackbox_exporter
# gives Prometheus (one probe_success / probe_duration_seconds sample per probe), same meaning:
#   failure share over 5m   = 1 - avg_over_time(probe_success[5m])
#   probes in 5m            = count_over_time(probe_success[5m])
#   mean probe duration 5m  = avg_over_time(probe_duration_seconds[5m])
STACK_EXPR = {
    "TargetHighErrorRate": ("(1 - avg_over_time(probe_success[5m])) > 0.05\n"
                            "and\ncount_over_time(probe_success[5m]) >= 10\n"),
    "TargetSlow": "avg_over_time(probe_duration_seconds[5m]) > 2\n",
}


def write_stack_rules(path: Path) -> list[str]:
    """The shipped rule file with the tocsin_* expressions replaced (see STACK_EXPR); returns the names changed."""
    doc = yaml.safe_load(SHIPPED_RULES.read_text())
    changed = []
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "tocsin_" in rule.get("expr", ""):
                rule["expr"] = STACK_EXPR[rule["alert"]]
                changed.append(rule["alert"])
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
            wait_until(lambda: http_get(f"http://127.0.0.1:{port}{path}", 1)[0] == 200, timeout, name, proc)

    def query(self, expr: str) -> list[dict]:
        url = f"http://127.0.0.1:{self.prom_port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        status, body = http_get(url)
        if status != 200:
            raise RuntimeError(f"prometheus query {expr!r}: {status} {body[:200]!r}")
        return json.loads(body)["data"]["result"]


# ----------------------------------------------------------------------------- report

def machine() -> dict:
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break

    def first_line(argv: list[str]) -> str:
        out = subprocess.run(argv, capture_output=True, text=True)
        return ((out.stdout or out.stderr).strip().splitlines() or ["?"])[0]

    try:
        from tocsin import __version__ as tocsin_version
    except ImportError:
        tocsin_version = "?"
    git = lambda *a: subprocess.run(["git", "-C", str(ROOT), *a], capture_output=True, text=True).stdout.strip()  # noqa: E731
    commit = git("rev-parse", "--short", "HEAD") or "?"
    dirty = bool(git("status", "--porcelain", "--", "src"))
    measured = f"{TOCSIN_REV[0]} (git archive of src/)" if TOCSIN_REV else commit + ("+dirty-src" if dirty else "")
    return {"tocsin_commit": measured, "nproc": os.cpu_count(), "cpu_model": model,
            "kernel": platform.release(), "python": platform.python_version(), "tocsin": tocsin_version,
            "blackbox_exporter": first_line([BLACKBOX, "--version"]),
            "prometheus": first_line([PROMETHEUS, "--version"]),
            "alertmanager": first_line([ALERTMANAGER, "--version"]),
            "nginx": first_line([NGINX, "-v"]),
            "loadavg_at_start": open("/proc/loadavg").read().split()[:3]}
