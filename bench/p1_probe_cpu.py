#!/usr/bin/env python3
"""P1: whole-process CPU seconds per 1 000 HTTP probes, tocsin vs blackbox_exporter.

Both probers hit the same fast loopback target (nginx, one process, a tiny /health body)
at the same rate, with a fresh TCP connection per probe, in the same run, alternately:

  tocsin     `tocsin run` with N HTTP targets at interval I (rate N/I); it schedules
             itself. Its CPU includes the scheduler, the probes, the metrics registry
             and two /metrics scrapes per window (window start and end).
  blackbox   Debian's prometheus-blackbox-exporter with an `http_2xx` module, driven by
             an in-process load generator that GETs /probe?module=http_2xx&target=URL at
             the same rate over a few keep-alive connections (as Prometheus would). Its CPU
             includes serving each /probe response (the registry it builds and renders per
             probe); the driver's CPU is not counted.

CPU is utime+stime of the prober's process from /proc/<pid>/stat over a steady window
after a warm-up. Probes in the window: for tocsin, the change of sum(tocsin_probes_total)
on its /metrics; for blackbox, the /probe requests the driver completed. Correctness is
checked on the same window: every probe must succeed (probe_success 1 on both sides) and,
from nginx's access log ($connection, $connection_requests), every request of either
prober must arrive on a connection of its own.

Plain Python, standard library only. Everything listens on 127.0.0.1 on ports chosen at
run time; every process started here is stopped on exit.

    python bench/p1_probe_cpu.py [--targets 200] [--interval 1.25] [--rounds 3]
                                 [--warmup 6] [--window 25] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    BLACKBOX,
    NGINX,
    Processes,
    cpu_seconds,
    cpu_times,
    first_line,
    free_port,
    http_get,
    machine_base,
    new_run,
    profile_with_py_spy,
    remove_workdir,
    rss_mib,
    scrape,
    start_nginx,
    tocsin_argv,
    tocsin_config,
    tocsin_version,
    wait_until,
    write_json,
)

GOAL = 0.7  # tocsin's CPU per probe must be at most this fraction of blackbox's


# ----------------------------------------------------------------------------- the target

NGINX_PID: list[int] = []  # the target's pid, for its CPU per request (context, not compared)


def start_target(procs: Processes, workdir: Path) -> tuple[str, Path]:
    """nginx logging each request's connection serial, its number on that connection, status and User-Agent."""
    log = workdir / "nginx" / "access.log"
    url, proc = start_nginx(procs, workdir, connections=4096, rlimit_nofile=None, ready_timeout=10,
                            access_log=("log_format p1 '$connection $connection_requests $status \"$http_user_agent\"';"
                                        f"\n    access_log {log} p1;"))
    NGINX_PID[:] = [proc.pid]
    return url, log


def connection_check(access_log: Path, start: int, end: int, agent_prefix: str) -> dict:
    """From nginx's log slice [start, end): requests of this prober and the connections they came on."""
    with open(access_log, "rb") as f:
        f.seek(start)
        data = f.read(end - start).decode("latin-1")
    requests, connections, reused, bad_status = 0, set(), 0, 0
    for line in data.splitlines():
        m = re.match(r'(\d+) (\d+) (\d+) "(.*)"$', line)
        if not m or not m.group(4).startswith(agent_prefix):
            continue
        requests += 1
        connections.add(m.group(1))
        reused += m.group(2) != "1"
        bad_status += m.group(3) != "200"
    return {"requests": requests, "connections": len(connections), "requests_on_reused_connection": reused,
            "non_200": bad_status, "fresh_connection_each": requests > 0 and reused == 0
            and len(connections) == requests}


# ----------------------------------------------------------------------------- results

@dataclass
class Round:
    side: str
    round: int
    window_s: float
    probes: int
    failures: int
    cpu_s: float
    cpu_per_1000: float
    rate_per_s: float
    cpu_percent: float
    rss_mib: float
    hwm_mib: float
    target_requests: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


