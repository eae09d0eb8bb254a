#!/usr/bin/env python3
"""P6: time to notify -- a target's listener closes -> the webhook receives the firing alert.

One HTTP target (a tiny server in this process); it answers until the benchmark closes its
listening socket, after which every probe gets "connection refused" at once. The clock runs
from the moment the listener is closed to the moment the webhook sink (also in this
process) receives the first notification with TargetDown firing for that target. The rule
is the shipped TargetDown (`probe_success == 0`) with `for: F`, the same file on both sides.
Each round starts fresh processes and a fresh state, and closes the listener at a random
phase of the probe schedule (uniform over one interval after the target was first probed).

  tocsin            `tocsin run`, probe interval I, evaluation_interval E, route
                    group_wait G, webhook receiver.  Goal: <= I + F + 1 s.
  anchor-defaults   blackbox_exporter + Prometheus + Alertmanager with their defaults:
                    scrape_interval 1m, evaluation_interval 1m (global defaults),
                    Alertmanager group_wait 30s; same rule, same `for`. One round (it takes
                    minutes), run in the background while the other rounds run; the listener
                    closes at a uniformly random moment of the first minute after Prometheus
                    is ready (so at a random phase of its scrape schedule; the target may or
                    may not have been scraped up before).
                    Goal: tocsin's median <= 0.3 x this.
  anchor-equal      the same stack with tocsin's settings: scrape_interval I,
                    evaluation_interval E, group_wait G (a second comparison: the pipeline,
                    not the defaults).

Each notification's `startsAt` (the time the alert fired, as both tocsin and Prometheus set
it) splits each figure into detection + `for` (down -> fired) and routing + delivery
(fired -> received).

    python bench/p6_time_to_notify.py [--interval 5] [--for 10] [--evaluation-interval 1]
        [--group-wait 0] [--rounds 5] [--anchor-rounds 3] [--no-defaults] [--json FILE]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import anchor_stack  # noqa: E402
import common as cm  # noqa: E402

GOAL_RATIO = 0.3          # tocsin's median vs the anchor stack with its defaults
TARGET = "p6-target"
DEFAULTS = {"scrape_interval_s": 60.0, "evaluation_interval_s": 60.0, "group_wait_s": 30.0}


def parse_ts(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def measure(side: str, index: int, start, stop, target: cm.SwitchableTarget, sink: cm.WebhookSink,
            phase: float, agent: str, timeout: float, wait_first_probe: bool) -> dict:
    """Start a side, close the target's listener at a random phase, time the firing notification."""
    t0 = time.time()
    try:
        start()
        ready = time.time()
        if wait_first_probe:
            cm.wait_until(lambda: any(ua.startswith(agent) for _, ua in target.requests), 60, f"{side}: first probe")
            first = min(t for t, ua in target.requests if ua.startswith(agent))
            wait = random.uniform(0, phase)
            time.sleep(max(0.0, first + wait - time.time()))
        else:
            wait = random.uniform(0, phase)
            time.sleep(max(0.0, ready + wait - time.time()))
        probes_up = [t for t, ua in target.requests if ua.startswith(agent)]
        down = target.down()
        at = sink.wait_firing("TargetDown", TARGET, down, timeout)
    finally:
        stop()
    out = {"side": side, "round": index, "startup_s": round(ready - t0, 2), "phase_wait_s": round(wait, 2),
           "probes_up_before_down": len(probes_up),
           "last_up_probe_before_down_s": round(down - max(probes_up), 3) if probes_up else None,
           "notified": at is not None, "time_to_notify_s": round(at - down, 3) if at is not None else None}
    if at is not None:
        payload = next(p for t, p in sink.firing("TargetDown", TARGET) if t == at)
        alert = next(a for a in payload["alerts"] if a["labels"].get("target") == TARGET)
        fired = parse_ts(alert.get("startsAt"))
        if fired is not None:
            out["down_to_fired_s"] = round(fired - down, 3)
            out["fired_to_received_s"] = round(at - fired, 3)
    print(f"  {side} round {index}: " + (f"{out['time_to_notify_s']:.2f}s" if at is not None else "NOT notified")
          + (f" (down->fired {out.get('down_to_fired_s')}s, fired->received {out.get('fired_to_received_s')}s)"
             if "down_to_fired_s" in out else ""), file=sys.stderr, flush=True)
    return out


