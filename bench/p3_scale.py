#!/usr/bin/env python3
"""P3: 10 000 HTTP targets every 10 s on one machine: scheduling lateness, missed runs, RSS.

Two scenarios, one after the other, each with a fresh `tocsin run`:

  healthy   every target is a fast loopback nginx (`return 200`, one worker by default).
  hang      every tenth target points at a listener that accepts each connection and never
            answers (a Python asyncio server, backlog 4096); those probes end at their 5 s
            deadline. The goal is that the other 90 % do not notice.

After start-up the script waits until every target has been probed once, then a short
warm-up, then a measured window. Figures, over the window:

  lateness  p50/p99 from tocsin_scheduler_lateness_seconds (bucket deltas between the first
            and last scrape, interpolated as histogram_quantile does). That histogram counts
            every probe run, hanging ones too, so the script also measures each run's start
            itself: tocsin_probe_last_run_timestamp_seconds of every target, read on every
            scrape, against the target's schedule (its `next_run` from /api/v1/targets,
            plus k × interval); this gives start lateness per target, split
            healthy / hanging, and includes the delay from submission to the probe starting.
  misses    tocsin_scheduler_missed_runs_total and _skipped_runs_total deltas, and probes
            done (sum of tocsin_probes_total deltas) against targets × window / interval,
            for all targets and for the healthy ones alone.
  failures  tocsin_probes_total{result="failure"} deltas, healthy targets and hanging ones.
  RSS       VmRSS and VmHWM of the tocsin process at the window's end.
  CPU       of tocsin, of nginx (to see whether the target is the bottleneck) and of this
            script (it parses the scrapes, on the same 2 CPUs).

/metrics is scraped every --scrape-every seconds during the window (as a Prometheus would);
each scrape's wall time is recorded.

    python bench/p3_scale.py [--targets 10000] [--interval 10] [--window 60]
                             [--scenarios healthy,hang] [--nginx-workers 1] [--json FILE]
"""

from __future__ import annotations

import argparse
import math
import os
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    Processes,
    bucket_shares,
    cpu_seconds,
    free_port,
    hang_stats,
    histogram_quantile,
    http_get,
    loadavg,
    machine,
    new_run,
    profile_with_py_spy,
    remove_workdir,
    rss_mib,
    scrape,
    self_metrics,
    start_hang_server,
    start_nginx,
    tocsin_argv,
    tocsin_config,
    tree_cpu_seconds,
    wait_until,
    write_json,
)

GOALS = {"lateness_p99_s": 0.25, "missed_runs": 0, "rss_mib": 400.0}

_LAST_RUN = re.compile(r'^tocsin_probe_last_run_timestamp_seconds\{target="([^"]*)"\} (\S+)$', re.M)
_TOTAL = re.compile(r'^tocsin_probes_total\{target="([^"]*)",result="(\w+)"\} (\S+)$', re.M)


def counts_of(text: str) -> dict[str, list[float]]:
    """target -> [success, failure]."""
    out: dict[str, list[float]] = {}
    for name, result, value in _TOTAL.findall(text):
        out.setdefault(name, [0.0, 0.0])[result == "failure"] = float(value)
    return out


_FAILURES = re.compile(r'^tocsin_probe_failures_total\{target="(ok|hang)-[^"]*",reason="([^"]*)"\} (\S+)$', re.M)


def failure_reasons(before: str, after: str) -> dict[str, dict[str, int]]:
    """{"ok"|"hang": {reason: failures in the window}} from tocsin_probe_failures_total."""
    out: dict[str, dict[str, int]] = {}
    for sign, text in ((-1, before), (1, after)):
        for group, reason, value in _FAILURES.findall(text):
            g = out.setdefault(group, {})
            g[reason] = g.get(reason, 0) + sign * int(float(value))
    return {g: {r: n for r, n in reasons.items() if n} for g, reasons in out.items()}


