"""Helpers shared by every benchmark: processes, /proc readings, nginx, a hanging listener,
loopback HTTP servers (a webhook sink, a target that can go down), tocsin's configuration
and /metrics parsing, a systemd notify socket, the machine report, the temporary directory.

What belongs to the anchor stack alone (blackbox_exporter + Prometheus + Alertmanager) is in
anchor_stack.py. Not a benchmark itself (run_all.py only runs `p<N>_*.py`).

Standard library only (plus tocsin itself, imported lazily where its own phase function is
needed, and PyYAML, imported lazily by write_tocsin_config). Everything listens on 127.0.0.1
on ports chosen at run time; every process started through `Processes` is stopped by
`stop_all`, which the scripts call in `finally`.

Run as a script, it is the hanging listener: `python bench/common.py hang PORT` accepts
every connection, reads and discards whatever arrives, and never answers.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
ROOT = Path(__file__).resolve().parent.parent
SHIPPED_RULES = ROOT / "etc" / "rules" / "tocsin.yml"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
BLACKBOX = shutil.which("prometheus-blackbox-exporter") or "/usr/bin/prometheus-blackbox-exporter"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"


# ----------------------------------------------------------------------------- processes, /proc

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_times(pid: int) -> tuple[float, float]:
    """(utime, stime) of the whole process (all threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads), in seconds."""
    return sum(cpu_times(pid))


def children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except OSError:
                pass
    return out


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and its direct children (nginx's master and workers)."""
    total = 0.0
    for p in [pid, *children(pid)]:
        try:
            total += cpu_seconds(p)
        except OSError:
            pass
    return total


def rss_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MiB."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, kib, _ = line.split()
                values[key[:-1]] = int(kib) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def http_get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback only
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None,
               step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: process exited with {proc.returncode}")
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(step)
    raise RuntimeError(f"{what}: not ready after {timeout}s")


class Processes:
    """Every child started by a benchmark; `stop_all` ends them (and only them).

    Thread-safe: P6 starts and stops the anchor stack with its defaults from a second thread.
    `stop_timeout` is how long a child gets after SIGTERM before SIGKILL."""

    def __init__(self, stop_timeout: float = 15.0) -> None:
        self.procs: list[subprocess.Popen] = []
        self.stop_timeout = stop_timeout
        self._lock = threading.Lock()

    def start(self, argv: list[str], log_path: Path, **kwargs) -> subprocess.Popen:
        log = open(log_path, "ab")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, **kwargs)
        log.close()
        with self._lock:
            self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, timeout: float | None = None) -> None:
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGCONT)  # a stopped process (P5's SIGSTOP) cannot act on SIGTERM
            except ProcessLookupError:
                pass
            proc.terminate()
            try:
                proc.wait(self.stop_timeout if timeout is None else timeout)
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


def new_run(name: str, stop_timeout: float = 15.0) -> tuple[Processes, Path]:
    """A benchmark's start: SIGTERM ends it through `finally` (exit 143), its children, a fresh temporary directory."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return Processes(stop_timeout), Path(tempfile.mkdtemp(prefix=f"tocsin-{name}-"))


def remove_workdir(workdir: Path, keep: bool, label: str) -> None:
    """Delete the temporary directory, or with --keep say where it is (configs, logs)."""
    if keep:
        print(f"{label}: kept {workdir}", file=sys.stderr)
    else:
        shutil.rmtree(workdir, ignore_errors=True)


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


def machine_base() -> dict:
    """The first keys of every benchmark's "machine": what was measured, on what."""
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    git = lambda *a: subprocess.run(["git", "-C", str(ROOT), *a], capture_output=True, text=True).stdout.strip()  # noqa: E731
    commit = git("rev-parse", "--short", "HEAD") or "?"
    dirty = bool(git("status", "--porcelain", "--", "src"))
    measured = f"{TOCSIN_REV[0]} (git archive of src/)" if TOCSIN_REV else commit + ("+dirty-src" if dirty else "")
    return {"tocsin_commit": measured, "nproc": os.cpu_count(), "cpu_model": model,
            "kernel": platform.release(), "python": platform.python_version()}