def tocsin_round(procs: cm.Processes, workdir: Path, index: int, args) -> dict:
    rdir = workdir / f"tocsin-{index}"
    rdir.mkdir()
    target, sink = cm.SwitchableTarget(), cm.WebhookSink()
    anchor_stack.write_single_rule(rdir / "rules.yml", args.for_)
    port = cm.free_port()
    cm.write_tocsin_config(rdir / "tocsin.yml", port, [(TARGET, target.url)], args.interval, args.timeout,
                           args.evaluation_interval, rdir / "rules.yml", sink.url, group_wait=args.group_wait)
    box: dict = {}

    def start() -> None:
        box["proc"] = proc = procs.start([*cm.tocsin_argv(), "run", "--config", str(rdir / "tocsin.yml")],
                                         rdir / "tocsin.log", cwd=rdir, env=cm.tocsin_env())
        cm.wait_until(lambda: cm.http_get(f"http://127.0.0.1:{port}/-/ready", 1)[0] == 200, 30, "tocsin", proc)

    def stop() -> None:
        if "proc" in box:
            procs.stop(box["proc"])
        target.close()
        sink.close()

    return measure("tocsin", index, start, stop, target, sink, args.interval, "tocsin", args.notify_timeout, True)


def anchor_round(procs: cm.Processes, workdir: Path, side: str, index: int, args, *, scrape: float | None,
                 evaluation: float | None, group_wait: float | None, phase: float, timeout: float,
                 wait_first_probe: bool) -> dict:
    rdir = workdir / f"{side}-{index}"
    rdir.mkdir()
    target, sink = cm.SwitchableTarget(), cm.WebhookSink()
    anchor_stack.write_single_rule(rdir / "rules.yml", args.for_)
    box: dict = {}

    def start() -> None:
        box["stack"] = stack = anchor_stack.AnchorStack(procs, rdir, [(TARGET, target.url)], rdir / "rules.yml", sink.url,
                                              probe_timeout=args.timeout, scrape_interval=scrape,
                                              evaluation_interval=evaluation, group_wait=group_wait)
        stack.wait_ready()

    def stop() -> None:
        if "stack" in box:
            for proc in box["stack"].named.values():
                procs.stop(proc)
        target.close()
        sink.close()

    return measure(side, index, start, stop, target, sink, phase, "Blackbox", timeout, wait_first_probe)


