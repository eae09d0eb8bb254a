#!/usr/bin/env python3
"""Chaos: kill tocsin again and again while targets flap and the webhook misbehaves; then
audit every firing/resolved transition the daemon recorded against what the receiver got.

The world (all scripted from --seed, all on loopback):
  targets  20 HTTP targets whose up/down times are drawn in advance: each stays up or down
           for 0.1-5 s (some flaps shorter than a probe interval), probed every 500 ms; one rule
           `TargetDown: probe_success == 0` (for: 0) evaluated every 300 ms; one group per
           target (group_by [alertname, target]), group_wait 1s, group_interval 1s.
  webhook  switches every 1-6 s between answering 200 (60 %), 500 (20 %) and hanging (20 %:
           reads the request, never answers, closes after 5 s; the receiver's timeout is 1 s).
  daemon   --iterations times: start, wait for /-/ready, run 0.2-3 s, then SIGKILL or
           SIGTERM (half each), then PRAGMA integrity_check on every SQLite file in
           state_dir. Then a last start with the targets frozen and the webhook healthy, kept
           until the outbox is empty and nothing arrived for a while, and a clean stop.

The audit (RELIABILITY.md explains why these rules):
  truth      the daemons' own log lines, `alert firing: …` and `alert resolved: …` (JSON log,
             one file over every run), give per target episodes [fired, resolved); a firing
             line while an episode is open (a restart re-fired it) continues the episode.
  delivered  POSTs the webhook answered 200, each with its Idempotency-Key.
  stretches  each target's life is firing episode, resolved gap, firing episode, ...; an alert
             in a notification belongs to the episode whose span holds its startsAt.
  firing     an episode must be delivered if some daemon was alive during it for
             group_wait + 1 s in one stretch (from /-/ready to SIGKILL, or to the exit after
             SIGTERM); shorter ones are exempt (Alertmanager never notifies a group that
             resolves inside group_wait, and a dead daemon cannot flush).
  resolved   a gap must be delivered if some daemon was alive during it for group_interval
             + 1 s in one stretch.
  covered    a required stretch the receiver was not told about is still fine if it already
             believed that state (Alertmanager's dedup on fingerprints); otherwise it is lost.
  unexplained an alert in a notification that belongs to no episode: something false.
  final      the last notification about each target must say what the log says at the end.
  duplicate  a key delivered twice (allowed: at-least-once under one key), or the same
             group state delivered twice under two keys with nothing in between (not allowed).

    python bench/chaos.py [--seed 1] [--iterations 100] [--json bench/results/chaos.json] [--keep]
"""

from __future__ import annotations

import argparse
import glob
import json
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chaos_world import FlappingTargets, MoodyWebhook  # noqa: E402

import common as cm  # noqa: E402

N_TARGETS = 20
EVAL = 0.3           # rule evaluation interval
PROBE = 0.5          # probe interval (timeout 90 % of it)
GROUP_WAIT = 1.0
GROUP_INTERVAL = 1.0
QUIET = 5.0          # the end: no transition and no delivery attempt for this long
SLACK = 1.0          # seconds of tolerance for an evaluation, a flush and a commit to happen
RULES = f"""groups:
  - name: chaos
    interval: {round(EVAL * 1000)}ms
    rules:
      - alert: TargetDown
        expr: probe_success == 0
        labels: {{severity: critical}}
"""