def quantiles(values: list[float]) -> dict:
    if not values:
        return {}
    values = sorted(values)

    def q(p: float) -> float:
        return values[min(len(values) - 1, max(0, math.ceil(p * len(values)) - 1))]
    return {"n": len(values), "p50_ms": round(q(0.5) * 1000, 2), "p90_ms": round(q(0.9) * 1000, 2),
            "p99_ms": round(q(0.99) * 1000, 2), "p999_ms": round(q(0.999) * 1000, 2),
            "max_ms": round(values[-1] * 1000, 2), "over_250ms": sum(v > 0.25 for v in values)}


def schedule_of(base: str) -> dict[str, float]:
    """target -> one of its due times (Unix seconds): `next_run` from tocsin's /api/v1/targets.

    A target is due at that instant plus any whole number of intervals (its phase on the
    scheduler's grid), until a reload or backoff changes its schedule; neither happens here."""
    import json
    from datetime import datetime

    status, body = http_get(base + "/api/v1/targets", 60)
    if status != 200:
        raise RuntimeError(f"/api/v1/targets answered {status}")
    doc = json.loads(body)
    items = doc.get("data", doc) if isinstance(doc, dict) else doc
    return {t["name"]: datetime.fromisoformat(t["next_run"]).timestamp() for t in items if t.get("next_run")}


def start_lateness(runs: dict[str, list[float]], schedule: dict[str, float], interval: float) -> dict[str, list[float]]:
    """target -> start lateness of each run seen (in the order given): start - due, where the
    due times are the target's scheduled instant plus k × interval. APScheduler never starts
    a run early, so the distance to the due time just before the start is the lateness."""
    return {name: [(ts - schedule[name]) % interval for ts in starts]
            for name, starts in runs.items() if name in schedule}


