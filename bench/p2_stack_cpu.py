#!/usr/bin/env python3
"""P2: total CPU of tocsin vs the anchor stack doing the same monitoring job.

The same N HTTP targets probed every I seconds, the same alert rules evaluated every E
seconds, the same routing to one webhook receiver, both running at the same time over the
same windows (so load from anything else on the machine hits both alike):

  tocsin   `tocsin run`: N targets at interval I, the shipped rule file
           (etc/rules/tocsin.yml) unchanged, evaluation_interval E, route group_by
           [alertname, target], group_wait 10s, group_interval 1m, one webhook receiver.
  anchor   blackbox_exporter (http_2xx module) + Prometheus 2.42 scraping
           /probe?target=<url> once per target every I (the standard relabelling set-up),
           evaluating the shipped rule file every E -- with the two rules that read
           tocsin_* counters rewritten over blackbox's series, same meaning
           (anchor_stack.STACK_EXPR) -- and sending to Alertmanager (same route, same
           timers), which posts to its own webhook sink.

D of the N targets answer 503, so TargetDown (for: 1m) fires on both sides during the
warm-up; each side's webhook sink must have received the firing notifications before the
windows start. The windows therefore measure the steady state of a monitoring set-up with
some alerts firing: probing, storing, evaluating, re-sending firing alerts.

CPU is utime+stime from /proc/<pid>/stat: tocsin's one process vs the sum of blackbox_exporter,
Prometheus and Alertmanager. RSS (VmRSS) of each at the end of each window. Probes per
window are counted from nginx's access log by User-Agent (tocsin/... vs Blackbox ...).
The webhook sinks, nginx and this script are not counted.

    python bench/p2_stack_cpu.py [--targets 200] [--interval 5] [--evaluation-interval 15]
                                 [--down 5] [--warmup 100] [--rounds 3] [--window 40] [--json FILE]
                                 [--profile FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import anchor_stack  # noqa: E402
import common as cm  # noqa: E402

GOAL = 0.3  # tocsin's CPU must be at most this fraction of the anchor stack's

# /down answers 503: its targets make TargetDown fire on both sides.
LOCATIONS = """location = /health { default_type application/json; return 200 '{"status": "ok"}\\n'; }
        location = /down { default_type application/json; return 503 '{"status": "down"}\\n'; }"""


def start_nginx(procs: cm.Processes, workdir: Path) -> tuple[str, Path]:
    """nginx with /health and /down, logging each request's status and User-Agent; returns (base url, access log)."""
    log = workdir / "nginx" / "access.log"
    url, _ = cm.start_nginx(procs, workdir, connections=4096, rlimit_nofile=None, ready_timeout=10,
                            access_log=f"log_format p2 '$status \"$http_user_agent\"';\n    access_log {log} p2;",
                            locations=LOCATIONS)
    return url.removesuffix("/health"), log


def count_requests(access_log: Path, start: int, end: int) -> dict[str, dict[str, int]]:
    """Requests per prober in the log slice [start, end): {side: {"ok": n, "down": n}}."""
    with open(access_log, "rb") as f:
        f.seek(start)
        data = f.read(end - start).decode("latin-1")
    out = {"tocsin": {"ok": 0, "down": 0}, "anchor": {"ok": 0, "down": 0}, "other": {"ok": 0, "down": 0}}
    for line in data.splitlines():
        m = re.match(r'(\d+) "(.*)"$', line)
        if not m:
            continue
        side = "tocsin" if m.group(2).startswith("tocsin") else "anchor" if m.group(2).startswith("Blackbox") else "other"
        out[side]["ok" if m.group(1) == "200" else "down"] += 1
    return out


def alert_list(doc) -> list[dict]:
    """The alerts in an /api/v1/alerts answer (a list, or wrapped in data/alerts)."""
    if isinstance(doc, list):
        return [a for a in doc if isinstance(a, dict) and "labels" in a]
    if isinstance(doc, dict):
        for key in ("data", "alerts"):
            if key in doc:
                return alert_list(doc[key])
    return []


def profile(pid: int, seconds: float, out: Path) -> None:
    """py-spy (collapsed stacks, 100 Hz) of tocsin for one window; that window's CPU figures are not results."""
    cm.profile_with_py_spy(pid, seconds, out).wait(seconds + 30)