def tocsin_version() -> str:
    try:
        from tocsin import __version__
    except ImportError:
        return "?"
    return __version__


def first_line(argv: list[str]) -> str:
    """First line a `--version` prints (stdout, else stderr), "?" if none."""
    out = subprocess.run(argv, capture_output=True, text=True)
    return ((out.stdout or out.stderr).strip().splitlines() or ["?"])[0]


def machine() -> dict:
    """The machine report of the scale benchmarks (P3, P4, P7)."""
    nginx = subprocess.run([NGINX, "-v"], capture_output=True, text=True).stderr.strip() if os.access(NGINX, os.X_OK) else ""
    return {**machine_base(), "tocsin": tocsin_version(), "nginx": nginx,
            "fd_limit": list(resource.getrlimit(resource.RLIMIT_NOFILE)), "loadavg_at_start": loadavg()}


def write_json(path: Path | None, summary: dict) -> None:
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary, indent=2) + "\n")


def py_spy() -> str:
    """The py-spy executable: on PATH, or next to this interpreter (pip install py-spy in the venv)."""
    return shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")


def profile_with_py_spy(pid: int, seconds: float, out: Path, rate: int = 100) -> subprocess.Popen:
    """Start py-spy on `pid` for `seconds` (collapsed stacks into `out`); the caller waits for it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([py_spy(), "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
                             "--rate", str(rate), "--format", "raw", "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# ----------------------------------------------------------------------------- nginx

HEALTH = """location = /health {
            default_type application/json;
            return 200 '{"status": "ok"}\\n';
        }"""


def nginx_conf(ndir: Path, port: int, workers: int = 1, connections: int = 8192, rlimit_nofile: int | None = 16384,
               access_log: str = "access_log off;", locations: str = HEALTH) -> str:
    rlimit = f"worker_rlimit_nofile {rlimit_nofile};\n" if rlimit_nofile else ""
    return f"""\
