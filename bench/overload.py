#!/usr/bin/env python3
"""Overload: 500 healthy targets at 1 s while two busy loops take the machine's cores.

tests/test_overload.py asks the same question with 150 targets and every `for:` cut to 1 s
so that it fits in the suite; this run is the operator's version at full size and with the
shipped rules unchanged (etc/rules/tocsin.yml: TargetDown waits 1 min, TocsinOverloaded 2 min),
so a window of a few minutes is needed for either kind of alert to get through its `for:`.

The world (all on loopback):
  targets  --targets HTTP targets at --interval (timeout --timeout) on one nginx serving
           /health; every one of them answers at once during the whole run.
  rules    the shipped rules; alerts go to a webhook sink (group_wait 5 s, one group per
           alert and target).
  load     once every target is up, --busy `while True: pass` processes for --window
           seconds; tocsin at nice --nice (0: the same priority as the loops, as on a machine
           whose cores are busy with other work), then --tail seconds without the loops.

The report: alerts fired (the daemon's `alert firing:` log lines and the webhook's firing
notifications) by name, and which of them carry a target label (every target is healthy, so
each of those is a false page); probes succeeded, failed, inconclusive during the window;
event-loop lag p50/p99 (tocsin_event_loop_lag_seconds) and scheduler lateness p50/p99
(tocsin_scheduler_lateness_seconds) over the window; skipped and missed runs; the load average
sampled through the window. Code from before the overload judgement has no lag histogram and
no inconclusive counter: those read as absent.

    python bench/overload.py [--window 300] [--targets 500] [--rev 4cade43] [--json out.json] [--keep]

Exit status 0 when no alert fired for a healthy target and TocsinOverloaded fired.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as cm  # noqa: E402

LAG = "tocsin_event_loop_lag_seconds"
LATENESS = "tocsin_scheduler_lateness_seconds"
COUNTERS = ("tocsin_probes_total", "tocsin_probes_inconclusive_total", "tocsin_scheduler_skipped_runs_total",
            "tocsin_scheduler_missed_runs_total")
_FIRING = re.compile(r"alert firing: (\w+) (\{[^}]*\})?")


def log(msg: str) -> None:
    print(f"[overload {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def readings(base: str) -> dict:
    """The counters (summed over labels, probes by result) and the two histograms' buckets."""
    text, _ = cm.scrape(base, timeout=60)
    out: dict = {"buckets": {LAG: {}, LATENESS: {}}, "probes": Counter(), "counters": Counter()}
    for name, labels, value in cm.parse_metrics(text, (LAG, LATENESS, *COUNTERS)):
        if name == "tocsin_probes_total":
            out["probes"][labels.get("result", "?")] += value
        elif name in COUNTERS:
            out["counters"][name] += value
        elif name.endswith("_bucket") and name[: -len("_bucket")] in out["buckets"]:
            le = float(labels["le"])
            family = out["buckets"][name[: -len("_bucket")]]
            family[le] = family.get(le, 0.0) + value
    return out


def quantiles(before: dict, after: dict, family: str) -> dict | None:
    """p50 and p99 of `family` over the window (the bucket deltas), None when not exported."""
    if not after["buckets"][family]:
        return None
    b, a = before["buckets"][family], after["buckets"][family]
    return {"p50": round(cm.histogram_quantile(0.5, b, a), 4), "p99": round(cm.histogram_quantile(0.99, b, a), 4),
            "samples": a[max(a)] - b.get(max(a), 0.0)}


def fired_in_log(path: Path) -> list[tuple[str, bool]]:
    """(alert name, whether it names a target) for each `alert firing:` line of the daemon's log."""
    out = []
    for m in _FIRING.finditer(path.read_text(errors="replace")):
        out.append((m.group(1), 'target="' in (m.group(2) or "")))
    return out


def fired_at_webhook(sink: cm.WebhookSink) -> list[tuple[str, bool]]:
    out = []
    with sink.changed:
        items = list(sink.received)
    for _, payload in items:
        for alert in payload.get("alerts", []):
            if alert.get("status") == "firing":
                labels = alert.get("labels", {})
                out.append((labels.get("alertname", "?"), "target" in labels))
    return out


def by_name(fired: list[tuple[str, bool]]) -> dict:
    return {"by_name": dict(Counter(name for name, _ in fired)),
            "for_a_target": dict(Counter(name for name, targeted in fired if targeted))}


