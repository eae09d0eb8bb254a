#!/usr/bin/env python3
"""Soak: does tocsin's memory and fd count stay flat over a long run with the shipped rules?

N HTTP targets on nginx (loopback), probed every I seconds by `tocsin run` with the shipped
rule file (etc/rules/tocsin.yml, unchanged) and one webhook receiver. Most targets answer
200; a share answer 503 all the time (TargetDown, TargetHighErrorRate fire) and a share
flap: 503 during even minutes of the wall clock, 200 during odd ones (TargetFlapping fires,
TargetDown fires and resolves), so the notification path, the alert state and the ALERTS
series all work during the soak, not only the probes.

Every `--every` seconds it records, for tocsin's process: VmRSS and VmHWM
(/proc/PID/status), open fds (/proc/PID/fd), CPU seconds, and from /metrics the sample
store's size (tocsin_rule_store_series, tocsin_rule_store_samples), plus the machine's load
average (the machine is shared: a busy minute shows there, not in tocsin). The file given
with --json is rewritten after every reading, so a long soak can be read while it runs.

The summary compares RSS, fds and store samples between two minutes (--from, --to; the
defaults fit the one-hour soak: minute 20 to minute 60) and states the store's bound
(see RELIABILITY.md: samples <= sum over series of (retention + margin) * 9/8 / interval).

    python bench/soak.py [--targets 500] [--interval 1] [--minutes 60] [--every 30]
                         [--down 10] [--flapping 10] [--no-rules] [--rev REV]
                         [--from 20] [--to 60] [--json bench/results/soak.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as cm  # noqa: E402

# /down answers 503; /flap answers 503 during even minutes of the wall clock ($time_iso8601
# is "2024-01-01T12:34:56+00:00": the digit before the second colon is the minute's last).
LOCATIONS = r"""location = /health { default_type application/json; return 200 '{"status": "ok"}\n'; }
        location = /down { default_type application/json; return 503 '{"status": "down"}\n'; }
        location = /flap {
            default_type application/json;
            if ($flap_down) { return 503 '{"status": "down"}\n'; }
            return 200 '{"status": "ok"}\n';
        }"""
FLAP_MAP = r"""map $time_iso8601 $flap_down { "~T\d\d:\d[02468]:" 1; default ""; }"""
EMPTY_RULES = "groups: []\n"


def log(msg: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def reading(pid: int, base: str, t0: float) -> dict:
    rss, hwm = cm.rss_mib(pid)
    row = {"minute": round((time.monotonic() - t0) / 60, 3), "rss_mib": round(rss, 2), "hwm_mib": round(hwm, 2),
           "fds": fd_count(pid), "cpu_s": round(cm.cpu_seconds(pid), 2), "loadavg": cm.loadavg()}
    try:
        text, took = cm.scrape(base, timeout=20)
    except (OSError, RuntimeError) as exc:
        row["scrape_error"] = str(exc)
        return row
    wanted = ("tocsin_rule_store_", "tocsin_alerts", "ALERTS{", "tocsin_notifications", "tocsin_scheduler_missed")
    for name, labels, value in cm.parse_metrics(text, wanted):
        if name in ("tocsin_rule_store_series", "tocsin_rule_store_samples", "tocsin_rule_store_array_bytes"):
            row[name.removeprefix("tocsin_rule_")] = value
        elif name == "ALERTS" and labels.get("alertstate") == "firing":
            row["alerts_firing"] = row.get("alerts_firing", 0) + 1
        elif name == "tocsin_scheduler_missed_runs_total":
            row["missed_runs"] = row.get("missed_runs", 0) + value
    row["scrape_s"] = round(took, 3)
    return row


def nearest(rows: list[dict], minute: float) -> dict | None:
    rows = [r for r in rows if "scrape_error" not in r]
    return min(rows, key=lambda r: abs(r["minute"] - minute)) if rows else None


def summarise(rows: list[dict], frm: float, to: float) -> dict:
    a, b = nearest(rows, frm), nearest(rows, to)
    if a is None or b is None or a is b:
        return {}
    window = [r for r in rows if a["minute"] <= r["minute"] <= b["minute"] and "scrape_error" not in r]
    out = {"from_minute": a["minute"], "to_minute": b["minute"],
           "rss_mib": [a["rss_mib"], b["rss_mib"]], "rss_growth_pct": round(100 * (b["rss_mib"] / a["rss_mib"] - 1), 2),
           "rss_min_max_in_window": [min(r["rss_mib"] for r in window), max(r["rss_mib"] for r in window)],
           "fds": [a["fds"], b["fds"]], "fds_max_in_window": max(r["fds"] for r in window)}
    if "store_samples" in a and "store_samples" in b:
        out["store_samples"] = [a["store_samples"], b["store_samples"]]
        out["store_samples_max_in_window"] = max(r.get("store_samples", 0) for r in window)
        out["store_series"] = [a.get("store_series"), b.get("store_series")]
    return out


def store_bound(rule_file: Path, targets: int, interval: float, evaluation_interval: float) -> dict:
    """The sample store's bound for these rules, from the store's own retention rule
    (RELIABILITY.md has the derivation): per series at most W * 9/8 / interval + 1 samples,
    W = the longest window a rule reads of it (range, or 5m lookback for an instant read)
    + the margin (longest evaluation interval + 60 s). The series of one target here:
    probe_success, tocsin_probes_total{result=success|failure},
    tocsin_probe_duration_seconds_sum and _count (HTTP targets have no TLS series)."""
    from tocsin.rules.files import load_rule_file
    from tocsin.rules.store import BYTES_PER_SAMPLE, build_interest

    interest = build_interest(r.expr for g in load_rule_file(rule_file) for r in g.rules)
    margin_ms = round(evaluation_interval * 1000) + 60_000
    kinds = [("probe_success", ()), ("tocsin_probes_total", (("result", "success"),)),
             ("tocsin_probes_total", (("result", "failure"),)), ("tocsin_probe_duration_seconds_sum", ()),
             ("tocsin_probe_duration_seconds_count", ())]
    per_target, windows = 0.0, {}
    for name, extra in kinds:
        labels = tuple(sorted((("__name__", name), ("target", "x"), *extra)))
        history = interest.retention_for(labels)
        if history < 0:
            continue
        window_s = (history + margin_ms) / 1000
        windows[name + (f"{{{extra[0][0]}={extra[0][1]}}}" if extra else "")] = window_s
        per_target += window_s * 9 / 8 / interval + 1
    samples = targets * per_target
    return {"series": targets * len(windows), "window_s": windows, "samples_max": int(samples),
            "array_mib_max": round(samples * BYTES_PER_SAMPLE * 17 / 16 / 2**20, 1),
            "formula": "sum over series of (W * 9/8 / interval + 1), W = longest window read + eval interval + 60s"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", type=int, default=500)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--timeout", type=float, default=0.8)
    ap.add_argument("--evaluation-interval", type=float, default=15.0)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--every", type=float, default=30.0, help="seconds between readings")
    ap.add_argument("--down", type=int, default=10, help="targets answering 503 all the time")
    ap.add_argument("--flapping", type=int, default=10, help="targets down during even minutes")
    ap.add_argument("--no-rules", action="store_true", help="an empty rule file (the control run)")
    ap.add_argument("--rev", help="run tocsin from `git archive REV src` (a fixed version for a long run)")
    ap.add_argument("--from", dest="frm", type=float, default=20.0, help="minute the growth is measured from")
    ap.add_argument("--to", type=float, default=60.0, help="minute the growth is measured to")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()

    procs, workdir = cm.new_run("soak")
    summary: dict = {"benchmark": "soak", "args": {k: (str(v) if isinstance(v, Path) else v)
                                                   for k, v in vars(args).items()}}
    if args.rev:
        cm.use_tocsin_rev(args.rev, workdir / "rev")
    summary["machine"] = cm.machine()
    sink = None
    try:
        url, _ = cm.start_nginx(procs, workdir, connections=4096, rlimit_nofile=None, ready_timeout=10,
                                access_log=f"access_log off;\n    {FLAP_MAP}", locations=LOCATIONS)
        base_url = url.removesuffix("/health")
        targets = []
        for i in range(args.targets):
            path = "/down" if i < args.down else "/flap" if i < args.down + args.flapping else "/health"
            targets.append((f"soak-{i:04d}", base_url + path))
        sink = cm.WebhookSink()
        tdir = workdir / "tocsin"
        tdir.mkdir()
        rules = cm.SHIPPED_RULES
        if args.no_rules:
            rules = tdir / "empty.yml"
            rules.write_text(EMPTY_RULES)
        port = cm.free_port()
        cm.write_tocsin_config(tdir / "tocsin.yml", port, targets, args.interval, args.timeout,
                               args.evaluation_interval, rules, sink.url, group_wait=10)
        proc = procs.start([*cm.tocsin_argv(), "run", "--config", str(tdir / "tocsin.yml")], tdir / "tocsin.log",
                           cwd=tdir, env=cm.tocsin_env())
        base = f"http://127.0.0.1:{port}"
        cm.wait_until(lambda: cm.http_get(base + "/-/ready", 1)[0] == 200, 60, "tocsin", proc)
        t0 = time.monotonic()
        log(f"tocsin up (pid {proc.pid}), {args.targets} targets every {args.interval:g}s, "
            f"{'no rules' if args.no_rules else 'shipped rules'}; {args.minutes:g} minutes")
        rows: list[dict] = []
        summary["rows"] = rows
        if not args.no_rules:
            summary["store_bound"] = store_bound(rules, args.targets, args.interval, args.evaluation_interval)
        end = t0 + args.minutes * 60
        next_at = t0
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"tocsin exited with {proc.returncode}")
            row = reading(proc.pid, base, t0)
            row["notifications"] = len(sink.received)
            rows.append(row)
            summary["summary"] = summarise(rows, args.frm, args.to)
            cm.write_json(args.json, summary)
            log(" ".join(f"{k}={v}" for k, v in row.items()))
            next_at += args.every
            if next_at > end + 1e-6:
                break
            time.sleep(max(0.0, next_at - time.monotonic()))
        summary["summary"] = summarise(rows, args.frm, args.to)
        summary["loadavg_at_end"] = cm.loadavg()
        cm.write_json(args.json, summary)
        print(json.dumps({k: summary[k] for k in ("summary", "store_bound") if k in summary}, indent=2))
    finally:
        if sink is not None:
            sink.close()
        procs.stop_all()
        cm.remove_workdir(workdir, args.keep, "soak")
    return 0


if __name__ == "__main__":
    sys.exit(main())