def snapshot(pids: dict[str, int]) -> dict[str, tuple[float, float]]:
    return {name: cm.cpu_times(pid) for name, pid in pids.items()}


def run(args, workdir: Path, procs: cm.Processes) -> dict:
    log = lambda msg: print(f"  [{time.monotonic() - t_start:6.1f}s] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    t_start = time.monotonic()
    base, access_log = start_nginx(procs, workdir)
    names = [f"p2-{i:04d}" for i in range(args.targets)]
    targets = [(n, base + ("/down" if i < args.down else "/health")) for i, n in enumerate(names)]
    down_names = names[:args.down]

    tocsin_sink, anchor_sink = cm.WebhookSink(), cm.WebhookSink()
    try:
        # tocsin: the shipped rule file itself
        tdir = workdir / "tocsin"
        tdir.mkdir()
        tport = cm.free_port()
        cm.write_tocsin_config(tdir / "tocsin.yml", tport, targets, args.interval, args.timeout,
                               args.evaluation_interval, anchor_stack.SHIPPED_RULES, tocsin_sink.url, group_wait=10)
        tocsin = procs.start([*cm.tocsin_argv(), "run", "--config", str(tdir / "tocsin.yml")], tdir / "tocsin.log",
                             cwd=tdir, env=cm.tocsin_env())
        # anchor: the shipped file with the tocsin_* expressions rewritten over blackbox's series
        adir = workdir / "anchor"
        adir.mkdir()
        rewritten = anchor_stack.write_stack_rules(adir / "rules.yml")
        stack = anchor_stack.AnchorStack(procs, adir, targets, adir / "rules.yml", anchor_sink.url,
                               probe_timeout=args.timeout, scrape_interval=args.interval,
                               evaluation_interval=args.evaluation_interval, group_wait=10)
        tbase = f"http://127.0.0.1:{tport}"
        cm.wait_until(lambda: cm.http_get(tbase + "/-/ready", 1)[0] == 200, 30, "tocsin", tocsin)
        stack.wait_ready()
        log(f"tocsin and the anchor stack are up; warm-up {args.warmup:g}s (TargetDown has for: 1m)")
        time.sleep(args.warmup)
        fired = {side: sorted({a["labels"]["target"] for _, p in sink.firing("TargetDown") for a in p["alerts"]
                               if a["status"] == "firing"})
                 for side, sink in (("tocsin", tocsin_sink), ("anchor", anchor_sink))}
        log(f"TargetDown notified before the windows: tocsin {len(fired['tocsin'])}, anchor {len(fired['anchor'])}"
            f" of {args.down}")

        pids = {"tocsin": tocsin.pid, **{n: p.pid for n, p in stack.named.items()}}
        windows = []
        for index in range(1, args.rounds + 1):
            c0, t0, l0 = snapshot(pids), time.monotonic(), access_log.stat().st_size
            n_sink0 = (len(tocsin_sink.received), len(anchor_sink.received))
            if args.profile and index == 1:
                profile(tocsin.pid, args.window, args.profile)
            else:
                time.sleep(args.window)
            c1, t1, l1 = snapshot(pids), time.monotonic(), access_log.stat().st_size
            for name, proc in (("tocsin", tocsin), *stack.named.items()):
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}")
            rss = {name: cm.rss_mib(pid) for name, pid in pids.items()}
            reqs = count_requests(access_log, l0, l1)
            seconds = t1 - t0
            per = {name: {"user_s": round(c1[name][0] - c0[name][0], 3), "system_s": round(c1[name][1] - c0[name][1], 3),
                          "rss_mib": round(rss[name][0], 1), "hwm_mib": round(rss[name][1], 1)}
                   for name in pids}
            for v in per.values():
                v["cpu_s"] = round(v["user_s"] + v["system_s"], 3)
            tocsin_cpu = per["tocsin"]["cpu_s"]
            anchor_cpu = round(sum(per[n]["cpu_s"] for n in stack.named), 3)
            w = {"round": index, "window_s": round(seconds, 3), "processes": per,
                 "tocsin_cpu_s": tocsin_cpu, "anchor_cpu_s": anchor_cpu,
                 "tocsin_cpu_percent": round(100 * tocsin_cpu / seconds, 2),
                 "anchor_cpu_percent": round(100 * anchor_cpu / seconds, 2),
                 "tocsin_rss_mib": per["tocsin"]["rss_mib"],
                 "anchor_rss_mib": round(sum(per[n]["rss_mib"] for n in stack.named), 1),
                 "probes": {side: reqs[side]["ok"] + reqs[side]["down"] for side in ("tocsin", "anchor")},
                 "probes_down": {side: reqs[side]["down"] for side in ("tocsin", "anchor")},
                 "notifications": {"tocsin": len(tocsin_sink.received) - n_sink0[0],
                                   "anchor": len(anchor_sink.received) - n_sink0[1]},
                 "ratio": round(tocsin_cpu / anchor_cpu, 3) if anchor_cpu else None}
            for side in ("tocsin", "anchor"):
                w[f"{side}_cpu_per_1000"] = round(w[f"{side}_cpu_s"] / max(w["probes"][side], 1) * 1000, 4)
            windows.append(w)
            log(f"window {index}: tocsin {tocsin_cpu}s ({w['probes']['tocsin']} probes), anchor {anchor_cpu}s "
                f"(bb {per['blackbox_exporter']['cpu_s']}, prom {per['prometheus']['cpu_s']}, "
                f"am {per['alertmanager']['cpu_s']}; {w['probes']['anchor']} probes) -> ratio {w['ratio']}")

        # what is firing now, on each side
        status, body = cm.http_get(tbase + "/api/v1/alerts", 5.0)
        items = alert_list(json.loads(body)) if status == 200 else []
        tocsin_firing = sorted(f"{a.get('labels', {}).get('alertname')}/{a.get('labels', {}).get('target')}"
                               for a in items if "firing" in json.dumps(a.get("state", a.get("status", ""))))
        anchor_firing = sorted(f"{r['metric'].get('alertname')}/{r['metric'].get('target')}"
                               for r in stack.query('ALERTS{alertstate="firing"}'))
        sinks = {side: sorted({a["labels"]["target"] for _, p in sink.firing("TargetDown") for a in p["alerts"]
                               if a["status"] == "firing"})
                 for side, sink in (("tocsin", tocsin_sink), ("anchor", anchor_sink))}
    finally:
        tocsin_sink.close()
        anchor_sink.close()

    return {"windows": windows, "rewritten_rules": rewritten, "down_targets": down_names,
            "notified_before_windows": fired, "notified_total": sinks,
            "firing_at_end": {"tocsin": tocsin_firing, "anchor": anchor_firing}}