def run_scenario(procs: Processes, workdir: Path, scenario: str, ok_url: str, hang_url: str | None,
                 nginx_pid: int, hang_pid: int | None, args) -> dict:
    rdir = workdir / scenario
    rdir.mkdir()
    port = free_port()
    targets = []
    for i in range(args.targets):
        hanging = scenario == "hang" and i % round(1 / args.hang_share) == 0
        targets.append((f"hang-{i:05d}" if hanging else f"ok-{i:05d}", hang_url if hanging else ok_url))
    cfg = rdir / "tocsin.yml"
    tocsin_config(cfg, port, targets, args.interval, args.timeout, rdir / "state")
    base = f"http://127.0.0.1:{port}"
    t_spawn = time.monotonic()
    proc = procs.start([*tocsin_argv(), "run", "--config", str(cfg)], rdir / "tocsin.log", cwd=rdir)
    out: dict = {"scenario": scenario, "targets": len(targets),
                 "hanging_targets": sum(n.startswith("hang-") for n, _ in targets)}
    try:
        wait_until(lambda: http_get(base + "/-/ready", 2)[0] == 200, 120, "tocsin", proc, step=0.1)
        out["spawn_to_ready_s"] = round(time.monotonic() - t_spawn, 2)
        t_ready = time.monotonic()

        def all_probed() -> bool:
            text, _ = scrape(base, 60)
            return len(counts_of(text)) >= len(targets)
        wait_until(all_probed, args.interval + args.timeout + 60, "every target probed once", proc, step=2.0)
        out["ready_to_all_probed_s"] = round(time.monotonic() - t_ready, 1)
        # The first round can leave a backlog (probes in flight by the thousand); the window
        # measures the steady state, so wait until in-flight probes are back to what the
        # hanging targets alone explain (or --settle-max seconds, noted in the results).
        hanging = sum(n.startswith("hang-") for n, _ in targets)
        normal = hanging * args.timeout / args.interval * 1.5 + 50
        t_settle = time.monotonic()
        try:
            wait_until(lambda: self_metrics(scrape(base, 60)[0]).get("tocsin_probes_in_flight", 1e9) <= normal,
                       args.settle_max, "in-flight probes settle", proc, step=2.0)
            out["settled"] = True
        except RuntimeError:
            out["settled"] = False
        out["settle_s"] = round(time.monotonic() - t_settle, 1)
        time.sleep(args.warmup)

        runs: dict[str, set[float]] = {}
        scrape_walls: list[float] = []
        in_flight: list[float] = []

        def take() -> tuple[str, float]:
            text, wall = scrape(base, 60)
            t = time.monotonic()
            scrape_walls.append(round(wall, 3))
            in_flight.append(self_metrics(text).get("tocsin_probes_in_flight", 0))
            for name, ts in _LAST_RUN.findall(text):
                runs.setdefault(name, set()).add(float(ts))
            return text, t - wall / 2

        own0, cpu0, ng0 = cpu_seconds(os.getpid()), cpu_seconds(proc.pid), tree_cpu_seconds(nginx_pid)
        hg0 = cpu_seconds(hang_pid) if hang_pid else 0.0
        schedule = schedule_of(base)
        text0, t0 = take()
        first_seen = {name: max(s) for name, s in runs.items()}  # runs before the window are not counted
        spy = profile_with_py_spy(proc.pid, args.window, args.profile.with_name(f"{args.profile.name}-{scenario}.txt")) \
            if args.profile else None
        end = t0 + args.window
        while True:
            left = end - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(args.scrape_every, left))
            if end - time.monotonic() > 0.5:
                take()
        text1, t1 = take()
        own1, cpu1, ng1 = cpu_seconds(os.getpid()), cpu_seconds(proc.pid), tree_cpu_seconds(nginx_pid)
        hg1 = cpu_seconds(hang_pid) if hang_pid else 0.0
        rss, hwm = rss_mib(proc.pid)
        if spy is not None:
            spy.wait(60)
        if proc.poll() is not None:
            raise RuntimeError(f"tocsin exited with {proc.returncode}")
    finally:
        procs.stop(proc)

    window = t1 - t0
    s0, s1 = self_metrics(text0), self_metrics(text1)
    c0, c1 = counts_of(text0), counts_of(text1)
    per_target = {name: (c1[name][0] - c0.get(name, [0, 0])[0], c1[name][1] - c0.get(name, [0, 0])[1]) for name in c1}
    expected_each = window / args.interval

    def group(prefix: str) -> dict:
        names = [n for n in per_target if n.startswith(prefix)]
        done = sum(sum(per_target[n]) for n in names)
        per = [sum(per_target[n]) for n in names]
        return {"targets": len(names), "probes": int(done), "expected": round(len(names) * expected_each, 1),
                "done_over_expected": round(done / (len(names) * expected_each), 4) if names else None,
                "failures": int(sum(per_target[n][1] for n in names)),
                "targets_short": sum(p < math.floor(expected_each) for p in per),
                "targets_starved": sum(p < math.floor(expected_each) - 1 for p in per),
                "probes_per_target_min": min(per) if per else None}

    in_window = {name: {ts for ts in s if ts > first_seen.get(name, -1.0)} for name, s in runs.items()}
    late = start_lateness({n: sorted(s) for n, s in runs.items()}, schedule, args.interval)  # same order as sorted(starts)
    ok_late, hang_late = [], []
    for name, starts in runs.items():
        for ts, d in zip(sorted(starts), late.get(name, []), strict=False):
            if ts in in_window[name]:
                (hang_late if name.startswith("hang-") else ok_late).append(d)

    lat_count = s1.get("tocsin_scheduler_lateness_seconds_count", 0) - s0.get("tocsin_scheduler_lateness_seconds_count", 0)
    lat_sum = s1.get("tocsin_scheduler_lateness_seconds_sum", 0) - s0.get("tocsin_scheduler_lateness_seconds_sum", 0)
    out.update({
        "window_s": round(window, 2),
        "lateness_histogram": {
            "count": int(lat_count), "mean_ms": round(1000 * lat_sum / lat_count, 2) if lat_count else None,
            "p50_ms": round(1000 * histogram_quantile(0.5, s0["lateness_buckets"], s1["lateness_buckets"]), 2),
            "p99_ms": round(1000 * histogram_quantile(0.99, s0["lateness_buckets"], s1["lateness_buckets"]), 2),
            "cumulative_share": bucket_shares(s0["lateness_buckets"], s1["lateness_buckets"])},
        "start_lateness_healthy": quantiles(ok_late),
        "start_lateness_hanging": quantiles(hang_late),
        "missed_runs": int(s1.get("tocsin_scheduler_missed_runs_total", 0) - s0.get("tocsin_scheduler_missed_runs_total", 0)),
        "skipped_runs": int(s1.get("tocsin_scheduler_skipped_runs_total", 0) - s0.get("tocsin_scheduler_skipped_runs_total", 0)),
        "all": group(""), "healthy": group("ok-"), "hanging": group("hang-") if scenario == "hang" else None,
        "in_flight_at_scrapes": in_flight,
        "failure_reasons": failure_reasons(text0, text1),
        "rss_mib": round(rss, 1), "hwm_mib": round(hwm, 1),
        "tocsin_cpu_percent": round(100 * (cpu1 - cpu0) / window, 1),
        "nginx_cpu_percent": round(100 * (ng1 - ng0) / window, 1),
        "hang_server_cpu_percent": round(100 * (hg1 - hg0) / window, 1) if hang_pid else None,
        "bench_cpu_percent": round(100 * (own1 - own0) / window, 1),
        "scrapes": len(scrape_walls), "scrape_wall_s": {"median": statistics.median(scrape_walls), "max": max(scrape_walls)},
        "loadavg_at_end": loadavg(),
    })
    if scenario == "hang":
        out["hang_server"] = hang_stats(workdir)
    out["meets"] = {
        "lateness_p99": out["lateness_histogram"]["p99_ms"] <= GOALS["lateness_p99_s"] * 1000,
        "missed": out["missed_runs"] == 0 and out["skipped_runs"] == 0 and out["healthy"]["targets_starved"] == 0
        and out["healthy"]["done_over_expected"] >= 0.98,
        "healthy_failures": out["healthy"]["failures"] == 0,
        "rss": hwm <= GOALS["rss_mib"],
    }
    return out


