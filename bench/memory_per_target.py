#!/usr/bin/env python3
"""Bytes per target of the overview's history summary and of the flapping gate, and the CPU of
their per-result calls.

A shard holding 10 000 targets spends most of its memory per target, so these two structures
are measured alone: tracemalloc over building N of them, fed as the daemon feeds them.

history: each summary gets a day of results (`add_result` at `--interval`, a few down and a
few in maintenance), then a page view (24h/7d/30d windows and the day bars, which fill the
cached sums of closed slots). `--days 90` first loads 89 closed days as the recorder does at
start from the database (`add_day_times`), every tenth of them with some down time.
flapping: each target gets `--results` results through `FlappingGate.observe`, one in fifty down.

CPU: a million `add_result` (or `observe`) calls on one warm object, in ns per call. The machine
is shared: the figure is printed with the load average beside it.

    python bench/memory_per_target.py --part history [--targets 10000] [--days 1|90]
    python bench/memory_per_target.py --part flapping [--targets 10000]
"""

from __future__ import annotations

import argparse
import gc
import os
import time
import tracemalloc

from tocsin.config import parse_config
from tocsin.flapping import FlappingConfig, FlappingGate
from tocsin.history.rollup import DOWN, MAINTENANCE, UP
from tocsin.history.summary import TargetSummary

DAY = 86400
NOW = 20_000 * DAY + 13 * 3600 + 600  # a quarter past one in the afternoon, UTC


def _state(i: int) -> str:
    return DOWN if i % 97 == 0 else MAINTENANCE if i % 211 == 0 else UP


def feed_summary(summary: TargetSummary, interval: float, days: int) -> None:
    today = int(NOW // DAY)
    for day in range(today - days + 1, today):
        summary.add_day_times(day, 86400.0, 120.0 if day % 10 == 0 else 0.0, 0.0)
    t, i = NOW - DAY, 0
    while t < NOW:
        summary.add_result(int(t // 3600), int(t // DAY), _state(i), interval, i % 4)
        t += interval
        i += 1
    for span in ("24h", "7d", "30d"):
        summary.window(NOW, span)
    summary.day_bars(NOW)


def measure(build, n: int) -> float:  # type: ignore[no-untyped-def]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = [build(i) for i in range(n)]
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    per_target = (after - before - 8 * len(kept)) / n  # less the list holding them
    del kept
    return per_target


def cpu_ns(call, calls: int) -> float:  # type: ignore[no-untyped-def]
    start = time.process_time_ns()
    call(calls)
    return (time.process_time_ns() - start) / calls


def history(args: argparse.Namespace) -> None:
    def build(_: int) -> TargetSummary:
        summary = TargetSummary()
        feed_summary(summary, args.interval, args.days)
        return summary

    print(f"history: {measure(build, args.targets):.0f} bytes per target "
          f"({args.targets} summaries, {args.days} day(s), a result every {args.interval:g} s)")
    warm = build(0)
    hour, day = int(NOW // 3600), int(NOW // DAY)

    def results(calls: int) -> None:
        add = warm.add_result
        for i in range(calls):
            add(hour, day, UP if i % 50 else DOWN, 10.0, 2)

    def results_viewed(calls: int) -> None:  # a page has cached the closed sums
        add = warm.add_result
        for i in range(calls):
            add(hour, day, UP if i % 50 else DOWN, 10.0, 2)
            if i % 1000 == 0:
                warm.window(NOW, "24h")
                warm.window(NOW, "30d")

    results(10_000)
    print(f"history: add_result {cpu_ns(results, args.calls):.0f} ns per call; "
          f"with page views {cpu_ns(results_viewed, args.calls):.0f} ns per call")


def flapping(args: argparse.Namespace) -> None:
    loaded = parse_config({"targets": [{"name": f"t{i}", "tcp": {"address": "127.0.0.1:1"},
                                        "labels": {"team": "web"}} for i in range(args.targets)]}, "bench")
    targets = loaded.targets
    gates: list[FlappingGate] = []

    def build(i: int) -> None:
        if not gates:
            gates.append(FlappingGate(FlappingConfig(), lambda _alerts: None))
        for r in range(args.results):
            gates[0].observe(targets[i], (r + i) % 50 != 0)

    print(f"flapping: {measure(build, args.targets):.0f} bytes per target "
          f"({args.targets} targets, {args.results} results each)")
    gate, target = FlappingGate(FlappingConfig(), lambda _alerts: None), targets[0]

    def results(calls: int) -> None:
        observe = gate.observe
        for i in range(calls):
            observe(target, i % 50 != 0)

    results(10_000)
    print(f"flapping: observe {cpu_ns(results, args.calls):.0f} ns per call")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("history", "flapping"), required=True)
    parser.add_argument("--targets", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=1, help="history: days of history each summary holds")
    parser.add_argument("--interval", type=float, default=300.0, help="history: seconds between results")
    parser.add_argument("--results", type=int, default=50, help="flapping: results per target")
    parser.add_argument("--calls", type=int, default=1_000_000, help="calls timed for the CPU figure")
    args = parser.parse_args()
    (history if args.part == "history" else flapping)(args)
    print("load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