def summarise(result: dict, args) -> dict:
    ws = result["windows"]
    med = lambda key: round(statistics.median(w[key] for w in ws), 4)  # noqa: E731
    ratio = med("tocsin_cpu_s") / med("anchor_cpu_s") if med("anchor_cpu_s") else float("nan")
    per_process = {name: {"cpu_s_median": round(statistics.median(w["processes"][name]["cpu_s"] for w in ws), 3),
                          "rss_mib_median": round(statistics.median(w["processes"][name]["rss_mib"] for w in ws), 1),
                          "hwm_mib_max": max(w["processes"][name]["hwm_mib"] for w in ws)}
                   for name in ws[0]["processes"]}
    want = set(result["down_targets"])
    correct = all(set(result["notified_total"][side]) == want for side in ("tocsin", "anchor"))
    out = {
        "benchmark": "P2", "unit": "CPU seconds per window, tocsin vs blackbox+prometheus+alertmanager",
        "goal_ratio": GOAL,
        "params": {"targets": args.targets, "interval_s": args.interval, "timeout_s": args.timeout,
                   "evaluation_interval_s": args.evaluation_interval, "down_targets": args.down,
                   "warmup_s": args.warmup, "rounds": args.rounds, "window_s": args.window,
                   "probes_per_s": round(args.targets / args.interval, 2),
                   "route": {"group_by": ["alertname", "target"], "group_wait": "10s", "group_interval": "1m",
                             "repeat_interval": "4h"},
                   "rules_rewritten_for_anchor": result["rewritten_rules"]},
        "machine": anchor_stack.machine(),
        **{k: v for k, v in result.items() if k != "windows"},
        "windows": ws,
        "tocsin": {"cpu_s_median": med("tocsin_cpu_s"), "cpu_percent_median": med("tocsin_cpu_percent"),
                   "cpu_per_1000_median": med("tocsin_cpu_per_1000"), "rss_mib_median": med("tocsin_rss_mib")},
        "anchor": {"cpu_s_median": med("anchor_cpu_s"), "cpu_percent_median": med("anchor_cpu_percent"),
                   "cpu_per_1000_median": med("anchor_cpu_per_1000"), "rss_mib_median": med("anchor_rss_mib")},
        "per_process": per_process,
        "ratio": round(ratio, 3), "ratio_rounds": [w["ratio"] for w in ws],
        "meets_goal": ratio <= GOAL, "correct": correct,
    }
    out["table"] = {"tocsin": f"{out['tocsin']['cpu_percent_median']}%", "anchor": f"{out['anchor']['cpu_percent_median']}%",
                    "what": "CPU % of one core (median window)"}
    return out