def round_from(side: str, index: int, window: float, probes: int, failures: int, cpu: float,
               rss: tuple[float, float], conn: dict, extra: dict) -> Round:
    return Round(side=side, round=index, window_s=round(window, 3), probes=probes, failures=failures,
                 cpu_s=round(cpu, 3), cpu_per_1000=round(cpu / probes * 1000, 4) if probes else float("nan"),
                 rate_per_s=round(probes / window, 2), cpu_percent=round(100 * cpu / window, 2),
                 rss_mib=round(rss[0], 1), hwm_mib=round(rss[1], 1), target_requests=conn, extra=extra)


# ----------------------------------------------------------------------------- tocsin

_PROBES_TOTAL = re.compile(r'^tocsin_probes_total\{[^}]*result="(success|failure)"\} (\S+)$', re.M)
_SELF = re.compile(r"^(tocsin_scheduler_(?:missed|skipped)_runs_total|tocsin_scheduler_lateness_seconds_(?:sum|count)) (\S+)$",
                   re.M)


def tocsin_counts(base: str) -> dict[str, float]:
    text, _ = scrape(base, 5.0)
    counts = {"success": 0.0, "failure": 0.0}
    for result, value in _PROBES_TOTAL.findall(text):
        counts[result] += float(value)
    for name, value in _SELF.findall(text):
        counts[name] = float(value)
    return counts


def run_tocsin_round(procs: Processes, workdir: Path, index: int, url: str, access_log: Path, args) -> Round:
    rdir = workdir / f"tocsin-{index}"
    rdir.mkdir()
    port = free_port()
    cfg = rdir / "tocsin.yml"
    tocsin_config(cfg, port, [(f"p1-{i:04d}", url) for i in range(args.targets)], args.interval,
                  min(args.timeout, args.interval), rdir / "state")
    base = f"http://127.0.0.1:{port}"
    proc = procs.start([*tocsin_argv(), "run", "--config", str(cfg)], rdir / "tocsin.log", cwd=rdir)
    try:
        wait_until(lambda: http_get(base + "/-/ready", 1)[0] == 200, 30, "tocsin", proc)
        time.sleep(max(args.warmup, 2 * args.interval))  # every target has run at least once
        (u0, k0), n0 = cpu_times(proc.pid), cpu_seconds(NGINX_PID[0])
        cpu0 = u0 + k0
        t0 = time.monotonic()
        c0 = tocsin_counts(base)
        log0 = access_log.stat().st_size
        if args.profile_hook:
            args.profile_hook(proc.pid, args.window)
        else:
            time.sleep(args.window)
        (u1, k1), n1 = cpu_times(proc.pid), cpu_seconds(NGINX_PID[0])
        cpu1 = u1 + k1
        t1 = time.monotonic()
        log1 = access_log.stat().st_size
        rss = rss_mib(proc.pid)
        c1 = tocsin_counts(base)
        if proc.poll() is not None:
            raise RuntimeError(f"tocsin exited with {proc.returncode}")
    finally:
        procs.stop(proc)
    ok = int(c1["success"] - c0["success"])
    failed = int(c1["failure"] - c0["failure"])
    conn = connection_check(access_log, log0, log1, "tocsin/")
    extra = {k: c1.get(k, 0.0) - c0.get(k, 0.0) for k in c1 if k.startswith("tocsin_scheduler")}
    extra["target_cpu_per_1000"] = round((n1 - n0) / max(conn["requests"], 1) * 1000, 4)
    extra["user_s"], extra["system_s"] = round(u1 - u0, 3), round(k1 - k0, 3)
    if extra.get("tocsin_scheduler_lateness_seconds_count"):
        extra["mean_lateness_ms"] = round(1000 * extra["tocsin_scheduler_lateness_seconds_sum"]
                                          / extra["tocsin_scheduler_lateness_seconds_count"], 2)
    return round_from("tocsin", index, t1 - t0, ok + failed, failed, cpu1 - cpu0, rss, conn, extra)


