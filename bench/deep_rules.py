"""`check rules` on deep and long PromQL: tocsin against Debian's promtool, time and peak RSS.

Not one of the P-benchmarks (run_all.py runs only `p<N>_*.py`): a figure for the hostile
input work. Each shape is one rule file; each tool checks it in its own process, and the
process's own peak RSS is read from wait4. Usage: `python bench/deep_rules.py [--quick]`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHAPES = {
    "1+1+… 5 000 terms": "+".join(["1"] * 5000),
    "up + up … 5 000 terms": " + ".join(["up"] * 5000),
    "1+1+… 50 000 terms": "+".join(["1"] * 50000),
    "10 000 parentheses": "(" * 10000 + "up" + ")" * 10000,
    "20 000 unary minus": "-" * 20000 + "up",
    "1+(1+(… 5 000 deep": "1+(" * 5000 + "1" + ")" * 5000,
    "10 000 nested abs()": "abs(" * 10000 + "up" + ")" * 10000,
    "3 000 nested sum()": "sum(" * 3000 + "up" + ")" * 3000,
    "2 000 nested subqueries": "max_over_time(" * 2000 + "up" + "[5m:])" * 2000,
    "60 000 nested ln()": "ln(" * 60000 + "up" + ")" * 60000,
}
QUICK = ("1+1+… 5 000 terms", "10 000 parentheses", "20 000 unary minus")


def run(argv: list[str]) -> tuple[float, int, int]:
    """Seconds, peak RSS in MiB and exit code of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - start, usage.ru_maxrss // 1024, proc.returncode


def main() -> None:
    quick = "--quick" in sys.argv
    promtool = shutil.which("promtool")
    tocsin = [sys.executable, "-m", "tocsin.cli", "check", "rules"]
    print(f"load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty.yml"
        empty.write_text("groups: []\n")
        base = run([*tocsin, str(empty)])
        print(f"{'(tocsin start-up, an empty file)':40} tocsin {base[0]:5.2f} s {base[1]:4d} MiB")
        for name, expr in SHAPES.items():
            if quick and name not in QUICK:
                continue
            path = Path(tmp) / "r.yml"
            path.write_text("groups:\n  - name: g\n    rules:\n      - record: r\n"
                            f"        expr: {json.dumps(expr)}\n")
            mine = run([*tocsin, str(path)])
            line = f"{name:40} tocsin {mine[0]:5.2f} s {mine[1]:4d} MiB exit {mine[2]}"
            if promtool:
                theirs = run([promtool, "check", "rules", str(path)])
                line += f"   promtool {theirs[0]:5.2f} s {theirs[1]:4d} MiB exit {theirs[2]}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