def print_table(s: dict) -> None:
    p = s["params"]
    print(f"\nP2: {p['targets']} targets every {p['interval_s']:g}s ({p['down_targets']} down), rules every "
          f"{p['evaluation_interval_s']:g}s, {p['window_s']:g}s windows after {p['warmup_s']:g}s warm-up")
    print(f"{'win':>3} {'tocsin s':>8} {'anchor s':>8} {'bb s':>6} {'prom s':>6} {'am s':>6} {'ratio':>6} "
          f"{'t probes':>8} {'a probes':>8} {'t RSS':>6} {'bb RSS':>6} {'prom RSS':>8} {'am RSS':>6}")
    for w in s["windows"]:
        pr = w["processes"]
        print(f"{w['round']:>3} {w['tocsin_cpu_s']:>8} {w['anchor_cpu_s']:>8} {pr['blackbox_exporter']['cpu_s']:>6} "
              f"{pr['prometheus']['cpu_s']:>6} {pr['alertmanager']['cpu_s']:>6} {w['ratio']:>6} "
              f"{w['probes']['tocsin']:>8} {w['probes']['anchor']:>8} {pr['tocsin']['rss_mib']:>6} "
              f"{pr['blackbox_exporter']['rss_mib']:>6} {pr['prometheus']['rss_mib']:>8} {pr['alertmanager']['rss_mib']:>6}")
    print(f"median: tocsin {s['tocsin']['cpu_percent_median']}% of a CPU, RSS {s['tocsin']['rss_mib_median']} MiB; "
          f"anchor {s['anchor']['cpu_percent_median']}%, RSS {s['anchor']['rss_mib_median']} MiB")
    print(f"ratio tocsin/anchor: {s['ratio']} (per window {s['ratio_rounds']}); goal <= {GOAL}: "
          f"{'met' if s['meets_goal'] else 'NOT met'}; TargetDown notified on both sides for every down target: "
          f"{'yes' if s['correct'] else 'NO'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=200)
    parser.add_argument("--interval", type=float, default=5.0, help="probe / scrape interval, seconds")
    parser.add_argument("--timeout", type=float, default=4.0, help="probe timeout (and scrape_timeout), seconds")
    parser.add_argument("--evaluation-interval", type=float, default=15.0, help="rule evaluation interval, seconds")
    parser.add_argument("--down", type=int, default=5, help="targets that answer 503")
    parser.add_argument("--warmup", type=float, default=100.0, help="seconds before the first window (alerts fire)")
    parser.add_argument("--rounds", type=int, default=3, help="consecutive windows")
    parser.add_argument("--window", type=float, default=40.0, help="seconds per window")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (configs, logs)")
    parser.add_argument("--tocsin-rev", metavar="REV",
                        help="run tocsin from this commit's src/ (git archive) instead of the working tree")
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="py-spy tocsin during window 1 into FILE (collapsed stacks; pip install py-spy)")
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        print(f"P2: ignoring {unknown}", file=sys.stderr)
    for exe in (cm.NGINX, *anchor_stack.ANCHOR_BINARIES):
        if not Path(exe).exists():
            print(f"P2: {exe} is not installed", file=sys.stderr)
            return 2
    procs, workdir = cm.new_run("p2", stop_timeout=10.0)
    if args.tocsin_rev:
        print(f"P2: tocsin from commit {cm.use_tocsin_rev(args.tocsin_rev, workdir / 'tocsin-src')}",
              file=sys.stderr)
    try:
        result = run(args, workdir, procs)
    finally:
        procs.stop_all()
        cm.remove_workdir(workdir, args.keep, "P2")
    summary = summarise(result, args)
    print_table(summary)
    cm.write_json(args.json, summary)
    return 0 if summary["correct"] else 1


if __name__ == "__main__":
    sys.exit(main())
