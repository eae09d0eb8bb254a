#!/usr/bin/env python3
"""P8: 30 000 HTTP targets every 10 s (3 000 probes/s) as shards on one host, against blackbox's ceiling.

tocsin   one config file with `cluster: {shards: N}`, N `tocsin run --shard i` processes (what
         `systemctl start tocsin@0 … tocsin@N-1` runs), every target a fast loopback nginx
         (`return 200`). After every shard is READY the script waits out the first round
         (--warmup), then measures a window: scheduling lateness p99 (the shards' histogram
         bucket deltas added together), missed + skipped runs, probes done against
         targets × window / interval, failures, and the shards' RSS (summed) and CPU. During
         the window every shard is scraped each --scrape-interval s, as Prometheus would.
blackbox Debian's prometheus-blackbox-exporter probing the same nginx, driven as fast as it
         answers: by `wrk` (C, a Lua check that every answer says `probe_success 1`) over
         --blackbox-connections keep-alive connections, the best of them; where wrk is not
         installed, by P1's Python driver (which then limits the rate, so its CPU per probe
         gives the ceiling instead). The driver shares the machine's CPUs, as Prometheus's
         scrapes would.
ceiling  --ceiling-targets T (0: skip): the same shards again with T targets, to show how many
         probes per second tocsin sustains (0 missed) against blackbox's.

    python bench/p8_shards.py [--targets 30000] [--interval 10] [--shards 2] [--window 60]
                              [--warmup 40] [--scrape-interval 15] [--blackbox-seconds 20]
                              [--ceiling-targets 40000] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from p1_probe_cpu import BLACKBOX, BLACKBOX_YML, Driver  # noqa: E402

from common import (  # noqa: E402
    Processes,
    cpu_seconds,
    free_port,
    histogram_quantile,
    http_get,
    loadavg,
    machine,
    new_run,
    probe_counts,
    remove_workdir,
    rss_mib,
    scrape,
    self_metrics,
    start_nginx,
    tocsin_argv,
    wait_until,
    write_json,
)

GOALS = {"lateness_p99_s": 0.25, "missed_runs": 0, "rss_mb_total": 600.0}  # MB = 10^6 bytes (572 MiB)


def write_config(path: Path, port: int, url: str, args) -> None:
    cfg = {
        "global": {"listen_address": f"127.0.0.1:{port}", "interval": f"{args.interval}s", "timeout": "5s",
                   "state_dir": str(path.parent / "state")},
        "cluster": {"shards": args.shards},
        "logging": {"level": "warning", "console": {"format": "text"}},
        "targets": [{"name": f"t{i:05d}", "url": url} for i in range(args.targets)],
    }
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def _port_block(count: int) -> int:
    """A port p with p … p+count-1 free (shard i listens on p + i)."""
    import socket

    for _ in range(200):
        port = free_port()
        try:
            for i in range(1, count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port + i))
            return port
        except OSError:
            continue
    raise RuntimeError("no block of free ports")


def run_tocsin(procs: Processes, workdir: Path, url: str, args) -> dict:
    port = _port_block(args.shards)
    config = workdir / "tocsin.yml"
    write_config(config, port, url, args)
    shards = [procs.start([*tocsin_argv(), "run", "--config", str(config), "--shard", str(i)],
                          workdir / f"shard{i}.log", cwd=workdir) for i in range(args.shards)]
    bases = [f"http://127.0.0.1:{port + i}" for i in range(args.shards)]
    for base, proc in zip(bases, shards, strict=True):
        wait_until(lambda base=base: http_get(base + "/-/ready", 2)[0] == 200, 180, "shard ready", proc)
    time.sleep(args.warmup)
    before = [scrape(b, 60)[0] for b in bases]
    cpu0 = [cpu_seconds(p.pid) for p in shards]
    t0 = time.monotonic()
    timeline = _scrape_during(bases, [p.pid for p in shards], args.window, args.scrape_interval)
    after = [scrape(b, 60)[0] for b in bases]
    elapsed = time.monotonic() - t0
    cpu1 = [cpu_seconds(p.pid) for p in shards]
    rss = [rss_mib(p.pid) for p in shards]
    pss = [_pss_mib(p.pid) for p in shards]
    for proc in shards:  # a later run (the ceiling) starts shards of its own on the same state
        procs.stop(proc)
    s0, s1 = [self_metrics(t) for t in before], [self_metrics(t) for t in after]
    buckets0 = _added([m["lateness_buckets"] for m in s0])
    buckets1 = _added([m["lateness_buckets"] for m in s1])

    def delta(name: str) -> float:
        return sum(b.get(name, 0.0) - a.get(name, 0.0) for a, b in zip(s0, s1, strict=True))

    done = failures = 0.0
    owned = 0
    for text0, text1 in zip(before, after, strict=True):
        c0, c1 = probe_counts(text0), probe_counts(text1)
        owned += len(c1)
        for name, counts in c1.items():
            prev = c0.get(name, {"success": 0.0, "failure": 0.0})
            done += counts["success"] + counts["failure"] - prev["success"] - prev["failure"]
            failures += counts["failure"] - prev["failure"]
    return {
        "shards": args.shards, "targets": args.targets, "targets_owned": owned, "window_s": round(elapsed, 1),
        "lateness_p50_s": round(histogram_quantile(0.5, buckets0, buckets1), 4),
        "lateness_p99_s": round(histogram_quantile(0.99, buckets0, buckets1), 4),
        "missed_runs": delta("tocsin_scheduler_missed_runs_total"),
        "skipped_runs": delta("tocsin_scheduler_skipped_runs_total"),
        "probes_done": int(done), "probes_expected": int(args.targets * elapsed / args.interval),
        "probes_per_s": round(done / elapsed, 1), "failures": int(failures),
        "rss_mib_total": round(sum(r[0] for r in rss), 1), "rss_mib_peak_total": round(sum(r[1] for r in rss), 1),
        "rss_mb_total": round(sum(r[0] for r in rss) * 1.048576, 1),
        # Proportional: a shared library's pages count once across the shards, not once per shard.
        "pss_mib_total": round(sum(pss), 1),
        "cpu_cores": round(sum(b - a for a, b in zip(cpu0, cpu1, strict=True)) / elapsed, 2),
        "load_average_after": loadavg(),
        "scrape_interval_s": args.scrape_interval,
        "timeline": timeline,
    }


def _added(histograms: list[dict[float, float]]) -> dict[float, float]:
    """The shards' lateness buckets added together, bound by bound (one histogram of them all)."""
    total: dict[float, float] = {}
    for buckets in histograms:
        for le, count in buckets.items():
            total[le] = total.get(le, 0.0) + count
    return total