def log(msg: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def write_config(path: Path, port: int, targets: list[tuple[str, str]], hook: str) -> None:
    import yaml

    cfg = {
        "global": {"listen_address": f"127.0.0.1:{port}", "interval": f"{round(PROBE * 1000)}ms",
                   "timeout": f"{round(PROBE * 900)}ms",
                   "evaluation_interval": "300ms", "state_dir": str(path.parent / "state")},
        "logging": {"level": "info", "console": {"format": "text"},
                    "file": {"path": str(path.parent / "tocsin.json.log"), "format": "json",
                             "max_bytes": "1GiB", "backup_count": 1}},
        "targets": [{"name": n, "url": u} for n, u in targets],
        "rule_files": [str(path.parent / "rules.yml")],
        "alerting": {
            "route": {"receiver": "hook", "group_by": ["alertname", "target"], "group_wait": "1s",
                      "group_interval": "1s", "repeat_interval": "1h"},
            "receivers": [{"name": "hook", "webhook": {"url": hook, "send_resolved": True, "timeout": "1s"}}],
            "delivery": {"initial_backoff": "200ms", "max_backoff": "2s", "breaker_failures": 5,
                         "breaker_cooldown": "2s"},
        },
    }
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    (path.parent / "rules.yml").write_text(RULES)


def integrity(state: Path) -> list[str]:
    """PRAGMA integrity_check of every SQLite file the daemon left (after WAL recovery)."""
    bad = []
    for f in sorted(glob.glob(str(state / "*.db")) + glob.glob(str(state / "*.sqlite"))):
        con = sqlite3.connect(f, timeout=10)
        try:
            result = con.execute("PRAGMA integrity_check").fetchall()
        finally:
            con.close()
        if result != [("ok",)]:
            bad.append(f"{Path(f).name}: {result[:3]}")
    return bad


def outbox_rows(state: Path) -> int:
    con = sqlite3.connect(str(state / "notify.sqlite"), timeout=10)
    try:
        return con.execute("SELECT count(*) FROM outbox").fetchone()[0]
    finally:
        con.close()


def start(procs: cm.Processes, tdir: Path, port: int, run: int) -> subprocess.Popen:
    proc = procs.start([*cm.tocsin_argv(), "run", "--config", str(tdir / "tocsin.yml")],
                       tdir / f"run-{run:03d}.log", cwd=tdir, env=cm.tocsin_env())
    cm.wait_until(lambda: cm.http_get(f"http://127.0.0.1:{port}/-/ready", 1)[0] == 200, 90, f"run {run}", proc,
                  step=0.02)
    return proc


def stop(proc: subprocess.Popen, sig: int) -> float:
    """Send `sig`; returns when the process is gone (a SIGTERM that takes over 30 s gets SIGKILL)."""
    proc.send_signal(sig)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
    return time.time()


# ----------------------------------------------------------------------------- the audit

_TARGET = re.compile(r'target="([^"]*)"')


def log_events(path: Path) -> list[tuple[float, str, str]]:
    """(unix time, target, "firing" | "resolved") from the daemons' JSON log, in order."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        msg = rec.get("message", "")
        kind = "firing" if msg.startswith("alert firing: ") else \
            "resolved" if msg.startswith("alert resolved: ") and "rule was removed" not in msg else None
        m = _TARGET.search(msg)
        if kind and m:
            t = datetime.strptime(rec["time"], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            out.append((t, m.group(1), kind))
    return sorted(out)


def episodes(events: list[tuple[float, str, str]], end: float) -> dict[str, list[dict]]:
    per: dict[str, list[dict]] = {}
    for t, target, kind in events:
        eps = per.setdefault(target, [])
        open_ep = eps[-1] if eps and eps[-1]["resolved"] is None else None
        if kind == "firing":
            if open_ep is None:
                eps.append({"fired": t, "resolved": None, "refired": 0})
            else:
                open_ep["refired"] += 1
        elif open_ep is not None:
            open_ep["resolved"] = t
    for eps in per.values():
        for ep in eps:
            ep["open_at_end"] = ep["resolved"] is None
            ep["until"] = end if ep["resolved"] is None else ep["resolved"]
    return per


def longest_live_overlap(a: float, b: float, windows: list[tuple[float, float]]) -> float:
    return max((min(b, w1) - max(a, w0) for w0, w1 in windows), default=0.0)


def parse_time(s: str) -> float:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def audit(events, deliveries: list[dict], windows: list[tuple[float, float]], end: float) -> dict:
    """Walk each target's stretches (firing episode, resolved gap, ...) in order, with what
    the receiver was told about each and what it believed going into it."""
    eps = episodes(events, end)
    told: dict[str, dict[int, set[str]]] = {}
    unexplained = []
    for d in deliveries:
        for a in d["alerts"]:
            items = eps.get(a["target"], [])
            s = parse_time(a["startsAt"])
            k = next((k for k, ep in enumerate(items) if ep["fired"] - EVAL - SLACK <= s < ep["until"]), None)
            if k is None:
                unexplained.append({"key": d["key"], **a})
            else:
                told.setdefault(a["target"], {}).setdefault(k, set()).add(a["status"])
    r: dict = {"episodes": 0, "lost": [], "unexplained": unexplained}
    for state in ("firing", "resolved"):
        r.update({f"{state}_told": 0, f"{state}_required": 0, f"{state}_required_told": 0,
                  f"{state}_required_covered": 0, f"{state}_exempt_short": 0})
    for target, items in sorted(eps.items()):
        belief = "resolved"  # the receiver knows nothing of the target yet
        for k, ep in enumerate(items):
            r["episodes"] += 1
            said = told.get(target, {}).get(k, set())
            live = longest_live_overlap(ep["fired"], ep["until"], windows)
            belief = _stretch(r, "firing", live >= GROUP_WAIT + SLACK, "firing" in said, belief,
                              {"target": target, "episode": k, **ep, "live_s": round(live, 2)})
            if ep["resolved"] is None:
                continue
            gap_end = items[k + 1]["fired"] if k + 1 < len(items) else end
            live = longest_live_overlap(ep["resolved"], gap_end, windows)
            belief = _stretch(r, "resolved", live >= GROUP_INTERVAL + SLACK, "resolved" in said, belief,
                              {"target": target, "episode": k, **ep, "gap_live_s": round(live, 2)})
    final_bad = []
    for target, items in eps.items():
        truth = "firing" if items[-1]["open_at_end"] else "resolved"
        last = [a["status"] for d in deliveries for a in d["alerts"] if a["target"] == target]
        if (last[-1] if last else "resolved") != truth:
            final_bad.append({"target": target, "log": truth, "receiver": last[-1] if last else None})
    r["final_view_wrong"] = final_bad
    r.update(duplicates(deliveries))
    r["lost_count"] = len(r["lost"])
    return r


def _stretch(r: dict, state: str, required: bool, said: bool, belief: str, where: dict) -> str:
    """One stretch of the truth: count it; returns the receiver's belief after it."""
    r[f"{state}_told"] += said
    r[f"{state}_required"] += required
    r[f"{state}_exempt_short"] += not required
    if said:
        r[f"{state}_required_told"] += required
        return state
    if required and belief == state:
        r[f"{state}_required_covered"] += 1   # the receiver still believed it: Alertmanager sends nothing
    elif required:
        r["lost"].append({"transition": state, **where})
    return belief


def duplicates(deliveries: list[dict]) -> dict:
    by_key: dict[str, int] = {}
    for d in deliveries:
        by_key[d["key"]] = by_key.get(d["key"], 0) + 1
    same_key = {k: n for k, n in by_key.items() if n > 1}
    # the same group state twice in a row under two keys: a notification derived twice
    last_state: dict[str, tuple[str, tuple]] = {}
    two_keys = []
    for d in deliveries:
        group = d["group_key"]
        state = tuple(sorted((a["target"], a["status"], a["startsAt"]) for a in d["alerts"]))
        prev = last_state.get(group)
        if prev is not None and prev[1] == state and prev[0] != d["key"]:
            two_keys.append({"group": group, "keys": [prev[0], d["key"]]})
        last_state[group] = (d["key"], state)
    return {"duplicates_same_key": sum(n - 1 for n in same_key.values()), "duplicate_keys": sorted(same_key),
            "duplicates_two_keys": two_keys}


# ----------------------------------------------------------------------------- the run

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--settle", type=float, default=180.0, help="longest wait for the outbox to empty at the end")
    ap.add_argument("--rev", help="run tocsin from `git archive REV src`")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--audit", type=Path, help="only re-run the audit on the raw data of an earlier --json")
    args = ap.parse_args()
    if args.audit:
        raw = json.loads(args.audit.read_text())["raw"]
        report = audit([tuple(e) for e in raw["events"]], raw["deliveries"], [tuple(w) for w in raw["windows"]],
                       raw["end"])
        print(json.dumps(report, indent=2))
        return 0

    rng = random.Random(args.seed)
    procs, workdir = cm.new_run("chaos", stop_timeout=30)
    if args.rev:
        cm.use_tocsin_rev(args.rev, workdir / "rev")
    summary: dict = {"benchmark": "chaos", "args": {k: str(v) if isinstance(v, Path) else v
                                                    for k, v in vars(args).items()}, "machine": cm.machine()}
    t0 = time.time()
    targets = FlappingTargets(N_TARGETS, random.Random(rng.random()), t0)
    hook = MoodyWebhook(random.Random(rng.random()), t0)
    try:
        tdir = workdir / "tocsin"
        tdir.mkdir()
        port = cm.free_port()
        write_config(tdir / "tocsin.yml", port, targets.urls(), hook.url)
        windows: list[tuple[float, float]] = []
        kills = {"SIGKILL": 0, "SIGTERM": 0}
        integrity_failures: list[dict] = []
        for run in range(args.iterations):
            proc = start(procs, tdir, port, run)
            ready = time.time()
            time.sleep(rng.uniform(0.2, 3.0))
            sig = rng.choice((signal.SIGKILL, signal.SIGTERM))
            kills[sig.name] += 1
            windows.append((ready, time.time() if sig == signal.SIGKILL else stop(proc, sig)))
            if sig == signal.SIGKILL:
                stop(proc, sig)
            bad = integrity(tdir / "state")
            if bad:
                integrity_failures.append({"run": run, "signal": sig.name, "problems": bad})
            if run % 10 == 9:
                log(f"{run + 1} kills ({kills}); {len(hook.delivered)} delivered, {hook.attempts} attempts")
        # the end: targets frozen, webhook healthy, one daemon until everything committed is delivered
        targets.freeze()
        hook.heal()
        proc = start(procs, tdir, port, args.iterations)
        ready = time.time()
        deadline = time.monotonic() + args.settle
        time.sleep(GROUP_WAIT + 4 * EVAL + 2)
        while time.monotonic() < deadline:
            events = log_events(tdir / "tocsin.json.log")
            last_event = events[-1][0] if events else 0.0
            if outbox_rows(tdir / "state") == 0 and time.time() - max(hook.last_attempt, last_event) > QUIET:
                break
            time.sleep(0.5)
        outbox_left = outbox_rows(tdir / "state")
        end = stop(proc, signal.SIGTERM)
        windows.append((ready, end))
        bad = integrity(tdir / "state")
        if bad:
            integrity_failures.append({"run": args.iterations, "signal": "SIGTERM", "problems": bad})
        events = log_events(tdir / "tocsin.json.log")
        report = audit(events, hook.delivered, windows, end)
        summary.update({
            "kills": kills, "integrity_failures": integrity_failures, "outbox_left_at_end": outbox_left,
            "transitions": {"firing": sum(1 for e in events if e[2] == "firing"),
                            "resolved": sum(1 for e in events if e[2] == "resolved")},
            "webhook": {"attempts": hook.attempts, "delivered": len(hook.delivered), "by_mode": hook.by_mode,
                        "delivered_alert_transitions": sum(len(d["alerts"]) for d in hook.delivered)},
            "flaps": targets.flaps(end), "audit": report, "loadavg_at_end": cm.loadavg(),
            "minutes": round((time.time() - t0) / 60, 1),
            "raw": {"events": events, "deliveries": hook.delivered, "windows": windows, "end": end}})
        cm.write_json(args.json, summary)
        print(json.dumps({k: v for k, v in summary.items() if k not in ("machine", "raw")}, indent=2, default=str))
        ok = not report["lost"] and not report["final_view_wrong"] and not integrity_failures \
            and not report["duplicates_two_keys"]
        return 0 if ok else 1
    finally:
        hook.close()
        targets.close()
        procs.stop_all()
        cm.remove_workdir(workdir, args.keep, "chaos")


if __name__ == "__main__":
    sys.exit(main())