def print_scenario(r: dict) -> None:
    h, lh = r["healthy"], r["lateness_histogram"]
    print(f"\n[{r['scenario']}] {r['targets']} targets ({r['hanging_targets']} hanging), window {r['window_s']}s; "
          f"ready after {r['spawn_to_ready_s']}s, all probed {r['ready_to_all_probed_s']}s later")
    print(f"  lateness histogram: p50 {lh['p50_ms']} ms, p99 {lh['p99_ms']} ms, mean {lh['mean_ms']} ms "
          f"over {lh['count']} runs (goal p99 <= 250 ms)")
    for key in ("start_lateness_healthy", "start_lateness_hanging"):
        if r[key]:
            q = r[key]
            print(f"  {key}: p50 {q['p50_ms']} p99 {q['p99_ms']} p99.9 {q['p999_ms']} max {q['max_ms']} ms "
                  f"(n {q['n']}, {q['over_250ms']} over 250 ms)")
    print(f"  missed {r['missed_runs']}, skipped {r['skipped_runs']}; healthy probes {h['probes']}/{h['expected']} "
          f"({h['done_over_expected']}), short {h['targets_short']}, starved {h['targets_starved']}, failures {h['failures']}")
    if r.get("hanging"):
        g = r["hanging"]
        print(f"  hanging probes {g['probes']}/{g['expected']}, failures {g['failures']}; listener {r.get('hang_server')}")
    print(f"  failure reasons {r['failure_reasons']}; in flight at scrapes {r['in_flight_at_scrapes']}; "
          f"settled {r['settled']} after {r['settle_s']}s")
    print(f"  RSS {r['rss_mib']} MiB (peak {r['hwm_mib']}; goal <= 400); CPU tocsin {r['tocsin_cpu_percent']} %, "
          f"nginx {r['nginx_cpu_percent']} %, bench {r['bench_cpu_percent']} %; scrapes {r['scrapes']} "
          f"(wall median {r['scrape_wall_s']['median']} s, max {r['scrape_wall_s']['max']} s); load {r['loadavg_at_end']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--hang-share", type=float, default=0.1, help="share of hanging targets in the hang scenario")
    parser.add_argument("--scenarios", default="healthy,hang")
    parser.add_argument("--nginx-workers", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds after every target was probed once")
    parser.add_argument("--settle-max", type=float, default=40.0,
                        help="longest wait for in-flight probes to come down after the first round")
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--scrape-every", type=float, default=7.5, help="seconds between /metrics scrapes in the window")
    parser.add_argument("--rounds", type=int, default=1, help=argparse.SUPPRESS)  # accepted for bench/run_all.py
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--profile", type=Path, metavar="PREFIX",
                        help="py-spy tocsin during each window into PREFIX-<scenario>.txt (not benchmark results)")
    args = parser.parse_args(argv)
    if args.scrape_every >= args.interval:
        parser.error("--scrape-every must be shorter than the interval (each run must be seen)")

    procs, workdir = new_run("p3")
    summary: dict = {"benchmark": "P3", "unit": "scheduling at scale", "goals": GOALS,
                     "params": {k: v for k, v in vars(args).items() if k not in ("json", "profile", "keep")},
                     "machine": machine(), "scenarios": {}}
    try:
        ok_url, nginx = start_nginx(procs, workdir, args.nginx_workers)
        hang_url, hang = (start_hang_server(procs, workdir) if "hang" in args.scenarios else (None, None))
        for scenario in args.scenarios.split(","):
            r = run_scenario(procs, workdir, scenario, ok_url, hang_url, nginx.pid, hang.pid if hang else None, args)
            summary["scenarios"][scenario] = r
            print_scenario(r)
    finally:
        procs.stop_all()
        remove_workdir(workdir, args.keep, "P3")
    sc = summary["scenarios"]
    figures = []
    for name, r in sc.items():
        figures += [
            {"figure": f"{name}: lateness p99 (histogram)", "value": r["lateness_histogram"]["p99_ms"], "unit": "ms",
             "goal": "<= 250", "met": r["meets"]["lateness_p99"]},
            {"figure": f"{name}: healthy start lateness p99 (per target)", "value": r["start_lateness_healthy"].get("p99_ms"),
             "unit": "ms", "goal": "<= 250", "met": (r["start_lateness_healthy"].get("p99_ms") or 0) <= 250},
            {"figure": f"{name}: missed+skipped runs; healthy done/expected", "unit": "",
             "value": f"{r['missed_runs']}+{r['skipped_runs']}; {r['healthy']['done_over_expected']}",
             "goal": "0; 1.0", "met": r["meets"]["missed"]},
            {"figure": f"{name}: healthy failures", "value": r["healthy"]["failures"], "unit": "", "goal": "0",
             "met": r["meets"]["healthy_failures"]},
            {"figure": f"{name}: RSS peak", "value": r["hwm_mib"], "unit": "MiB", "goal": "<= 400", "met": r["meets"]["rss"]},
        ]
    summary["figures"] = figures
    summary["meets_goal"] = all(f["met"] for f in figures)
    summary["correct"] = all(r["all"]["probes"] > 0 for r in sc.values())
    write_json(args.json, summary)
    return 0 if summary["correct"] else 1


if __name__ == "__main__":
    sys.exit(main())
