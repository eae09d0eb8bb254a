#!/usr/bin/env python3
"""What one wake-up of an idle process costs in CPU, by how long it slept.

An event loop (tocsin's: uvloop) that does nothing but sleep `gap` and wake, for 5 s per
gap; CPU from /proc/self/schedstat (the scheduler's own run-time, in ns) and getrusage.
On a virtual machine a wake-up after a few milliseconds of idling costs far more than the
work it does; this is why tocsin's scheduler starts probes due together in one wake-up
and why no thread of an idle daemon polls (BENCHMARKS.md, "Wake-ups").

    python bench/wakeup_cost.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import resource

from tocsin import aio


def run_time_s() -> float:
    with open("/proc/self/schedstat") as f:
        return int(f.read().split()[0]) / 1e9


def rusage_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def sleep_and_wake(gap: float, seconds: float) -> tuple[int, float, float]:
    n = max(1, int(seconds / gap))
    s0, r0 = run_time_s(), rusage_s()
    for _ in range(n):
        await asyncio.sleep(gap)
    return n, run_time_s() - s0, rusage_s() - r0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per gap")
    args = parser.parse_args()
    print(f"{'gap ms':>7} {'wake-ups':>8} {'CPU us/wake-up (schedstat)':>27} {'(getrusage)':>12}")
    for gap in (0.001, 0.005, 0.02, 0.1, 0.25):
        n, sched, rusage = aio.run(sleep_and_wake(gap, args.seconds))
        print(f"{gap * 1000:>7g} {n:>8} {sched / n * 1e6:>27.1f} {rusage / n * 1e6:>12.1f}")


if __name__ == "__main__":
    main()
