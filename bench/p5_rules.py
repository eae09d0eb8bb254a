#!/usr/bin/env python3
"""P5: evaluation time of the shipped alert rules over 10 000 targets, tocsin vs Prometheus.

Both sides evaluate `etc/rules/tocsin.yml` (unchanged) over the same samples at the same
evaluation timestamps:

  data        N synthetic targets (labels target, env, team), one probe every 15 s each
              (staggered by target), over H minutes ending at T_END: probe_success,
              probe_duration_seconds, probe_ssl_earliest_cert_expiry for a share of them,
              and the counters tocsin derives from each result (tocsin_probes_total{result},
              tocsin_probe_duration_seconds_sum/_count). A few % of the targets are down,
              flapping, failing intermittently or slow, and some certificates expire soon,
              so thousands of alerts are pending or firing (templates expanded for each).
  prometheus  Debian's /usr/bin/prometheus 2.42 with the rule file, evaluation_interval
              3 s (--interval), no scrape jobs; its history is backfilled with `promtool tsdb
              create-blocks-from openmetrics` from an OpenMetrics file holding exactly the
              series above (same label sets, same timestamps, same float values). Figure:
              `prometheus_rule_group_last_duration_seconds` from its own /metrics, one value
              per evaluation.
  tocsin      in this process: a RuleManager built from a configuration with the same N
              targets and the same rule file; every probe's samples go through
              the metrics registry into `RuleManager.ingest` (the daemon's path into the
              sample store: gauges and the counters the registry keeps), in time order. Then `RuleManager._evaluate` (what the
              daemon's worker thread runs each tick) at each timestamp Prometheus evaluated
              at. Figure: `tocsin_rule_group_last_duration_seconds` from `render_metrics()`.

Rounds alternate: Prometheus evaluates for a window (tocsin idle), then is stopped with
SIGSTOP while tocsin evaluates the timestamps of that window, in order. Correctness: at the
last common timestamp both sides must hold the same alerts per (alertname, alertstate).

History is backfilled, not scraped: a live scrape would need H minutes of wall time.
Because Prometheus rejects appends older than its newest block, T_END is set a little
after the time the set-up is expected to end (the script waits for it if needed), so the
evaluations happen a few seconds to a minute after the last sample; tocsin evaluates at
exactly the same timestamps, so both see the same windows.

Plain Python, standard library plus tocsin. Prometheus listens on 127.0.0.1 on a port
chosen at run time; every process started here is stopped on exit.

    python bench/p5_rules.py [--targets 10000] [--history 15] [--rounds 3] [--evals 6]
                             [--sides tocsin,prometheus] [--json FILE] [--profile FILE]
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import math
import os
import random
import re
import shutil
import signal
import statistics
import sys
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    PROMETHEUS,
    PROMTOOL,
    ROOT,
    Processes,
    first_line,
    free_port,
    http_get,
    machine_base,
    new_run,
    remove_workdir,
    wait_until,
    write_json,
)
from common import SHIPPED_RULES as RULES

GOAL = 1.0  # tocsin's evaluation time must be at most this multiple of Prometheus's
STEP_S = 15  # probe interval of every synthetic target

sys.path.insert(0, str(ROOT / "src"))


# ----------------------------------------------------------------------------- the data

class Target:
    """One synthetic target: its labels, behaviour, and its probes (time, success, duration)."""

    __slots__ = ("name", "labels", "kind", "expiry", "probes")

    def __init__(self, name: str, labels: tuple[tuple[str, str], ...], kind: str, expiry: float | None) -> None:
        self.name = name
        self.labels = labels
        self.kind = kind
        self.expiry = expiry
        self.probes: list[tuple[int, bool, float]] = []


def make_targets(n: int, t_end: int, history_s: int, seed: int = 5) -> list[Target]:
    """Deterministic synthetic fleet. Shares: 6 % down (since 1-14 min), 3 % flapping (last
    10 min), 5 % failing 15 % of probes, 4 % slow (2.2-4 s), the rest healthy (0.2 %
    failures); 40 % have a certificate, a quarter of those expiring within 14 days."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        name = f"svc-{i:05d}"
        labels = (("target", name), ("env", ("prod", "staging", "dev")[i % 3]), ("team", f"team-{i % 40:02d}"))
        u = rng.random()
        kind = ("down" if u < 0.06 else "flapping" if u < 0.09 else "erroring" if u < 0.14
                else "slow" if u < 0.18 else "healthy")
        expiry = None
        if rng.random() < 0.4:
            days = rng.uniform(1, 13.9) if rng.random() < 0.25 else rng.uniform(15, 90)
            expiry = float(int(t_end + days * 86400))
        t = Target(name, labels, kind, expiry)
        down_since = t_end - rng.randint(60, 14 * 60)
        first = t_end - history_s + (i % STEP_S)
        state = True
        for ts in range(first, t_end + 1, STEP_S):
            if kind == "down" and ts >= down_since:
                ok = False
            elif kind == "flapping" and ts >= t_end - 600:
                if rng.random() < 0.5:
                    state = not state
                ok = state
            elif kind == "erroring":
                ok = rng.random() >= 0.15
            else:
                ok = rng.random() >= 0.002
            if not ok:
                duration = round(rng.choice((0.0007, 5.0)) * rng.uniform(0.9, 1.0), 6)
            elif kind == "slow":
                duration = round(rng.uniform(2.2, 4.0), 6)
            else:
                duration = round(rng.lognormvariate(-2.5, 0.5), 6)
            t.probes.append((ts, ok, duration))
        out.append(t)
    return out