def profile_window(pid: int, seconds: float, prefix: Path) -> None:
    """Sample `pid` for `seconds` with py-spy (active threads only) into PREFIX-<n>.txt, collapsed stacks.

    py-spy pauses the process for each sample (its default): consistent stacks, at the price of
    some overhead, which is why a profiled run's CPU figures are not results. Load the file in a
    flame-graph viewer (speedscope, flamegraph.pl), or read bench/profile_summary.py's digest of it.
    """
    prefix.parent.mkdir(parents=True, exist_ok=True)
    index = len(list(prefix.parent.glob(prefix.name + "-*.txt"))) + 1
    profile_with_py_spy(pid, seconds, Path(f"{prefix}-{index}.txt")).wait(seconds + 30)


# ----------------------------------------------------------------------------- blackbox

BLACKBOX_YML = """\
modules:
  http_2xx:
    prober: http
    timeout: {timeout}s
    http:
      preferred_ip_protocol: ip4
"""


class Driver:
    """Open-loop load generator: one /probe request every 1/rate s, over `conns` keep-alive connections."""

    def __init__(self, port: int, target_url: str, rate: float, conns: int) -> None:
        query = urllib.parse.urlencode({"module": "http_2xx", "target": target_url})
        self.request = (f"GET /probe?{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                        "User-Agent: p1-driver\r\n\r\n").encode()
        self.port, self.rate, self.conns = port, rate, conns
        self.done = 0
        self.failed = 0
        self.errors: list[str] = []
        self.backlog_max = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    async def _main(self) -> None:
        queue: asyncio.Queue[None] = asyncio.Queue()
        workers = [asyncio.create_task(self._worker(queue)) for _ in range(self.conns)]
        loop = asyncio.get_running_loop()
        start, sent = loop.time(), 0
        while not self._stop.is_set():
            due = int((loop.time() - start) * self.rate) + 1
            for _ in range(due - sent):
                queue.put_nowait(None)
            sent = max(sent, due)
            self.backlog_max = max(self.backlog_max, queue.qsize())
            await asyncio.sleep(start + sent / self.rate - loop.time())
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)

    @staticmethod
    async def _body(reader: asyncio.StreamReader, head: bytes) -> bytes:
        length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
        if length:
            return await reader.readexactly(int(length.group(1)))
        if not re.search(rb"(?i)\r\ntransfer-encoding: *chunked", head):
            raise ValueError("response without Content-Length or chunked framing")
        body = bytearray()
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        await reader.readuntil(b"\r\n")  # no trailers from promhttp
        return bytes(body)

    async def _worker(self, queue: asyncio.Queue) -> None:
        reader = writer = None
        while True:
            await queue.get()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.write(self.request)
                head = await reader.readuntil(b"\r\n\r\n")
                body = await self._body(reader, head)
                if head.startswith(b"HTTP/1.1 200") and re.search(rb"(?m)^probe_success 1$", body):
                    self.done += 1
                else:
                    self.done += 1
                    self.failed += 1
                    if len(self.errors) < 5:
                        self.errors.append((head[:40] + b" / " + body[:200]).decode("latin-1"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                self.failed += 1
                self.done += 1
                if len(self.errors) < 5:
                    self.errors.append(repr(exc))
                if writer is not None:
                    writer.close()
                reader = writer = None


def run_blackbox_round(procs: Processes, workdir: Path, index: int, url: str, access_log: Path, args) -> Round:
    rdir = workdir / f"blackbox-{index}"
    rdir.mkdir()
    port = free_port()
    cfg = rdir / "blackbox.yml"
    cfg.write_text(BLACKBOX_YML.format(timeout=min(args.timeout, args.interval)))
    base = f"http://127.0.0.1:{port}"
    proc = procs.start([BLACKBOX, f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{port}"],
                       rdir / "blackbox.log")
    driver = Driver(port, url, args.targets / args.interval, args.driver_connections)
    try:
        wait_until(lambda: http_get(base + "/-/healthy", 1)[0] == 200, 30, "blackbox_exporter", proc)
        driver.start()
        time.sleep(max(args.warmup, 2 * args.interval))
        (u0, k0), t0, d0, f0 = cpu_times(proc.pid), time.monotonic(), driver.done, driver.failed
        cpu0 = u0 + k0
        n0, own0 = cpu_seconds(NGINX_PID[0]), cpu_seconds(os.getpid())
        log0 = access_log.stat().st_size
        time.sleep(args.window)
        (u1, k1), t1, d1, f1 = cpu_times(proc.pid), time.monotonic(), driver.done, driver.failed
        cpu1 = u1 + k1
        n1, own1 = cpu_seconds(NGINX_PID[0]), cpu_seconds(os.getpid())
        log1 = access_log.stat().st_size
        rss = rss_mib(proc.pid)
        if proc.poll() is not None:
            raise RuntimeError(f"blackbox_exporter exited with {proc.returncode}")
    finally:
        driver.stop()
        procs.stop(proc)
    conn = connection_check(access_log, log0, log1, "Blackbox")
    extra = {"driver_backlog_max": driver.backlog_max, "driver_errors": driver.errors,
             "driver_cpu_per_1000": round((own1 - own0) / max(d1 - d0, 1) * 1000, 4),
             "target_cpu_per_1000": round((n1 - n0) / max(conn["requests"], 1) * 1000, 4),
             "user_s": round(u1 - u0, 3), "system_s": round(k1 - k0, 3)}
    return round_from("blackbox", index, t1 - t0, d1 - d0, f1 - f0, cpu1 - cpu0, rss, conn, extra)


# ----------------------------------------------------------------------------- report

def machine() -> dict:
    nginx = subprocess.run([NGINX, "-v"], capture_output=True, text=True).stderr.strip()
    return {**machine_base(), "tocsin": tocsin_version(), "blackbox_exporter": first_line([BLACKBOX, "--version"]),
            "nginx": nginx}


def summarise(rounds: list[Round], args) -> dict:
    out: dict = {"benchmark": "P1", "unit": "CPU seconds per 1000 HTTP probes", "goal_ratio": GOAL,
                 "params": {"targets": args.targets, "interval_s": args.interval,
                            "rate_per_s": round(args.targets / args.interval, 2), "rounds": args.rounds,
                            "warmup_s": args.warmup, "window_s": args.window,
                            "timeout_s": min(args.timeout, args.interval)},
                 "machine": machine(), "rounds": [asdict(r) for r in rounds]}
    for side in ("tocsin", "blackbox"):
        mine = [r for r in rounds if r.side == side]
        if not mine:
            continue
        out[side] = {
            "cpu_per_1000_median": round(statistics.median(r.cpu_per_1000 for r in mine), 4),
            "cpu_per_1000_rounds": [r.cpu_per_1000 for r in mine],
            "cpu_percent_median": round(statistics.median(r.cpu_percent for r in mine), 2),
            "rate_per_s_median": round(statistics.median(r.rate_per_s for r in mine), 2),
            "rss_mib_median": round(statistics.median(r.rss_mib for r in mine), 1),
            "probes": sum(r.probes for r in mine), "failures": sum(r.failures for r in mine),
            "fresh_connection_each": all(r.target_requests.get("fresh_connection_each") for r in mine),
        }
    sides = [side for side in ("tocsin", "blackbox") if side in out]
    out["correct"] = all(out[side]["failures"] == 0 and out[side]["fresh_connection_each"] for side in sides)
    if len(sides) == 2:
        ratio = out["tocsin"]["cpu_per_1000_median"] / out["blackbox"]["cpu_per_1000_median"]
        out["ratio"] = round(ratio, 3)
        out["ratio_rounds"] = [round(t.cpu_per_1000 / b.cpu_per_1000, 3) for t, b in
                               zip([r for r in rounds if r.side == "tocsin"],
                                   [r for r in rounds if r.side == "blackbox"], strict=False)]
        out["meets_goal"] = ratio <= GOAL
    return out


def print_table(summary: dict) -> None:
    p = summary["params"]
    print(f"\nP1: CPU s per 1000 HTTP probes, fresh connection each, {p['targets']} targets every "
          f"{p['interval_s']}s (~{p['rate_per_s']}/s), {p['window_s']}s windows")
    print(f"{'side':9} {'round':>5} {'probes':>7} {'fail':>5} {'rate/s':>7} {'CPU s':>7} {'CPU%':>6} "
          f"{'user s':>7} {'sys s':>6} {'s/1000':>8} {'RSS MiB':>8} {'fresh conn':>10} {'nginx s/1000':>12}")
    for r in summary["rounds"]:
        print(f"{r['side']:9} {r['round']:>5} {r['probes']:>7} {r['failures']:>5} {r['rate_per_s']:>7} "
              f"{r['cpu_s']:>7} {r['cpu_percent']:>6} {r['extra'].get('user_s', 0):>7} {r['extra'].get('system_s', 0):>6} "
              f"{r['cpu_per_1000']:>8.4f} {r['rss_mib']:>8} "
              f"{str(r['target_requests'].get('fresh_connection_each')):>10} "
              f"{r['extra'].get('target_cpu_per_1000', float('nan')):>12.4f}")
    for side in ("tocsin", "blackbox"):
        if side not in summary:
            continue
        s = summary[side]
        print(f"{side:9} median: {s['cpu_per_1000_median']:.4f} s/1000 probes, {s['cpu_percent_median']}% CPU "
              f"at {s['rate_per_s_median']}/s, RSS {s['rss_mib_median']} MiB, failures {s['failures']}")
    if "ratio" not in summary:
        print(f"correctness: {'ok' if summary['correct'] else 'FAILED'}")
        return
    print(f"ratio tocsin/blackbox: {summary['ratio']} (per round {summary['ratio_rounds']}); goal <= {GOAL}: "
          f"{'met' if summary['meets_goal'] else 'NOT met'}; correctness: {'ok' if summary['correct'] else 'FAILED'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=200, help="tocsin targets (N)")
    parser.add_argument("--interval", type=float, default=1.25, help="probe interval in seconds (rate = N / interval)")
    parser.add_argument("--timeout", type=float, default=1.0, help="probe timeout in seconds (capped at the interval)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=6.0, help="seconds before each window")
    parser.add_argument("--window", type=float, default=25.0, help="seconds of each measured window")
    parser.add_argument("--driver-connections", type=int, default=8, help="keep-alive connections to blackbox")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, configs)")
    parser.add_argument("--sides", default="tocsin,blackbox", help="which probers to run (comma-separated)")
    parser.add_argument("--profile", type=Path, metavar="PREFIX",
                        help="profile tocsin's windows with py-spy into PREFIX-<round>.txt (collapsed stacks); "
                             "the CPU figures of a profiled run are not benchmark results")
    args = parser.parse_args(argv)
    args.profile_hook = None
    if args.profile:
        args.profile_hook = lambda pid, seconds: profile_window(pid, seconds, args.profile)

    for exe in (NGINX, BLACKBOX):
        if not os.access(exe, os.X_OK):
            print(f"P1: {exe} is not installed", file=sys.stderr)
            return 2

    procs, workdir = new_run("p1", stop_timeout=10.0)
    try:
        url, access_log = start_target(procs, workdir)
        rounds: list[Round] = []
        for index in range(1, args.rounds + 1):
            for side, run in (("tocsin", run_tocsin_round), ("blackbox", run_blackbox_round)):
                if side not in args.sides.split(","):
                    continue
                r = run(procs, workdir, index, url, access_log, args)
                print(f"  {r.side} round {index}: {r.probes} probes ({r.failures} failed), "
                      f"{r.cpu_s}s CPU -> {r.cpu_per_1000:.4f} s/1000", file=sys.stderr, flush=True)
                rounds.append(r)
        summary = summarise(rounds, args)
    finally:
        procs.stop_all()
        remove_workdir(workdir, args.keep, "P1")
    print_table(summary)
    write_json(args.json, summary)
    return 0 if summary["correct"] else 1


if __name__ == "__main__":
    sys.exit(main())
