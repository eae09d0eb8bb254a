#!/usr/bin/env python3
"""History and status pages at scale: N targets probed every I seconds with D days of history.

What it measures, in-process (no daemon, no network: the pages and the store are what is timed):

  size       history.db bytes per target after D days of synthetic history at interval I
             (per-hour and per-day rows for D days, per-minute rows for the last 48 h, a few
             failing hours with reasons): the store's size is set by the row count, not by
             the number of results, so this is what a year of running converges to.
  start      loading the in-memory summaries (last 24 h, last 90 days) at start-up.
  overview   server time of `/` over N targets (median and max of --repeat renders).
  target     server time of `/targets/<name>` (charts of 24 h and 7 d, incidents).
  probe path CPU of `record()` per result (what the probe path pays) and of the history
             thread's fold + write per result at N/I results a second (what the process pays),
             beside P2's whole-stack CPU per probe (BENCHMARKS.md) for the growth estimate.

    python bench/history_bench.py [--targets 1000] [--interval 10] [--days 90] [--repeat 20]
                                  [--flush-seconds 600] [--reuse DB] [--json FILE]

P2's job is `--targets 200 --interval 5`: its probe-path figure is the one to set beside P2.

Not a p<N> benchmark run by run_all.py: run it on its own. The load average is printed
beside the figures: on a shared machine the times are upper bounds.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from common import loadavg  # noqa: E402
from tocsin.config import parse_config  # noqa: E402
from tocsin.history import HistoryRecorder  # noqa: E402
from tocsin.history.store import DAY, HOUR, MINUTE, TABLES  # noqa: E402
from tocsin.probes import ProbeResult  # noqa: E402
from tocsin.scheduler import TargetState  # noqa: E402
from tocsin.statuspage.config import StatusPageConfig  # noqa: E402
from tocsin.statuspage.model import Sources  # noqa: E402
from tocsin.statuspage.pages import StatusPages  # noqa: E402

P2_CPU_PER_PROBE_MS = 0.59  # BENCHMARKS.md, P2: tocsin's whole-process CPU per probe


def synthetic_rows(count: int, rng: random.Random) -> tuple:
    """One rollup row of `count` results: mostly healthy, now and then some HTTP 500s."""
    failures = rng.choice((0,) * 48 + (1, count // 4))
    up = count - failures
    fast = int(up * 0.9)
    hist = f"2:{fast},3:{up - fast}" + (f",5:{failures}" if failures else "")
    return (count, failures, count * 10.0, failures * 10.0, 0, round(count * 0.021, 6), hist,
            f"HTTP 500:{failures}" if failures else None)


def build(path: Path, names: list[str], interval: float, days: int, now: float) -> float:
    recorder = HistoryRecorder(str(path))
    db = recorder.db
    rng = random.Random(1)
    started = time.perf_counter()
    ids = [db.target_id(name) for name in names]
    spans = {MINUTE: 48 * 3600, HOUR: days * 86400, DAY: days * 86400}
    for span, keep in spans.items():
        per_row = max(1, int(span / interval))
        first = int((now - keep) // span) * span
        for target in ids:
            through = () if span == MINUTE else (int(now // MINUTE) * MINUTE,)
            rows = [(target, t, *synthetic_rows(per_row, rng), *through) for t in range(first, int(now), span)]
            db._db.execute("BEGIN")
            db._db.executemany(f"INSERT OR REPLACE INTO {TABLES[span]} VALUES ({','.join('?' * len(rows[0]))})", rows)
            db._db.execute("COMMIT")
    for target in ids[: len(ids) // 10]:  # a tenth of the targets had incidents: 20 each
        db._db.executemany("INSERT INTO incidents (target, start, end, reason, message, alerts) VALUES (?,?,?,?,?,?)",
                           [(target, now - i * 86400, now - i * 86400 + 300, "HTTP 500", "HTTP status 500", "[]")
                            for i in range(1, 21)])
    db._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    recorder.stop()
    return time.perf_counter() - started


class Table:
    def __init__(self, states: dict[str, TargetState]) -> None:
        self.states = states

    def next_run(self, name: str) -> datetime | None:
        return datetime.now(timezone.utc) if name in self.states else None


class Alerts:
    def active_alerts(self) -> list[dict]:
        return [{"labels": {"alertname": "TargetDown", "target": "t0007"}, "state": "firing",
                 "activeAt": "2026-01-01T00:00:00Z", "generatorURL": "/graph?g0.expr=probe_success+%3D%3D+0"}]


def result(name: str, at: float, ok: bool = True) -> ProbeResult:
    return ProbeResult(name, "http", ok, "" if ok else "status", "" if ok else "HTTP status 500", 0.021, 1, ok,
                       "c", at, 5.0, {"http_status_code": 200.0 if ok else 500.0})


def timed(fn, repeat: int) -> tuple[list[float], list[float]]:
    """Wall and CPU (this thread's) milliseconds of each call: on a loaded machine the CPU
    time is the closer figure of what the page costs; the wall time is what a user waits."""
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.thread_time()
        fn()
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--flush-seconds", type=int, default=600, help="simulated seconds of results and flushes")
    parser.add_argument("--reuse", type=Path, help="keep the built database here, or use it if it exists")
    args = parser.parse_args()
    now = time.time()
    names = [f"t{i:04d}" for i in range(args.targets)]
    out: dict = {"targets": args.targets, "interval": args.interval, "days": args.days, "load_before": loadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "history.db"
        if args.reuse is not None and args.reuse.exists():  # a database an earlier run built (--reuse)
            shutil.copy(args.reuse, path)
        else:
            out["build_seconds"] = round(build(path, names, args.interval, args.days, now), 1)
            if args.reuse is not None:
                shutil.copy(path, args.reuse)
        size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
        out["db_bytes"] = size
        out["bytes_per_target"] = size // args.targets

        t0 = time.perf_counter()
        recorder = HistoryRecorder(str(path))
        out["start_load_seconds"] = round(time.perf_counter() - t0, 2)

        config = parse_config({"targets": [{"name": n, "url": f"http://127.0.0.1:9/{n}",
                                            "labels": {"team": f"team{int(n[1:]) % 8}"}} for n in names]}, "bench")
        states = {t.name: TargetState(t, args.interval, last_result=result(t.name, now - 3, t.name != "t0007"))
                  for t in config.targets}
        pages = StatusPages(Sources(Table(states), Alerts(), recorder,
                                    lambda: StatusPageConfig(group_by="team"), lambda: True))
        overview = timed(lambda: pages.page("/", ""), args.repeat)
        target = timed(lambda: pages.page("/targets/t0007", ""), args.repeat)
        for key, (wall, cpu) in (("overview_ms", overview), ("target_ms", target)):
            out[key] = {"median": round(statistics.median(wall), 1), "max": round(max(wall), 1),
                        "cpu_median": round(statistics.median(cpu), 1)}
        out["overview_bytes"] = len(pages.page("/", "").body)

        # The probe path: one second's results (N / I) recorded, then one flush of them, for
        # long enough that WAL checkpoints are part of the figure.
        per_second = max(1, int(args.targets / args.interval))
        seconds = args.flush_seconds
        record_cpu = flush_cpu = 0.0
        for s in range(seconds):
            batch = [result(names[(s * per_second + i) % len(names)], now + s) for i in range(per_second)]
            t0 = time.thread_time()
            for r in batch:
                recorder.record(r.target, r, args.interval)
            record_cpu += time.thread_time() - t0
            t0 = time.thread_time()
            recorder.flush()
            flush_cpu += time.thread_time() - t0
        results = seconds * per_second
        out["record_us_per_result"] = round(record_cpu / results * 1e6, 2)
        out["fold_and_write_us_per_result"] = round(flush_cpu / results * 1e6, 1)
        out["history_cpu_share_of_one_core"] = round(flush_cpu / seconds, 4)
        per_probe_ms = (record_cpu + flush_cpu) / results * 1000
        out["p2_growth_estimate_percent"] = round(per_probe_ms / P2_CPU_PER_PROBE_MS * 100, 1)
        recorder.stop()
    out["load_after"] = loadavg()
    print(json.dumps(out, indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