daemon off;
master_process {"on" if workers > 1 else "off"};
worker_processes {workers};
{rlimit}pid {ndir}/nginx.pid;
error_log {ndir}/error.log warn;
events {{ worker_connections {connections}; }}
http {{
    {access_log}
    client_body_temp_path {ndir}/tmp/body;
    proxy_temp_path {ndir}/tmp/proxy;
    fastcgi_temp_path {ndir}/tmp/fastcgi;
    uwsgi_temp_path {ndir}/tmp/uwsgi;
    scgi_temp_path {ndir}/tmp/scgi;
    keepalive_timeout 5s;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        {locations}
    }}
}}
"""


def start_nginx(procs: Processes, workdir: Path, workers: int = 1, *, connections: int = 8192,
                rlimit_nofile: int | None = 16384, access_log: str = "access_log off;",
                locations: str = HEALTH, ready_timeout: float = 15) -> tuple[str, subprocess.Popen]:
    """nginx serving /health (17 bytes) on a fresh port in workdir/nginx; returns (url of /health, process).

    P1 and P2 pass an access log (they count the probes in it) and P2 a 503 /down location."""
    ndir = workdir / "nginx"
    (ndir / "tmp").mkdir(parents=True)
    port = free_port()
    conf = ndir / "nginx.conf"
    conf.write_text(nginx_conf(ndir, port, workers, connections, rlimit_nofile, access_log, locations))
    proc = procs.start([NGINX, "-c", str(conf), "-p", str(ndir), "-e", str(ndir / "error.log")], ndir / "stdout.log")
    url = f"http://127.0.0.1:{port}/health"
    wait_until(lambda: http_get(url, 1)[0] == 200, ready_timeout, "nginx", proc)
    return url, proc


# ----------------------------------------------------------------------------- the hanging listener

def start_hang_server(procs: Processes, workdir: Path, check: int = 1000) -> tuple[str, subprocess.Popen]:
    """A listener that accepts every connection and never answers; returns (url, process).

    Before returning, it is shown to hold `check` connections open at once, unanswered."""
    port = free_port()
    proc = procs.start([sys.executable, str(Path(__file__).resolve()), "hang", str(port)], workdir / "hang.log",
                       cwd=workdir)
    wait_until(lambda: _connects(port), 15, "hanging listener", proc)
    if check:  # it must hold `check` connections at once, accepted (not only queued) and unanswered
        socks = []
        try:
            for _ in range(check):
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                socks.append(s)
            wait_until(lambda: hang_stats(workdir).get("open", 0) >= check, 15, f"{check} connections held")
            for s in socks[:: max(1, check // 20)]:
                s.setblocking(False)
                try:
                    if s.recv(1) == b"":
                        raise RuntimeError("hanging listener closed a connection")
                    raise RuntimeError("hanging listener answered")
                except BlockingIOError:
                    pass  # no answer, as wanted
        finally:
            for s in socks:
                s.close()
    return f"http://127.0.0.1:{port}/health", proc


def _connects(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def hang_stats(workdir: Path) -> dict:
    """What the hanging listener last wrote to hang.json: accepted, open now, peak open."""
    try:
        return json.loads((workdir / "hang.json").read_text())
    except (OSError, ValueError):
        return {}


def _serve_hanging(port: int, stats_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    stats = {"accepted": 0, "open": 0, "peak_open": 0}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stats["accepted"] += 1
        stats["open"] += 1
        stats["peak_open"] = max(stats["peak_open"], stats["open"])
        try:
            while await reader.read(65536):
                pass  # read and discard; never answer
        except OSError:
            pass
        finally:
            stats["open"] -= 1
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
        async with server:
            while True:
                await asyncio.sleep(0.25)
                stats_path.write_text(json.dumps(stats))

    asyncio.run(main())


# ----------------------------------------------------------------------------- loopback servers

class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve_in_thread(port: int, handler: type, poll_interval: float) -> _Server:
    """A threaded HTTP server on 127.0.0.1:`port`, serving from a daemon thread; stop with
    shutdown() then server_close()."""
    server = _Server(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": poll_interval}, daemon=True).start()
    return server


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

        self._server = serve_in_thread(self.port, Handler, poll_interval=0.05)

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

        self._server = serve_in_thread(self.port, Handler, poll_interval=0.02)

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


# ----------------------------------------------------------------------------- tocsin

def tocsin_argv() -> list[str]:
    exe = Path(sys.executable).parent / "tocsin"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "import sys; from tocsin.cli import main; sys.exit(main())"]


def tocsin_config(path: Path, port: int, targets: list[tuple[str, str]], interval: float, timeout: float,
                  state_dir: Path) -> None:
    """A config with `targets` = [(name, url)], everything else default, logging at warning."""
    lines = ["global:", f"  listen_address: 127.0.0.1:{port}", f"  interval: {round(interval * 1000)}ms",
             f"  timeout: {round(timeout * 1000)}ms", f"  state_dir: {state_dir}",
             "logging:", "  level: warning", "  console: {format: text}", "targets:"]
    for name, url in targets:
        lines += [f"  - name: {name}", f"    url: {url}"]
    path.write_text("\n".join(lines) + "\n")


def dur(seconds: float) -> str:
    """A Prometheus/tocsin duration string."""
    ms = round(seconds * 1000)
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def write_tocsin_config(path: Path, port: int, targets: list[tuple[str, str]], interval: float, timeout: float,
                        evaluation_interval: float, rule_file: Path, webhook_url: str, group_wait: float,
                        group_interval: float = 60.0, repeat_interval: float = 4 * 3600.0) -> None:
    """A config with rules and one webhook receiver (P2, P6); tocsin_config is the one without."""
    import yaml

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


_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str, wanted: tuple[str, ...] | None = None):
    """Yield (name, {label: value}, float) for each sample line (names in `wanted`, if given)."""
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        if wanted is not None and not line.startswith(wanted):
            continue
        m = _LINE.match(line)
        if not m:
            continue
        labels = dict(_LABEL.findall(m.group(2))) if m.group(2) else {}
        yield m.group(1), labels, float(m.group(3))


def scrape(base: str, timeout: float = 30.0) -> tuple[str, float]:
    """(the /metrics text, wall seconds the scrape took)."""
    t0 = time.monotonic()
    status, body = http_get(base + "/metrics", timeout)
    if status != 200:
        raise RuntimeError(f"tocsin /metrics answered {status}")
    return body.decode(), time.monotonic() - t0


SELF_NAMES = ("tocsin_scheduler_", "tocsin_probes_in_flight", "process_resident_memory_bytes")


def self_metrics(text: str) -> dict:
    """The scheduler's own health: lateness buckets (le -> cumulative count), sum, count, missed, skipped."""
    out: dict = {"lateness_buckets": {}}
    for name, labels, value in parse_metrics(text, SELF_NAMES):
        if name == "tocsin_scheduler_lateness_seconds_bucket":
            out["lateness_buckets"][float(labels["le"])] = value
        else:
            out[name] = value
    return out