def stats(rounds: list[dict]) -> dict:
    vals = [r["time_to_notify_s"] for r in rounds if r["notified"]]
    if not vals:
        return {"rounds": len(rounds), "notified": 0}
    out = {"rounds": len(rounds), "notified": len(vals), "median_s": round(statistics.median(vals), 3),
           "min_s": min(vals), "max_s": max(vals), "each_s": [r["time_to_notify_s"] for r in rounds]}
    for key in ("down_to_fired_s", "fired_to_received_s"):
        part = [r[key] for r in rounds if key in r]
        if part:
            out[key.replace("_s", "_median_s")] = round(statistics.median(part), 3)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interval", type=float, default=5.0, help="probe interval I, seconds")
    parser.add_argument("--for", dest="for_", type=float, default=10.0, help="the rule's `for` F, seconds")
    parser.add_argument("--evaluation-interval", type=float, default=1.0, help="rule evaluation interval E, seconds")
    parser.add_argument("--group-wait", type=float, default=0.0, help="route group_wait G, seconds")
    parser.add_argument("--timeout", type=float, default=2.0, help="probe timeout, seconds")
    parser.add_argument("--rounds", type=int, default=5, help="tocsin rounds")
    parser.add_argument("--anchor-rounds", type=int, default=3, help="anchor rounds with tocsin's settings")
    parser.add_argument("--no-defaults", action="store_true", help="skip the anchor stack with its defaults")
    parser.add_argument("--notify-timeout", type=float, default=60.0, help="give up on a round after this")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (configs, logs)")
    parser.add_argument("--tocsin-rev", metavar="REV",
                        help="run tocsin from this commit's src/ (git archive) instead of the working tree")
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        print(f"P6: ignoring {unknown}", file=sys.stderr)
    for exe in anchor_stack.ANCHOR_BINARIES:
        if not Path(exe).exists():
            print(f"P6: {exe} is not installed", file=sys.stderr)
            return 2
    if args.seed is not None:
        random.seed(args.seed)
    budget = args.interval + args.for_ + 1.0
    procs, workdir = cm.new_run("p6", stop_timeout=10.0)
    if args.tocsin_rev:
        print(f"P6: tocsin from commit {cm.use_tocsin_rev(args.tocsin_rev, workdir / 'tocsin-src')}",
              file=sys.stderr)
    rounds: list[dict] = []
    defaults_result: list[dict] = []
    defaults_error: list[str] = []

    def run_defaults() -> None:
        # worst case: 60 (phase) + 60 (scrape) + 60 (evaluation) + 60 (`for` < 1m still takes one
        # more evaluation) + 30 (group_wait) + sending
        try:
            defaults_result.append(anchor_round(
                procs, workdir, "anchor-defaults", 1, args, scrape=None, evaluation=None, group_wait=None,
                phase=DEFAULTS["scrape_interval_s"], timeout=4 * 60.0 + 30, wait_first_probe=False))
        except Exception as exc:  # noqa: BLE001 - reported, not fatal for the other rounds
            defaults_error.append(repr(exc))

    thread = None
    try:
        if not args.no_defaults:
            thread = threading.Thread(target=run_defaults, daemon=True)
            thread.start()
        for index in range(1, max(args.rounds, args.anchor_rounds) + 1):
            if index <= args.rounds:
                rounds.append(tocsin_round(procs, workdir, index, args))
            if index <= args.anchor_rounds:
                rounds.append(anchor_round(procs, workdir, "anchor-equal", index, args, scrape=args.interval,
                                           evaluation=args.evaluation_interval, group_wait=args.group_wait,
                                           phase=args.interval, timeout=args.notify_timeout, wait_first_probe=True))
        if thread is not None:
            print("  waiting for the anchor stack with its defaults (minutes)", file=sys.stderr, flush=True)
            thread.join(5 * 60)
    finally:
        procs.stop_all()
        cm.remove_workdir(workdir, args.keep, "P6")
    rounds += defaults_result

    by = {side: stats([r for r in rounds if r["side"] == side]) for side in ("tocsin", "anchor-equal", "anchor-defaults")}
    t = by["tocsin"].get("median_s")
    d = by["anchor-defaults"].get("median_s")
    e = by["anchor-equal"].get("median_s")
    summary = {
        "benchmark": "P6", "unit": "seconds from listener closed to firing notification received",
        "goal_ratio": GOAL_RATIO, "goal_budget_s": budget,
        "params": {"interval_s": args.interval, "for_s": args.for_, "evaluation_interval_s": args.evaluation_interval,
                   "group_wait_s": args.group_wait, "probe_timeout_s": args.timeout, "rounds": args.rounds,
                   "anchor_equal_rounds": args.anchor_rounds, "anchor_defaults": None if args.no_defaults else DEFAULTS},
        "machine": anchor_stack.machine(), "rounds": rounds, **{side.replace("-", "_"): v for side, v in by.items()},
        "defaults_error": defaults_error,
        "meets_budget": t is not None and t <= budget,
        "ratio": round(t / d, 3) if t and d else None,
        "ratio_equal_settings": round(t / e, 3) if t and e else None,
    }
    summary["meets_goal"] = summary["meets_budget"] and (summary["ratio"] is None or summary["ratio"] <= GOAL_RATIO)
    summary["correct"] = all(r["notified"] for r in rounds) and not defaults_error
    summary["table"] = {"tocsin": f"{t}s" if t else "-", "anchor": f"{d}s (defaults)" if d else "-",
                        "what": f"median seconds to notify; budget I+F+1 = {budget:g}s"}

    print(f"\nP6: time to notify, I={args.interval:g}s F={args.for_:g}s E={args.evaluation_interval:g}s "
          f"group_wait={args.group_wait:g}s (budget I+F+1 = {budget:g}s)")
    print(f"{'side':16} {'round':>5} {'notify s':>9} {'down->fired':>11} {'fired->recv':>11} {'up probes':>9} {'phase s':>7}")
    for r in rounds:
        print(f"{r['side']:16} {r['round']:>5} {r['time_to_notify_s']!s:>9} {r.get('down_to_fired_s', '-')!s:>11} "
              f"{r.get('fired_to_received_s', '-')!s:>11} {r['probes_up_before_down']:>9} {r['phase_wait_s']:>7}")
    for side, v in by.items():
        if v.get("notified"):
            print(f"{side:16} median {v['median_s']}s (min {v['min_s']}, max {v['max_s']}, {v['notified']}/{v['rounds']})")
    print(f"tocsin median <= {budget:g}s: {'met' if summary['meets_budget'] else 'NOT met'}; "
          f"ratio vs anchor defaults {summary['ratio']} (goal <= {GOAL_RATIO}); "
          f"vs anchor with equal settings {summary['ratio_equal_settings']}")
    if defaults_error:
        print(f"anchor-defaults failed: {defaults_error}")
    cm.write_json(args.json, summary)
    return 0 if summary["correct"] else 1


if __name__ == "__main__":
    sys.exit(main())
