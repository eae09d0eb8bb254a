#!/usr/bin/env python3
"""The large run of the randomized differential test: tocsin's PromQL engine against
Debian's promtool 2.42 (see tests/promql_diff.py for the generator and the comparison).

    bench/promql_diff.py [--bases 1 2 3] [--cases 40] [--exprs 100] [--alert-cases 12] [--show 20]

For each base seed, `cases` cases of `exprs` random expressions each (seeds base*100000 +
i), and `alert-cases` random alerting rule files with their unit tests (tests/alert_diff.py,
32 alert tests each; `check rules` verdicts compared too). Prints, per base and in total:
expressions compared, exact agreements (errors on both sides included), agreements promtool
gives only on some runs (series order), agreements at 1e-6 only, the differences, and the
alert tests run with their differences and the wording-only classes set aside; the first
`show` differences in full. Exit status 1 when anything differs. Not a timing benchmark:
it can run on a busy machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import alert_diff as A  # noqa: E402
import promql_diff as D  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bases", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--cases", type=int, default=40)
    ap.add_argument("--exprs", type=int, default=100)
    ap.add_argument("--alert-cases", type=int, default=12)
    ap.add_argument("--show", type=int, default=20)
    args = ap.parse_args()
    total = D.Tally()
    alert_tests = 0
    alert_problems: list[str] = []
    wording: dict[str, int] = {}
    for base in args.bases:
        t0 = time.monotonic()
        tally = D.Tally()
        for i in range(args.cases):
            tally.add(D.compare_case(D.make_case(base * 100_000 + i, args.exprs)))
        print(f"base {base}: {tally.compared} compared, {tally.exact} exact ({tally.errors_both} errors in both), "
              f"{tally.order_dependent} order-dependent, {tally.close} at 1e-6 only, {len(tally.differ)} differ "
              f"({time.monotonic() - t0:.0f} s)", flush=True)
        total.add(tally)
        t0 = time.monotonic()
        n, problems = 0, 0
        for i in range(args.alert_cases):
            case = A.make_alert_case(base * 100_000 + i)
            n += case.n_tests
            found, known = A.compare_alert_case(case)
            alert_problems += found
            problems += len(found)
            for k in known:
                wording[k] = wording.get(k, 0) + 1
        alert_tests += n
        print(f"base {base}: {n} alert tests, {problems} differ ({time.monotonic() - t0:.0f} s)", flush=True)
    print(f"total: {total.compared} compared, {total.exact} exact, {total.order_dependent} order-dependent, "
          f"{total.close} at 1e-6 only, {len(total.differ)} differ")
    print(f"total: {alert_tests} alert tests, {len(alert_problems)} differ; wording-only, set aside: {wording}")
    for line in alert_problems[: args.show]:
        print("ALERT", line)
    for line in total.differ[: args.show]:
        print("DIFFER", line)
    for line in total.close_cases[: args.show]:
        print("CLOSE", line)
    return 1 if total.differ or alert_problems else 0


if __name__ == "__main__":
    sys.exit(main())