def probe_counts(text: str) -> dict[str, dict[str, float]]:
    """target -> {"success": n, "failure": n} from tocsin_probes_total."""
    out: dict[str, dict[str, float]] = {}
    for _, labels, value in parse_metrics(text, ("tocsin_probes_total{",)):
        out.setdefault(labels["target"], {"success": 0.0, "failure": 0.0})[labels["result"]] = value
    return out


def histogram_quantile(q: float, before: dict[float, float], after: dict[float, float]) -> float:
    """Prometheus's histogram_quantile over the bucket deltas (linear within a bucket).

    Returns +Inf when the quantile lands in the +Inf bucket (it is above the highest bound)."""
    bounds = sorted(after)
    deltas = [after[b] - before.get(b, 0.0) for b in bounds]
    total = deltas[-1] if deltas else 0.0
    if total <= 0:
        return math.nan
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound, count in zip(bounds, deltas, strict=True):
        if count >= rank:
            if math.isinf(bound):
                return math.inf
            if count == prev_count:
                return bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / (count - prev_count)
        prev_bound, prev_count = bound, count
    return math.inf


def bucket_shares(before: dict[float, float], after: dict[float, float]) -> dict[str, float]:
    """Share of observations at or below each bound, over the deltas (a cumulative table)."""
    bounds = sorted(after)
    total = after[bounds[-1]] - before.get(bounds[-1], 0.0) if bounds else 0.0
    return {("+Inf" if math.isinf(b) else f"{b:g}"): round((after[b] - before.get(b, 0.0)) / total, 5)
            for b in bounds} if total else {}


# ----------------------------------------------------------------------------- systemd notify

class NotifySocket:
    """An AF_UNIX datagram socket standing in for systemd's: NOTIFY_SOCKET for a child.

    A thread reads it all the time, as systemd does: a notify socket nobody reads fills up
    and then blocks the sender (sd_notify's sendto is blocking)."""

    def __init__(self, directory: Path) -> None:
        self.path = str(directory / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []  # (monotonic time received, message)
        self._cursor = 0
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._closed:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            now = time.monotonic()
            with self._cond:
                self.messages.append((now, data.decode(errors="replace")))
                self._cond.notify_all()

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["NOTIFY_SOCKET"] = self.path
        env.pop("WATCHDOG_USEC", None)
        env.pop("WATCHDOG_PID", None)
        return env

    def wait_for(self, field: str, timeout: float, proc: subprocess.Popen | None = None) -> tuple[float, str]:
        """The first message from now on (not yet consumed) with the line `field`, e.g. READY=1: (time, message)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                while self._cursor < len(self.messages):
                    t, message = self.messages[self._cursor]
                    self._cursor += 1
                    if field in message.split("\n"):
                        return t, message
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"no {field} on the notify socket within {timeout}s")
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"process exited with {proc.returncode} before {field}")
                self._cond.wait(min(left, 0.5))

    def drain(self) -> None:
        """Forget what arrived so far: the next wait_for looks only at later messages."""
        with self._cond:
            self._cursor = len(self.messages)

    def close(self) -> None:
        self._closed = True
        self._thread.join(2)
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "hang":
        _serve_hanging(int(sys.argv[2]), Path.cwd() / "hang.json")
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
