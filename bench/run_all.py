#!/usr/bin/env python3
"""Run every benchmark in bench/ and print one results table (what `make bench` runs).

Each benchmark is a script `bench/p<N>_*.py` that accepts `--json FILE` and prints its own
detailed table; this runner gives each a JSON file under bench/results/ (gitignored), then
prints a summary and writes bench/results/summary.json plus a timestamped copy.
Extra arguments are passed to every benchmark (for example `--rounds 1 --window 10`);
without them each runs with the shorter settings in QUICK, or its own defaults with `--full`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

# `make bench` must finish within 15 minutes on a 2-CPU machine: each benchmark runs with
# fewer/shorter rounds than its own defaults (which BENCHMARKS.md's figures used). `--full`
# runs every benchmark with its defaults (about 30 minutes).
QUICK = {
    "p1_probe_cpu": ["--rounds", "2", "--window", "15"],
    "p2_stack_cpu": ["--rounds", "2", "--warmup", "60", "--window", "25"],
    "p3_scale": ["--window", "30", "--settle-max", "20"],
    "p4_scrape": ["--rounds", "2", "--reference-runs", "1"],
    "p5_rules": ["--rounds", "2", "--evals", "4"],
    "p6_time_to_notify": ["--rounds", "3", "--no-defaults"],
    "p7_startup": ["--rounds", "2", "--reloads", "1"],
}


def main(argv: list[str]) -> int:
    full = "--full" in argv
    argv = [a for a in argv if a != "--full"]
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    scripts = sorted(p for p in HERE.glob("p[0-9]*_*.py"))
    summary: dict = {"started": stamp, "benchmarks": {}}
    status = 0
    for script in scripts:
        name = script.stem
        out = RESULTS / f"{name}.json"
        out.unlink(missing_ok=True)
        print(f"== {name}", flush=True)
        extra = argv or ([] if full else QUICK.get(name, []))
        rc = subprocess.run([sys.executable, str(script), "--json", str(out), *extra]).returncode
        status = status or rc
        result = json.loads(out.read_text()) if out.exists() else None
        summary["benchmarks"][name] = {"exit_code": rc, "result": result}

    print("\nbenchmark          tocsin      blackbox    ratio   goal    correct")
    for name, entry in summary["benchmarks"].items():
        r = entry["result"]
        if r is None:
            print(f"{name:18} failed (exit {entry['exit_code']})")
            continue
        if "figures" in r:  # P3, P4, P7: several figures, each against its own goal
            for f in r["figures"]:
                value = f"{f['value']} {f['unit']}".strip()
                print(f"{name:18} {f['figure'][:46]:46} {value:>16}  goal {f['goal']:<8} "
                      f"{'met' if f['met'] else 'NOT met'}")
            continue
        if "table" in r:  # P2, P6: figures that are not CPU per 1000 probes say what they are
            med = {"tocsin": r["table"]["tocsin"], "blackbox": r["table"]["anchor"]}
            r = {**r, "unit": r["table"]["what"] + "; anchor = blackbox+prometheus+alertmanager"}
        else:
            med = {side: (f"{r[side]['cpu_per_1000_median']:.4f}" if side in r else "-")
                   for side in ("tocsin", "blackbox")}
        print(f"{name:18} {med['tocsin']:<11} {med['blackbox']:<11} "
              f"{r.get('ratio', '-')!s:<7} <={r['goal_ratio']:<5} {'yes' if r['correct'] else 'NO'}"
              f"   ({r['unit']}, medians of {r['params']['rounds']} rounds)")
    text = json.dumps(summary, indent=2) + "\n"
    (RESULTS / "summary.json").write_text(text)
    (RESULTS / f"summary-{stamp}.json").write_text(text)
    print(f"\nJSON: {(RESULTS / 'summary.json').relative_to(HERE.parent)}")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