def probe_result(t: Target, ts: int, ok: bool, duration: float):
    """One HTTP result of `t` ending at `ts`, as a probe hands it to the metrics registry."""
    from tocsin.probes import ProbeResult

    facts = {"http_status_code": 200.0 if ok else 0.0, "http_content_length": 17.0 if ok else 0.0}
    if t.expiry is not None:
        facts["ssl_earliest_cert_expiry"] = t.expiry
    return ProbeResult(target=t.name, kind="http", success=ok, reason="" if ok else "connect", message="",
                       duration=duration, attempts=1 if ok else 3, first_attempt_success=ok, correlation_id="c",
                       started_at=float(ts) - duration, timeout=5.0, facts=facts)


def _fmt_labels(name: str, pairs) -> str:
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(pairs)) + "}"


def write_openmetrics(targets: list[Target], path: Path) -> int:
    """The series the rules read, with the counters computed exactly as tocsin's store does
    (running sums in probe order). Returns the number of samples written."""
    families: dict[str, list[str]] = {n: [] for n in (
        "probe_success", "probe_duration_seconds", "probe_ssl_earliest_cert_expiry", "tocsin_probes_total",
        "tocsin_probe_duration_seconds_sum", "tocsin_probe_duration_seconds_count")}
    samples = 0
    for t in targets:
        base = t.labels
        rows: dict[str, list[str]] = {}
        succ = fail = count = 0.0
        total = 0.0
        for ts, ok, duration in t.probes:
            if ok:
                succ += 1
            else:
                fail += 1
            count += 1
            total += duration
            values = [("probe_success", base, 1.0 if ok else 0.0), ("probe_duration_seconds", base, duration),
                      ("tocsin_probes_total", base + (("result", "success"),), succ),
                      ("tocsin_probes_total", base + (("result", "failure"),), fail),
                      ("tocsin_probe_duration_seconds_count", base, count),
                      ("tocsin_probe_duration_seconds_sum", base, total)]
            if t.expiry is not None:
                values.append(("probe_ssl_earliest_cert_expiry", base, t.expiry))
            for name, pairs, v in values:
                key = _fmt_labels(name, pairs)
                rows.setdefault(key, []).append(f"{key} {v!r} {ts}\n")
        for key, lines in rows.items():
            families[key.split("{", 1)[0]].append("".join(lines))
            samples += len(lines)
    with open(path, "w") as f:
        for name, series in families.items():
            f.write(f"# TYPE {name} gauge\n")
            f.writelines(series)
        f.write("# EOF\n")
    return samples


# ----------------------------------------------------------------------------- tocsin side