def _pss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _scrape_during(bases: list[str], pids: list[int], window: float, every: float) -> list[dict]:
    """Scrape every shard each `every` seconds until `window` has passed, as Prometheus would
    (0: sleep through the window): per scrape round, the shards' lateness p99 since the
    previous round, the scrape's wall time and their RSS, to see when lateness happens."""
    end = time.monotonic() + window
    if every <= 0:
        time.sleep(window)
        return []
    rounds: list[dict] = []
    previous: list[dict] | None = None
    while time.monotonic() + every <= end:
        time.sleep(every)
        started = time.monotonic()
        texts = [scrape(b, 60)[0] for b in bases]
        took = time.monotonic() - started
        now = [self_metrics(t)["lateness_buckets"] for t in texts]
        if previous is not None:
            merged0, merged1 = _added(previous), _added(now)
            rounds.append({"t_s": round(window - (end - started), 1), "scrape_s": round(took, 3),
                           "rss_mib": round(sum(rss_mib(pid)[0] for pid in pids), 1),
                           "lateness_p99_s": round(histogram_quantile(0.99, merged0, merged1), 4)})
        previous = now
    time.sleep(max(0.0, end - time.monotonic()))
    return rounds


# Counts the answers that report a successful probe (wrk's threads each keep their own counts).
WRK_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; bad = 0 end
function response(status, headers, body)
  if status == 200 and body:find("\\nprobe_success 1", 1, true) then ok = ok + 1 else bad = bad + 1 end