def lowest_priority(pid: int, nice: int) -> None:
    """Every thread of `pid` at `nice` (threads it starts later inherit it)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.setpriority(os.PRIO_PROCESS, int(task.name), nice)
        except (ProcessLookupError, PermissionError):
            pass


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", type=int, default=500)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--timeout", type=float, default=0.5)
    ap.add_argument("--window", type=float, default=300.0, help="seconds of busy loops")
    ap.add_argument("--busy", type=int, default=2, help="number of busy loops")
    ap.add_argument("--nice", type=int, default=0, help="tocsin's niceness during the window")
    ap.add_argument("--tail", type=float, default=20.0, help="seconds watched after the loops stop")
    ap.add_argument("--rev", help="run tocsin from `git archive REV src`")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()

    procs, workdir = cm.new_run("overload", stop_timeout=30)
    if args.rev:
        cm.use_tocsin_rev(args.rev, workdir / "rev")
    summary: dict = {"benchmark": "overload", "args": {k: str(v) if isinstance(v, Path) else v
                                                       for k, v in vars(args).items()}, "machine": cm.machine()}
    sink = cm.WebhookSink()
    loops: list[subprocess.Popen] = []
    try:
        url, _ = cm.start_nginx(procs, workdir)
        tdir = workdir / "tocsin"
        tdir.mkdir()
        port = cm.free_port()
        base = f"http://127.0.0.1:{port}"
        config = tdir / "tocsin.yml"
        cm.write_tocsin_config(config, port, [(f"web-{i}", f"{url}?t={i}") for i in range(args.targets)],
                               args.interval, args.timeout, args.interval, cm.SHIPPED_RULES, sink.url,
                               group_wait=5.0, group_interval=30.0)
        # info: the rule manager's `alert firing:` lines are the daemon's own account of what fired
        config.write_text(config.read_text().replace("level: warning", "level: info"))
        proc = procs.start([*cm.tocsin_argv(), "run", "--config", str(config)], tdir / "tocsin.log", cwd=tdir,
                           env=cm.tocsin_env())
        cm.wait_until(lambda: cm.http_get(base + "/-/ready", 1)[0] == 200, 120, "tocsin ready", proc, step=0.2)
        cm.wait_until(lambda: readings(base)["probes"]["success"] >= 2 * args.targets, 120, "every target probed",
                      proc, step=1)
        before = readings(base)
        fired_before = len(fired_in_log(tdir / "tocsin.log"))
        if args.nice:
            lowest_priority(proc.pid, args.nice)
        loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
        log(f"{args.targets} targets up; {args.busy} busy loops for {args.window:g}s (load {cm.loadavg()})")
        started = time.monotonic()
        loads: list[float] = []
        while time.monotonic() - started < args.window:
            time.sleep(min(10.0, max(0.0, args.window - (time.monotonic() - started))))
            loads.append(os.getloadavg()[0])
            if proc.poll() is not None:
                raise RuntimeError(f"tocsin exited with {proc.returncode}")
        after = readings(base)
        load_at_end = cm.loadavg()
        for loop in loops:
            loop.kill()
            loop.wait()
        loops = []
        log(f"loops stopped (load {load_at_end}); watching {args.tail:g}s more")
        time.sleep(args.tail)
        in_log = fired_in_log(tdir / "tocsin.log")
        probes = {k: after["probes"][k] - before["probes"][k] for k in ("success", "failure")}
        counters = {k.removeprefix("tocsin_"): after["counters"][k] - before["counters"][k] for k in COUNTERS[1:]}
        webhook = fired_at_webhook(sink)
        summary.update({
            "window_seconds": round(time.monotonic() - started - args.tail, 1),
            "alerts_fired_log": by_name(in_log), "alerts_fired_before_load": fired_before,
            "alerts_notified_webhook": by_name(webhook),
            "false_pages": sorted({n for n, t in in_log + webhook if t}),
            "probes_in_window": {**probes, "inconclusive": counters["probes_inconclusive_total"]
                                 if after["buckets"][LAG] else None},
            "scheduler": {"skipped_runs": counters["scheduler_skipped_runs_total"],
                          "missed_runs": counters["scheduler_missed_runs_total"],
                          "lateness": quantiles(before, after, LATENESS)},
            "event_loop_lag": quantiles(before, after, LAG),
            "loadavg": {"max_1m": round(max(loads), 2) if loads else None, "at_end_of_window": load_at_end},
        })
        cm.write_json(args.json, summary)
        print(json.dumps({k: v for k, v in summary.items() if k != "machine"}, indent=2, default=str))
        overloaded = "TocsinOverloaded" in {n for n, _ in in_log + webhook}
        return 0 if overloaded and not summary["false_pages"] else 1
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
        sink.close()
        procs.stop_all()
        cm.remove_workdir(workdir, args.keep, "overload")


if __name__ == "__main__":
    sys.exit(main())
