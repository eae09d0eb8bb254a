#!/usr/bin/env python3
"""P7: start to READY, and reload, with 10 000 targets, timed on a real notify socket.

The script binds an AF_UNIX datagram socket and gives it to `tocsin run` as NOTIFY_SOCKET,
as systemd does for a Type=notify service; times are taken when the datagrams arrive.

  start   from just before the process is spawned to READY=1 (interpreter start, imports,
          loading and validating the configuration, building the jobs and metrics, binding
          the listener). Each round is a fresh process.
  reload  with the daemon running (probing every target every --interval s), one target is
          appended to the configuration file and SIGHUP sent: RELOADING=1 -> READY=1, and
          SIGHUP -> READY=1. Then the state is checked: the added target exists, every
          unchanged target kept its tocsin_probes_total counters (none went down) and its
          schedule (next run before and after the reload, from /api/v1/targets, differ by a
          whole number of intervals).

    python bench/p7_startup.py [--targets 10000] [--rounds 3] [--reloads 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    NotifySocket,
    children,
    free_port,
    http_get,
    loadavg,
    machine,
    new_run,
    probe_counts,
    profile_with_py_spy,
    py_spy,
    remove_workdir,
    rss_mib,
    scrape,
    start_nginx,
    tocsin_argv,
    tocsin_config,
    wait_until,
    write_json,
)

GOAL_START_S = 2.0
GOAL_RELOAD_S = 1.0


def next_runs(base: str) -> dict[str, float]:
    status, body = http_get(base + "/api/v1/targets", 60)
    if status != 200:
        raise RuntimeError(f"/api/v1/targets answered {status}")
    return {t["name"]: datetime.fromisoformat(t["next_run"]).timestamp()
            for t in json.loads(body)["data"] if t.get("next_run")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3, help="fresh starts")
    parser.add_argument("--reloads", type=int, default=2, help="reloads per start")
    parser.add_argument("--window", type=float, help=argparse.SUPPRESS)  # accepted for bench/run_all.py
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--profile", type=Path, metavar="PREFIX",
                        help="py-spy the first start (PREFIX-start.txt) and its first reload (PREFIX-reload.txt); "
                             "a profiled run's times are not benchmark results")
    args = parser.parse_args(argv)

    procs, workdir = new_run("p7")
    notify = NotifySocket(workdir)
    summary: dict = {"benchmark": "P7", "unit": "seconds", "goal_start_s": GOAL_START_S, "goal_reload_s": GOAL_RELOAD_S,
                     "params": {k: v for k, v in vars(args).items() if k not in ("json", "profile", "keep", "window")},
                     "machine": machine()}
    starts, reloads = [], []
    try:
        url, _nginx = start_nginx(procs, workdir)
        for index in range(1, args.rounds + 1):
            rdir = workdir / f"round-{index}"
            rdir.mkdir()
            port = free_port()
            targets = [(f"t{i:05d}", url) for i in range(args.targets)]
            cfg = rdir / "tocsin.yml"
            tocsin_config(cfg, port, targets, args.interval, min(5.0, args.interval), rdir / "state")
            base = f"http://127.0.0.1:{port}"
            argv_ = [*tocsin_argv(), "run", "--config", str(cfg)]
            profiling = args.profile is not None and index == 1
            if profiling:
                args.profile.parent.mkdir(parents=True, exist_ok=True)
                argv_ = [py_spy(), "record", "--rate", "250", "--format", "raw", "-o",
                         f"{args.profile}-start.txt", "--", *argv_]
            notify.drain()
            t_spawn = time.monotonic()
            proc = procs.start(argv_, rdir / "tocsin.log", cwd=rdir, env=notify.env())
            t_ready, _ = notify.wait_for("READY=1", 120, proc)
            pid = proc.pid
            if profiling:  # py-spy launched tocsin; signal tocsin itself, and stop py-spy's recording
                pid = children(proc.pid)[0]
                os.kill(pid, signal.SIGTERM)
                proc.wait(60)
                notify.drain()
                t_spawn = None
            else:
                starts.append({"round": index, "spawn_to_ready_s": round(t_ready - t_spawn, 3)})
                print(f"  start {index}: READY=1 after {t_ready - t_spawn:.3f}s", file=sys.stderr, flush=True)
            if profiling:  # a fresh, unprofiled process for the reloads of this round
                notify.drain()
                t_spawn = time.monotonic()
                proc = procs.start([*tocsin_argv(), "run", "--config", str(cfg)], rdir / "tocsin-2.log", cwd=rdir,
                                   env=notify.env())
                t_ready, _ = notify.wait_for("READY=1", 120, proc)
                pid = proc.pid
                starts.append({"round": index, "spawn_to_ready_s": round(t_ready - t_spawn, 3)})
            try:
                wait_until(lambda base=base: len(probe_counts(scrape(base, 60)[0])) >= args.targets,
                           args.interval + 60, "every target probed once", proc, step=2.0)
                for r in range(1, args.reloads + 1):
                    before_runs = next_runs(base)
                    before = probe_counts(scrape(base, 60)[0])
                    added = f"added-{index}-{r}"
                    with cfg.open("a") as f:
                        f.write(f"  - name: {added}\n    url: {url}\n")
                    notify.drain()
                    spy = None
                    if args.profile is not None and index == 1 and r == 1:
                        spy = profile_with_py_spy(pid, 4, args.profile.with_name(args.profile.name + "-reload.txt"),
                                                  rate=250)
                        time.sleep(1.0)
                    t_hup = time.monotonic()
                    os.kill(pid, signal.SIGHUP)
                    t_reloading, msg = notify.wait_for("RELOADING=1", 60, proc)
                    t_done, _ = notify.wait_for("READY=1", 60, proc)
                    if spy is not None:
                        spy.wait(30)
                    after = probe_counts(scrape(base, 60)[0])
                    after_runs = next_runs(base)
                    went_down = [n for n, c in before.items()
                                 if after.get(n, {"success": -1})["success"] < c["success"]
                                 or after.get(n, {"failure": -1})["failure"] < c["failure"]]
                    moved = []
                    for n, t in before_runs.items():
                        if n in after_runs:
                            k = (after_runs[n] - t) / args.interval
                            if abs(k - round(k)) * args.interval > 0.002:
                                moved.append(n)
                    entry = {"round": index, "reload": r, "reloading_to_ready_s": round(t_done - t_reloading, 3),
                             "sighup_to_ready_s": round(t_done - t_hup, 3),
                             "monotonic_usec_sent": "MONOTONIC_USEC=" in msg,
                             "added_present": added in after_runs, "targets_after": len(after_runs),
                             "counters_reset": len(went_down), "schedules_moved": len(moved),
                             "kept_checked": len(before_runs), "profiled": spy is not None}
                    reloads.append(entry)
                    print(f"  reload {index}.{r}: RELOADING=1 -> READY=1 {entry['reloading_to_ready_s']}s "
                          f"(SIGHUP -> READY=1 {entry['sighup_to_ready_s']}s); counters reset {len(went_down)}, "
                          f"schedules moved {len(moved)}, added present {entry['added_present']}",
                          file=sys.stderr, flush=True)
                    time.sleep(1)
                rss = rss_mib(pid)
            finally:
                procs.stop(proc)
    finally:
        procs.stop_all()
        notify.close()
        remove_workdir(workdir, args.keep, "P7")

    measured = [r for r in reloads if not r["profiled"]] or reloads
    start_med = statistics.median(s["spawn_to_ready_s"] for s in starts)
    reload_med = statistics.median(r["reloading_to_ready_s"] for r in measured)
    hup_med = statistics.median(r["sighup_to_ready_s"] for r in measured)
    state_kept = all(r["counters_reset"] == 0 and r["schedules_moved"] == 0 and r["added_present"] for r in reloads)
    summary.update({"starts": starts, "reloads": reloads, "start_s_median": start_med,
                    "reload_s_median": reload_med, "sighup_to_ready_s_median": hup_med, "state_kept": state_kept,
                    "rss_mib_after_reloads": round(rss[0], 1), "loadavg_at_end": loadavg(),
                    "meets_goal": start_med <= GOAL_START_S and reload_med <= GOAL_RELOAD_S and state_kept,
                    "correct": state_kept})
    summary["figures"] = [
        {"figure": "spawn -> READY=1", "value": start_med, "unit": "s", "goal": "<= 2", "met": start_med <= GOAL_START_S},
        {"figure": "reload RELOADING=1 -> READY=1", "value": reload_med, "unit": "s", "goal": "<= 1",
         "met": reload_med <= GOAL_RELOAD_S},
        {"figure": "reload SIGHUP -> READY=1", "value": hup_med, "unit": "s", "goal": "-", "met": True},
        {"figure": "state kept across reloads", "value": state_kept, "unit": "", "goal": "True", "met": state_kept},
    ]
    print(f"\nP7: {args.targets} targets, interval {args.interval}s")
    print(f"  spawn -> READY=1: median {start_med:.3f}s {[s['spawn_to_ready_s'] for s in starts]}; goal <= {GOAL_START_S}s: "
          f"{'met' if start_med <= GOAL_START_S else 'NOT met'}")
    print(f"  reload RELOADING=1 -> READY=1: median {reload_med:.3f}s {[r['reloading_to_ready_s'] for r in measured]}; "
          f"SIGHUP -> READY=1 median {hup_med:.3f}s; goal <= {GOAL_RELOAD_S}s: "
          f"{'met' if reload_med <= GOAL_RELOAD_S else 'NOT met'}")
    print(f"  state kept (counters, schedules, added target): {state_kept}")
    write_json(args.json, summary)
    return 0 if summary["correct"] else 1


if __name__ == "__main__":
    sys.exit(main())