end
function done(summary, latency, requests)
  local o, b = 0, 0
  for _, t in ipairs(threads) do o = o + t:get("ok"); b = b + t:get("bad") end
  io.write(string.format("probes_ok %d probes_failed %d seconds %.3f\\n", o, b, summary.duration / 1e6))
end
"""


def run_blackbox(procs: Processes, workdir: Path, url: str, args) -> dict:
    port = free_port()
    cfg = workdir / "blackbox.yml"
    cfg.write_text(BLACKBOX_YML.format(timeout=5))
    proc = procs.start([BLACKBOX, f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{port}"],
                       workdir / "blackbox.log")
    wait_until(lambda: http_get(f"http://127.0.0.1:{port}/-/healthy", 1)[0] == 200, 30, "blackbox_exporter", proc)
    try:
        if shutil.which("wrk"):
            return _blackbox_by_wrk(proc.pid, port, url, workdir, args)
        return _blackbox_by_python(proc.pid, port, url, args)
    finally:
        procs.stop(proc)


def _blackbox_by_wrk(pid: int, port: int, url: str, workdir: Path, args) -> dict:
    script = workdir / "probe_ok.lua"
    script.write_text(WRK_SCRIPT)
    query = f"module=http_2xx&target={url}"
    runs = []
    for conns in args.blackbox_connections:
        c0, t0 = cpu_seconds(pid), time.monotonic()
        out = subprocess.run(["wrk", "-t", "2", "-c", str(conns), "-d", f"{args.blackbox_seconds:g}s", "-s", str(script),
                              f"http://127.0.0.1:{port}/probe?{query}"], capture_output=True, text=True, check=True).stdout
        cores = (cpu_seconds(pid) - c0) / (time.monotonic() - t0)
        found = re.search(r"probes_ok (\d+) probes_failed (\d+) seconds ([\d.]+)", out)
        if found is None:
            raise RuntimeError(f"wrk said: {out}")
        ok, failed, seconds = int(found[1]), int(found[2]), float(found[3])
        runs.append({"connections": conns, "probes_per_s": round(ok / seconds, 1), "failures": failed,
                     "cpu_cores": round(cores, 2), "cpu_ms_per_probe": round(cores / max(ok / seconds, 1) * 1000, 3),
                     "load_average_after": loadavg()})
    best = max(runs, key=lambda run: run["probes_per_s"])
    return {**best, "driver": "wrk", "ceiling_per_s": best["probes_per_s"], "runs": runs}


def _blackbox_by_python(pid: int, port: int, url: str, args) -> dict:
    driver = Driver(port, url, rate=20_000, conns=max(args.blackbox_connections))
    driver.start()
    try:
        time.sleep(5)
        d0, f0, c0, t0 = driver.done, driver.failed, cpu_seconds(pid), time.monotonic()
        time.sleep(args.blackbox_seconds)
        d1, f1, c1, t1 = driver.done, driver.failed, cpu_seconds(pid), time.monotonic()
    finally:
        driver.stop()
    rate, cores = (d1 - d0) / (t1 - t0), (c1 - c0) / (t1 - t0)
    # The driver (Python, one thread) limits the rate; blackbox's own ceiling on this machine
    # is then the CPUs it could have over its CPU per probe.
    return {"driver": "python", "probes_per_s": round(rate, 1), "failures": f1 - f0, "cpu_cores": round(cores, 2),
            "cpu_ms_per_probe": round(cores / max(rate, 1) * 1000, 3),
            "ceiling_per_s": round((os.cpu_count() or 1) / max(cores / max(rate, 1), 1e-9), 0),
            "connections": max(args.blackbox_connections), "load_average_after": loadavg()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", type=int, default=30_000)
    parser.add_argument("--interval", type=int, default=10)
    parser.add_argument("--shards", type=int, default=2)  # one per core of this machine
    parser.add_argument("--window", type=float, default=60)
    parser.add_argument("--warmup", type=float, default=40)
    parser.add_argument("--blackbox-seconds", type=float, default=20)
    parser.add_argument("--blackbox-connections", type=lambda text: [int(n) for n in text.split(",")],
                        default=[32, 128], help="comma-separated; wrk is run once with each, the best counts")
    parser.add_argument("--ceiling-targets", type=int, default=40_000,
                        help="then run the shards again with this many targets: tocsin's sustained rate (0: skip)")
    parser.add_argument("--scrape-interval", type=float, default=15,
                        help="scrape every shard this often during the window, as Prometheus would (0: never)")
    parser.add_argument("--skip-blackbox", action="store_true")
    parser.add_argument("--nginx-workers", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    procs, workdir = new_run("p8")
    summary: dict = {"machine": machine(), "args": vars(args) | {"json": str(args.json)}, "goals": GOALS,
                     "load_average_before": loadavg()}
    try:
        url, _nginx = start_nginx(procs, workdir, args.nginx_workers, connections=16384, rlimit_nofile=40000)
        wait_quiet()
        summary["tocsin"] = run_tocsin(procs, workdir, url, args)
        if not args.skip_blackbox:
            summary["blackbox"] = run_blackbox(procs, workdir, url, args)
        if args.ceiling_targets:
            wait_quiet()
            summary["tocsin_ceiling"] = run_tocsin(procs, workdir, url, argparse.Namespace(
                **{**vars(args), "targets": args.ceiling_targets}))
    finally:
        procs.stop_all()
        remove_workdir(workdir, args.keep, "p8")
    report(summary, args)
    write_json(args.json, summary)
    return 0


def wait_quiet(limit: float = 120.0) -> None:
    """Let the 1-minute load average fall below 1 (at most `limit` s): a run started on a busy
    machine begins behind and may never catch up."""
    end = time.monotonic() + limit
    while os.getloadavg()[0] >= 1.0 and time.monotonic() < end:
        time.sleep(5)


def _line(t: dict, args) -> str:
    return (f"tocsin, {t['shards']} shards, {t['targets']} targets / {args.interval}s: {t['probes_per_s']} probes/s "
            f"({t['probes_done']} of {t['probes_expected']} expected), lateness p99 {t['lateness_p99_s'] * 1000:.0f} ms, "
            f"missed {t['missed_runs']:.0f} + skipped {t['skipped_runs']:.0f}, failures {t['failures']}, "
            f"RSS {t['rss_mib_total']} MiB = {t['rss_mb_total']} MB (peak {t['rss_mib_peak_total']} MiB, PSS "
            f"{t['pss_mib_total']} MiB), CPU {t['cpu_cores']} cores, load {t['load_average_after']}")


def report(summary: dict, args) -> None:
    t = summary["tocsin"]
    print(_line(t, args))
    worst = sorted(t["timeline"], key=lambda r: -r["lateness_p99_s"])[:3]
    if worst:
        print("worst scrape rounds (t, lateness p99, scrape wall time):",
              ", ".join(f"{r['t_s']} s: {r['lateness_p99_s'] * 1000:.0f} ms / {r['scrape_s']:.2f} s" for r in worst))
    b = summary.get("blackbox")
    if b:
        print(f"blackbox_exporter ({b['driver']} driving it, {b['connections']} connections): {b['probes_per_s']} "
              f"probes/s ({b['failures']} failed), CPU {b['cpu_cores']} cores = {b['cpu_ms_per_probe']} ms/probe; "
              f"ceiling on this machine {b['ceiling_per_s']:.0f} probes/s; load {b['load_average_after']}")
    c = summary.get("tocsin_ceiling")
    if c:
        print("ceiling run: " + _line(c, args))
    if b:
        best = max(t["probes_per_s"], c["probes_per_s"] if c and not c["missed_runs"] + c["skipped_runs"] else 0)
        print(f"tocsin sustained {best} probes/s against blackbox's {b['ceiling_per_s']:.0f}: "
              f"{best / max(b['ceiling_per_s'], 1):.2f} x")


if __name__ == "__main__":
    sys.exit(main())
