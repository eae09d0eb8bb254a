#!/usr/bin/env python3
"""P4: the cost of one `GET /metrics` at 10 000 targets, every target probed once.

A quiet daemon makes the measurement clean: the targets' names are chosen (from tocsin's
own `phase_offset`) so that, at an interval of 1 h, every first run falls in the first
--spread seconds after start. Once every target has been probed (checked on /metrics), no
probe runs for the rest of the hour; what remains is the daemon's idle work (the baseline).

Then, in --rounds rounds: a baseline block (no scrapes, --baseline seconds) and a block of
--scrapes sequential scrapes. Server CPU per scrape = (CPU of the tocsin process over the
scrape block − the baseline's CPU rate × the block's wall time) / scrapes. CPU is
utime+stime from /proc/<pid>/stat (all threads; 10 ms ticks). Also: response size, series,
wall time per scrape (client side).

Reference, in the same run: the same families, label sets and values in a prometheus-client
registry (Gauge/Counter/Histogram objects, _created series off so the series are the same),
rendered by `generate_latest` in this process (CPU time, median of --reference-runs), and
the ratio tocsin / generate_latest. The reference has no HTTP around it; tocsin's figure does.

    python bench/p4_scrape.py [--targets 10000] [--scrapes 10] [--rounds 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    cpu_seconds,
    free_port,
    http_get,
    loadavg,
    machine,
    new_run,
    parse_metrics,
    profile_with_py_spy,
    remove_workdir,
    rss_mib,
    scrape,
    start_nginx,
    tocsin_argv,
    tocsin_config,
    wait_until,
    write_json,
)

GOAL_S = 0.150  # server CPU per scrape
INTERVAL = 3600.0


def quiet_names(count: int, spread: float, interval: float = INTERVAL) -> list[str]:
    """`count` target names whose first run (tocsin's phase_offset) is within `spread` s of start."""
    from tocsin.loop_scheduler import phase_offset

    names: list[str] = []
    i = 0
    while len(names) < count:
        name = f"t{i:08d}"
        if phase_offset(name, interval) < spread:
            names.append(name)
        i += 1
    return names


def per_target(name: str) -> bool:
    """The per-target families (ProbeMetrics), not the daemon's own."""
    return name.startswith(("probe_", "tocsin_probe_", "tocsin_probes_total"))


def reference_cost(text: str, runs: int) -> dict:
    """Rebuild the per-target families in a prometheus-client registry; time generate_latest."""
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

    try:
        from prometheus_client import disable_created_metrics
        disable_created_metrics()
    except ImportError:  # older clients: the env variable
        os.environ["PROMETHEUS_DISABLE_CREATED_SERIES"] = "True"

    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
    families = {n: k for n, k in types.items() if per_target(n)}
    samples: dict[str, list[tuple[dict, float, str]]] = {n: [] for n in families}
    for name, labels, value in parse_metrics(text, tuple(families)):
        for fam, kind in families.items():
            if name == fam or (kind == "histogram" and name in (fam + "_bucket", fam + "_sum", fam + "_count")):
                samples[fam].append((labels, value, name))
                break
    registry = CollectorRegistry(auto_describe=False)
    series = 0
    t0 = time.process_time()
    for fam, kind in families.items():
        rows = samples[fam]
        if not rows:
            continue
        if kind == "histogram":
            buckets = sorted({float(labels["le"]) for labels, _, n in rows if n.endswith("_bucket")} - {float("inf")})
            metric = Histogram(fam, fam, ["target"], buckets=buckets, registry=registry)
            sums = {labels["target"]: v for labels, v, n in rows if n.endswith("_sum")}
            counts = {labels["target"]: v for labels, v, n in rows if n.endswith("_count")}
            for target, count in counts.items():
                child = metric.labels(target)
                for _ in range(int(count)):
                    child.observe(sums[target] / count)
            series += len(rows)
            continue
        labelnames = list(rows[0][0])
        if kind == "counter":
            metric = Counter(fam.removesuffix("_total"), fam, labelnames, registry=registry)
            for labels, value, _ in rows:
                metric.labels(*(labels[k] for k in labelnames)).inc(value)
        else:
            metric = Gauge(fam, fam, labelnames, registry=registry)
            for labels, value, _ in rows:
                metric.labels(*(labels[k] for k in labelnames)).set(value)
        series += len(rows)
    build = time.process_time() - t0
    costs, size = [], 0
    for _ in range(runs):
        t0 = time.process_time()
        size = len(generate_latest(registry))
        costs.append(time.process_time() - t0)
    return {"families": len(families), "series": series, "build_cpu_s": round(build, 3),
            "generate_latest_cpu_s": [round(c, 4) for c in costs], "median_cpu_s": round(statistics.median(costs), 4),
            "bytes": size}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=10_000)
    parser.add_argument("--spread", type=float, default=20.0, help="first runs of all targets within this many seconds")
    parser.add_argument("--scrapes", type=int, default=10, help="sequential scrapes per round")
    parser.add_argument("--baseline", type=float, default=5.0, help="seconds of the no-scrape block per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reference-runs", type=int, default=3)
    parser.add_argument("--window", type=float, help=argparse.SUPPRESS)  # accepted for bench/run_all.py
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="py-spy tocsin during one extra block of scrapes into FILE (not a benchmark result)")
    args = parser.parse_args(argv)

    procs, workdir = new_run("p4")
    summary: dict = {"benchmark": "P4", "unit": "server CPU seconds per GET /metrics", "goal_s": GOAL_S,
                     "params": {k: v for k, v in vars(args).items() if k not in ("json", "profile", "keep", "window")},
                     "machine": machine()}
    try:
        url, _nginx = start_nginx(procs, workdir)
        t = time.monotonic()
        names = quiet_names(args.targets, args.spread)
        summary["name_search_s"] = round(time.monotonic() - t, 1)
        port = free_port()
        cfg = workdir / "tocsin.yml"
        tocsin_config(cfg, port, [(n, url) for n in names], INTERVAL, 5.0, workdir / "state")
        base = f"http://127.0.0.1:{port}"
        proc = procs.start([*tocsin_argv(), "run", "--config", str(cfg)], workdir / "tocsin.log", cwd=workdir)
        wait_until(lambda: http_get(base + "/-/ready", 2)[0] == 200, 120, "tocsin", proc, step=0.1)

        def probed() -> int:
            text, _ = scrape(base, 60)
            return text.count('result="success"}')
        wait_until(lambda: probed() >= args.targets, args.spread + 60, "every target probed once", proc, step=2.0)
        time.sleep(2)  # let the last results land

        rounds = []
        body = b""
        for index in range(1, args.rounds + 1):
            c0, t0 = cpu_seconds(proc.pid), time.monotonic()
            time.sleep(args.baseline)
            c1, t1 = cpu_seconds(proc.pid), time.monotonic()
            walls = []
            for _ in range(args.scrapes):
                s = time.monotonic()
                status, body = http_get(base + "/metrics", 60)
                walls.append(time.monotonic() - s)
                if status != 200:
                    raise RuntimeError(f"/metrics answered {status}")
            c2, t2 = cpu_seconds(proc.pid), time.monotonic()
            idle_rate = (c1 - c0) / (t1 - t0)
            per = ((c2 - c1) - idle_rate * (t2 - t1)) / args.scrapes
            rounds.append({"round": index, "baseline_cpu_percent": round(100 * idle_rate, 2),
                           "block_cpu_s": round(c2 - c1, 3), "block_wall_s": round(t2 - t1, 3),
                           "cpu_per_scrape_s": round(per, 4), "wall_median_s": round(statistics.median(walls), 4),
                           "wall_max_s": round(max(walls), 4)})
            print(f"  round {index}: {per * 1000:.1f} ms CPU per scrape (baseline {100 * idle_rate:.2f} % CPU), "
                  f"wall median {statistics.median(walls) * 1000:.0f} ms", file=sys.stderr, flush=True)
        rss = rss_mib(proc.pid)
        if args.profile:
            spy = profile_with_py_spy(proc.pid, 20, args.profile, rate=250)
            time.sleep(1)
            end = time.monotonic() + 17
            while time.monotonic() < end:
                http_get(base + "/metrics", 60)
            spy.wait(60)
        text = body.decode()
        lines = sum(1 for line in text.splitlines() if line and line[0] != "#")
        probe_text = "\n".join(line for line in text.splitlines()
                                if per_target(line.removeprefix("# TYPE ").removeprefix("# HELP ")))
        # probes still quiet? (nothing scheduled before the hour ends)
        after = text.count('result="success"}')
        procs.stop(proc)
        reference = reference_cost(probe_text, args.reference_runs)
    finally:
        procs.stop_all()
        remove_workdir(workdir, args.keep, "P4")

    med = statistics.median(r["cpu_per_scrape_s"] for r in rounds)
    summary.update({
        "rounds": rounds, "cpu_per_scrape_s_median": round(med, 4),
        "wall_per_scrape_s_median": round(statistics.median(r["wall_median_s"] for r in rounds), 4),
        "response_bytes": len(body), "response_series": lines, "targets_with_results": after,
        "rss_mib": round(rss[0], 1), "hwm_mib": round(rss[1], 1), "loadavg_at_end": loadavg(),
        "reference": reference, "ratio_to_generate_latest": round(med / reference["median_cpu_s"], 3),
        "meets_goal": med <= GOAL_S, "correct": after >= args.targets,
    })
    summary["figures"] = [
        {"figure": "server CPU per scrape", "value": round(med * 1000, 1), "unit": "ms", "goal": "<= 150",
         "met": med <= GOAL_S},
        {"figure": "wall per scrape (client)", "value": round(summary["wall_per_scrape_s_median"] * 1000), "unit": "ms",
         "goal": "-", "met": True},
        {"figure": "response size", "value": round(len(body) / 2**20, 2), "unit": "MiB", "goal": "-", "met": True},
        {"figure": "ratio to prometheus-client generate_latest", "value": summary["ratio_to_generate_latest"], "unit": "",
         "goal": "-", "met": True},
    ]
    print(f"\nP4: GET /metrics at {args.targets} targets (each probed once; quiet daemon)")
    print(f"  server CPU per scrape: median {med * 1000:.1f} ms (rounds {[r['cpu_per_scrape_s'] for r in rounds]}); "
          f"goal <= {GOAL_S * 1000:.0f} ms: {'met' if med <= GOAL_S else 'NOT met'}")
    print(f"  wall per scrape {summary['wall_per_scrape_s_median'] * 1000:.0f} ms; response {len(body)} bytes, "
          f"{lines} series; RSS {summary['rss_mib']} MiB")
    print(f"  prometheus-client generate_latest, same {reference['series']} per-target series: "
          f"{reference['median_cpu_s'] * 1000:.0f} ms CPU ({reference['bytes']} bytes); "
          f"ratio tocsin/generate_latest {summary['ratio_to_generate_latest']}")
    write_json(args.json, summary)
    return 0 if summary["correct"] else 1


if __name__ == "__main__":
    sys.exit(main())