class TocsinSide:
    def __init__(self, targets: list[Target], rules: Path, workdir: Path, interval_s: float) -> None:
        from tocsin.config import LoadedConfig, parse_config
        from tocsin.metrics import ProbeMetrics
        from tocsin.rules.manager import RuleManager

        logging.getLogger("tocsin").setLevel(logging.ERROR)  # no "alert firing" line per alert
        raw = {"global": {"state_dir": str(workdir / "state"), "evaluation_interval": f"{interval_s:g}s"},
               "rule_files": [str(rules)],
               "targets": [{"name": t.name, "labels": dict(t.labels[1:]), "tcp": {"address": "127.0.0.1:1"}}
                           for t in targets]}
        loaded = LoadedConfig(path=workdir / "tocsin.yml", config=parse_config(raw, "tocsin.yml"))
        self.manager = RuleManager(loaded)
        if self.manager.errors:
            raise RuntimeError(f"rule manager: {self.manager.errors}")
        (self.key,) = self.manager.groups
        self.targets = targets
        # The daemon's path: results into the registry, its samples into the store, stamped
        # with the synthetic probe time exactly (the same timestamps Prometheus holds).
        self.registry = ProbeMetrics()
        self.now = 0.0
        store = self.manager.store
        self.registry.subscribe(lambda target, samples, _t: self.manager.ingest(target, samples, self.now),
                                store.may_want)
        for target in loaded.targets:
            self.registry.ensure(target)

    def ingest(self) -> float:
        """Every probe result through the registry into RuleManager.ingest, in time order; returns seconds."""
        events = sorted(((ts, i, ok, d) for i, t in enumerate(self.targets) for ts, ok, d in t.probes))
        started = time.perf_counter()
        record = self.registry.record
        targets = self.targets
        for ts, i, ok, d in events:
            self.now = float(ts)
            record(probe_result(targets[i], ts, ok, d), float(STEP_S))
        return time.perf_counter() - started

    def evaluate(self, ts_ms: int) -> float:
        self.manager._evaluate(self.key, ts_ms)  # what the daemon's rule worker runs each tick
        m = re.search(r"^tocsin_rule_group_last_duration_seconds\{[^}]*\} (\S+)$",
                      self.manager.render_metrics(), re.M)
        assert m is not None
        return float(m.group(1))

    def alert_counts(self) -> dict[str, int]:
        from tocsin.rules.alerting import INACTIVE, AlertingRule

        out: dict[str, int] = {}
        for rule in self.manager.groups[self.key].rules:
            if isinstance(rule, AlertingRule):
                for a in rule.active.values():
                    if a.state != INACTIVE:
                        k = f"{rule.name}/{a.state}"
                        out[k] = out.get(k, 0) + 1
        return dict(sorted(out.items()))

    def store_check(self, targets: list[Target]) -> bool:
        """The store's counters equal the ones written for Prometheus (a few targets)."""
        from tocsin.promql import Matcher

        store = self.manager.store
        for t in targets[:: max(1, len(targets) // 50)]:
            succ = sum(1 for _, ok, _ in t.probes if ok)
            got = store.select([Matcher.make("__name__", "=", "tocsin_probes_total"),
                                Matcher.make("target", "=", t.name), Matcher.make("result", "=", "success")],
                               0, 1 << 62)
            if len(got) != 1 or got[0].values[-1] != float(succ) or got[0].timestamps[-1] != t.probes[-1][0] * 1000:
                return False
        return True


# ----------------------------------------------------------------------------- prometheus side

PROM_METRIC = re.compile(r'^prometheus_rule_group_last_(duration_seconds|evaluation_timestamp_seconds)'
                         r'\{rule_group="[^"]*"\} (\S+)$', re.M)


class PrometheusSide:
    def __init__(self, procs: Processes, workdir: Path, rules: Path, data_dir: Path, interval_s: float) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        cfg = workdir / "prometheus.yml"
        cfg.write_text(f"global:\n  evaluation_interval: {interval_s:g}s\n  scrape_interval: 15s\n"
                       f"rule_files:\n  - {rules}\n")
        self.proc = procs.start([PROMETHEUS, f"--config.file={cfg}", f"--storage.tsdb.path={data_dir}",
                                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                                workdir / "prometheus.log")
        self.stopped = False
        wait_until(lambda: http_get(self.base + "/-/ready", 1)[0] == 200, 60, "prometheus", self.proc)

    def last(self) -> tuple[float, float]:
        """(last evaluation timestamp s, its duration s)."""
        _, body = http_get(self.base + "/metrics")
        got = dict(PROM_METRIC.findall(body.decode()))
        return float(got.get("evaluation_timestamp_seconds", 0)), float(got.get("duration_seconds", 0))

    def collect(self, n: int, timeout: float = 120.0) -> list[tuple[int, float]]:
        """Resume, then record the next n evaluations as (timestamp ms, duration s); stop again."""
        if self.stopped:
            self.proc.send_signal(signal.SIGCONT)
            self.stopped = False
        out: list[tuple[int, float]] = []
        seen_ts, _ = self.last()
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            time.sleep(0.1)
            ts, dur = self.last()
            if ts != seen_ts and ts > 0:
                seen_ts = ts
                out.append((int(round(ts * 1000)), dur))
        self.proc.send_signal(signal.SIGSTOP)
        self.stopped = True
        return out

    def alert_counts(self, ts_ms: int) -> dict[str, int]:
        if self.stopped:
            self.proc.send_signal(signal.SIGCONT)
            self.stopped = False
        q = urllib.parse.urlencode({"query": "count by (alertname, alertstate) (ALERTS)", "time": f"{ts_ms / 1000:.3f}"})
        _, body = http_get(f"{self.base}/api/v1/query?{q}")
        res = json.loads(body)["data"]["result"]
        return dict(sorted((f"{r['metric']['alertname']}/{r['metric']['alertstate']}", int(r["value"][1])) for r in res))


# ----------------------------------------------------------------------------- run

def machine() -> dict:
    try:
        import numpy
        np_version = numpy.__version__
    except ImportError:
        np_version = None
    return {**machine_base(), "numpy": np_version, "prometheus": first_line([PROMETHEUS, "--version"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=10_000)
    parser.add_argument("--history", type=float, default=15.0, help="minutes of samples before T_END")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--evals", type=int, default=6, help="evaluations per side per round")
    parser.add_argument("--interval", type=float, default=3.0, help="evaluation interval in seconds (both sides "
                        "evaluate at the timestamps Prometheus chose)")
    parser.add_argument("--warmup", type=int, default=3, help="Prometheus evaluations before the first round "
                        "(tocsin evaluates them too, unmeasured)")
    parser.add_argument("--setup-estimate", type=float, default=75.0,
                        help="seconds from start to Prometheus being ready (T_END = start + this)")
    parser.add_argument("--sides", default="tocsin,prometheus")
    parser.add_argument("--window", type=float, help=argparse.SUPPRESS)  # accepted for bench/run_all.py
    parser.add_argument("--json", type=Path)
    parser.add_argument("--profile", type=Path, help="cProfile tocsin's measured evaluations into this file "
                        "(the figures of a profiled run are not results)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    sides = set(args.sides.split(","))
    if "prometheus" in sides:
        for exe in (PROMETHEUS, PROMTOOL):
            if not os.access(exe, os.X_OK):
                print(f"P5: {exe} is not installed", file=sys.stderr)
                return 2

    procs, workdir = new_run("p5", stop_timeout=10.0)
    started = time.time()
    t_end = int(started + (args.setup_estimate if "prometheus" in sides else 0))
    history_s = int(args.history * 60)
    log = lambda msg: print(f"  [{time.time() - started:6.1f}s] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    summary: dict = {"benchmark": "P5", "unit": "seconds per evaluation of the shipped rule group",
                     "goal_ratio": GOAL,
                     "params": {"targets": args.targets, "history_min": args.history, "probe_interval_s": STEP_S,
                                "rounds": args.rounds, "evals_per_round": args.evals, "warmup_evals": args.warmup,
                                "evaluation_interval_s": args.interval},
                     "machine": machine()}
    try:
        rules = workdir / "tocsin.yml"
        shutil.copy(RULES, rules)
        targets = make_targets(args.targets, t_end, history_s)
        kinds: dict[str, int] = {}
        for t in targets:
            kinds[t.kind] = kinds.get(t.kind, 0) + 1
        summary["params"]["kinds"] = kinds
        summary["params"]["with_certificate"] = sum(1 for t in targets if t.expiry is not None)
        log(f"{len(targets)} targets, {sum(len(t.probes) for t in targets)} probes, T_END {t_end}")

        backfill = None
        if "prometheus" in sides:
            om = workdir / "history.om"
            n = write_openmetrics(targets, om)
            summary["params"]["prometheus_samples"] = n
            log(f"OpenMetrics: {n} samples, {om.stat().st_size / 1e6:.0f} MB; promtool backfill running")
            data_dir = workdir / "prometheus-data"
            data_dir.mkdir()
            backfill = procs.start([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", "-q", str(om), str(data_dir)],
                                   workdir / "promtool.log")

        tocsin = None
        if "tocsin" in sides:
            tocsin = TocsinSide(targets, rules, workdir, args.interval)
            took = tocsin.ingest()
            st = tocsin.manager.store.stats()
            summary["tocsin_ingest"] = {"seconds": round(took, 2), "store_series": st["series"],
                                        "store_samples": st["samples"], "counters_match": tocsin.store_check(targets)}
            # The probe history is the bench's, not the daemon's: free it so that the garbage
            # collector's full passes walk what a daemon would hold, not 600 000 extra tuples.
            for t in targets:
                t.probes = []
            gc.collect()
            log(f"tocsin: ingested in {took:.1f}s, store {st['series']} series / {st['samples']} samples")

        prom = None
        if backfill is not None:
            rc = backfill.wait(600)
            if rc != 0:
                raise RuntimeError(f"promtool exited with {rc}: {(workdir / 'promtool.log').read_text()[-2000:]}")
            (workdir / "history.om").unlink()
            log("backfill done")
            if time.time() < t_end + 1:
                log(f"waiting {t_end + 1 - time.time():.1f}s for T_END")
                time.sleep(t_end + 1 - time.time())
            prom = PrometheusSide(procs, workdir, rules, data_dir, args.interval)
            log("prometheus ready")

        # Timestamps to evaluate at: Prometheus's own, or (tocsin alone) one a second after T_END.
        tocsin_evals: list[float] = []
        prom_evals: list[float] = []
        rounds: list[dict] = []
        if prom is not None:
            warm = prom.collect(args.warmup)
            summary["prometheus_warmup"] = [d for _, d in warm]
            if tocsin is not None:
                summary["tocsin_warmup"] = [tocsin.evaluate(ts) for ts, _ in warm]
        else:
            warm = [(t_end * 1000 + int(args.interval * 1000) * (k + 1), 0.0) for k in range(args.warmup)]
            summary["tocsin_warmup"] = [tocsin.evaluate(ts) for ts, _ in warm]
        next_ts = warm[-1][0] if warm else t_end * 1000
        last_ts = next_ts
        profiler = None
        if args.profile and tocsin is not None:
            import cProfile
            profiler = cProfile.Profile()
        for r in range(1, args.rounds + 1):
            if prom is not None:
                got = prom.collect(args.evals)
            else:
                got = [(next_ts + int(args.interval * 1000) * (k + 1), math.nan) for k in range(args.evals)]
                next_ts = got[-1][0]
            entry = {"round": r, "timestamps_ms": [ts for ts, _ in got]}
            if prom is not None:
                entry["prometheus_s"] = [d for _, d in got]
                prom_evals += entry["prometheus_s"]
            if tocsin is not None:
                if profiler is not None:
                    profiler.enable()
                entry["tocsin_s"] = [tocsin.evaluate(ts) for ts, _ in got]
                if profiler is not None:
                    profiler.disable()
                tocsin_evals += entry["tocsin_s"]
            last_ts = got[-1][0]
            rounds.append(entry)
            log("round " + str(r) + ": " + ", ".join(
                f"{side} median {statistics.median(entry[k]) * 1000:.1f} ms"
                for side, k in (("prometheus", "prometheus_s"), ("tocsin", "tocsin_s")) if k in entry))
        if profiler is not None:
            profiler.dump_stats(str(args.profile))
        summary["rounds"] = rounds
        summary["sides"] = {}
        if tocsin is not None:
            summary["sides"]["tocsin"] = {"median_s": statistics.median(tocsin_evals), "min_s": min(tocsin_evals),
                                          "max_s": max(tocsin_evals), "alerts": tocsin.alert_counts()}
        if prom is not None:
            summary["sides"]["prometheus"] = {"median_s": statistics.median(prom_evals), "min_s": min(prom_evals),
                                              "max_s": max(prom_evals), "alerts": prom.alert_counts(last_ts)}
        correct = True
        if tocsin is not None:
            correct = summary["tocsin_ingest"]["counters_match"]
        if tocsin is not None and prom is not None:
            correct = correct and summary["sides"]["tocsin"]["alerts"] == summary["sides"]["prometheus"]["alerts"]
            ratio = summary["sides"]["tocsin"]["median_s"] / summary["sides"]["prometheus"]["median_s"]
            summary["ratio"] = round(ratio, 3)
            summary["ratio_rounds"] = [round(statistics.median(e["tocsin_s"]) / statistics.median(e["prometheus_s"]), 3)
                                       for e in rounds]
            summary["meets_goal"] = ratio <= GOAL
        summary["correct"] = correct
        summary["wall_s"] = round(time.time() - started, 1)
    finally:
        procs.stop_all()
        remove_workdir(workdir, args.keep, "P5")

    print(f"\nP5: shipped rules over {args.targets} targets ({summary['params']['kinds']}), "
          f"{args.history:g} min history at {STEP_S}s")
    for side, s in summary["sides"].items():
        print(f"{side:10} median {s['median_s'] * 1000:9.2f} ms per evaluation (min {s['min_s'] * 1000:.2f}, "
              f"max {s['max_s'] * 1000:.2f}); alerts {s['alerts']}")
    if "ratio" in summary:
        print(f"ratio tocsin/prometheus: {summary['ratio']} (per round {summary['ratio_rounds']}); goal <= {GOAL}: "
              f"{'met' if summary['meets_goal'] else 'NOT met'}")
    print(f"correctness: {'ok' if summary['correct'] else 'FAILED'}; wall {summary['wall_s']}s")
    write_json(args.json, summary)
    return 0 if summary["correct"] else 1


if __name__ == "__main__":
    sys.exit(main())
