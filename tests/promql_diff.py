"""Randomized differential testing of tocsin's PromQL engine against promtool 2.42.

A seed gives a *case*: random input series (counters with resets, gauges with NaN, ±Inf,
huge values, stale markers and gaps, a classic histogram) and random well-typed
expressions over the functions, aggregations and operators tocsin claims, each at a
random evaluation time. promtool evaluates them as a `promql_expr_test` with no
expected samples, so it prints what Prometheus computed (or the error); tocsin evaluates
the same expressions over the same samples; `compare` sorts every pair into exact
agreement, agreement at 1e-6 only, disagreement, or an error on one side only.

Facts about promtool 2.42 as an oracle that shape this module:

- it loads a test's series in random order, and the order of series in a selection
  follows it, so a sum over several series can flip in the last bit between runs;
  pairs that agree only at 1e-6 are run again (`confirm_exact`) before being counted;
- it loads samples only up to the last `evaluation_interval` tick at or before the
  latest `eval_time` of the test, so tocsin's storage gets the same cut;
- an expectation of nothing passes when the result is empty: no output is an empty
  result; a subquery without a step uses the evaluation interval.

Used by tests/test_promql_differential.py (a small fixed-seed slice) and
bench/promql_diff.py (the large run).
"""

from __future__ import annotations

import json
import math
import random
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from promql_gen import INTERVAL_S, POINTS, STALE, ExprGen, random_series

from tocsin.promql import MemoryStorage, PromQLError, PromQLParseError, Scalar, Vector, instant_query
from tocsin.promql.testfile import parse_duration, parse_metric

EVAL_INTERVAL_MS = 60_000


# ------------------------------------------------------------------ a case and its evaluation


@dataclass
class Case:
    seed: int
    series: list[tuple[str, list[str | None]]]
    exprs: list[tuple[str, int]]  # (expression, eval time ms), pairs unique

    @property
    def last_loaded_ms(self) -> int:
        return max(t for _, t in self.exprs) // EVAL_INTERVAL_MS * EVAL_INTERVAL_MS


def make_case(seed: int, n_exprs: int) -> Case:
    rnd = random.Random(seed)
    series = random_series(rnd)
    gen = ExprGen(rnd)
    seen: set[tuple[str, int]] = set()
    exprs: list[tuple[str, int]] = []
    while len(exprs) < n_exprs:
        e = gen.expression()
        t = rnd.randint(0, (POINTS - 1) * INTERVAL_S // 5) * 5000
        if (e, t) not in seen:
            seen.add((e, t))
            exprs.append((e, t))
    return Case(seed, series, exprs)


def test_file(case: Case) -> dict[str, object]:
    return {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": f"{INTERVAL_S}s",
            "input_series": [
                {"series": s, "values": " ".join("_" if v is None else v for v in vals)} for s, vals in case.series
            ],
            "promql_expr_test": [{"expr": e, "eval_time": f"{t // 1000}s"} for e, t in case.exprs],
        }],
    }


_GOT = re.compile(r'expr: "((?:[^"\\]|\\.)*)", time: (\S+),\n\s+exp: nil\n\s+got: (.*)\n')
_ERR = re.compile(r'expr: "((?:[^"\\]|\\.)*)", time: (\S+), err: (.*)\n')
_SAMPLE = re.compile(r"(\{.*?\}) (\S+?)(?:, |$)")

Result = dict[tuple[tuple[str, str], ...], float] | str  # samples, or an error message


def run_promtool(case: Case, only: list[tuple[str, int]] | None = None) -> dict[tuple[str, int], Result]:
    """promtool's result for every (expression, time) of the case (or of `only`, same cut)."""
    exprs = case.exprs if only is None else only
    doc = test_file(case)
    tests = doc["tests"]
    assert isinstance(tests, list)
    tests[0]["promql_expr_test"] = [{"expr": e, "eval_time": f"{t // 1000}s"} for e, t in exprs]
    # keep the same sample cut: a last expression at the case's latest time, whose result is ignored
    tests[0]["promql_expr_test"].append({"expr": "vector(0)", "eval_time": f"{max(t for _, t in case.exprs) // 1000}s",
                                         "exp_samples": [{"labels": "{}", "value": 0}]})
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "rules.yml").write_text("groups: []\n")
        Path(tmp, "t.yml").write_text(yaml.safe_dump(doc))
        proc = subprocess.run(["promtool", "test", "rules", "t.yml"], cwd=tmp, capture_output=True, text=True,
                              timeout=300)
    out = proc.stdout + proc.stderr
    got: dict[tuple[str, int], Result] = {(e, t): {} for e, t in exprs}
    for m in _GOT.finditer(out):
        key = (json.loads('"' + m[1] + '"'), parse_duration(m[2]))
        got[key] = {parse_metric(s[1])[0]: float(s[2]) for s in _SAMPLE.finditer(m[3])}
    for m in _ERR.finditer(out):
        got[(json.loads('"' + m[1] + '"'), parse_duration(m[2]))] = m[3]
    if proc.returncode != 0 and not _GOT.search(out) and not _ERR.search(out):
        raise RuntimeError(f"promtool output not understood:\n{out[:2000]}")
    return got


def storage_for(case: Case) -> MemoryStorage:
    st = MemoryStorage()
    from tocsin.promql import STALE_NAN

    last = case.last_loaded_ms
    for spec, vals in case.series:
        labels = parse_metric(spec)[0]
        for i, v in enumerate(vals):
            t = i * INTERVAL_S * 1000
            if v is None or t > last:
                continue
            st.add(labels, t, STALE_NAN if v == STALE else float(v))
    return st


def run_tocsin(case: Case, st: MemoryStorage | None = None) -> dict[tuple[str, int], Result]:
    st = st or storage_for(case)
    out: dict[tuple[str, int], Result] = {}
    for e, t in case.exprs:
        try:
            res = instant_query(e, st, t, subquery_step_ms=EVAL_INTERVAL_MS)
        except PromQLError as exc:
            kind = "parse error" if isinstance(exc, PromQLParseError) else "error"
            out[(e, t)] = f"{kind}: {exc}"
            continue
        if isinstance(res, Scalar):
            out[(e, t)] = {(): res.value}
        elif not isinstance(res, Vector):  # promtool: "rule result is not a vector or scalar"
            out[(e, t)] = "error: rule result is not a vector or scalar"
        else:
            out[(e, t)] = {s.labels: s.value for s in res}  # type: ignore[union-attr]
    return out


def _same(a: float, b: float, rel: float) -> bool:
    if a != a and b != b:
        return True
    if a == b:
        return True
    if rel == 0 or math.isinf(a) or math.isinf(b) or a != a or b != b:
        return False
    return abs(a - b) <= rel * max(abs(a), abs(b)) or abs(a - b) < 1e-300


def _is_parse_error(message: str) -> bool:
    """promtool reports a load-time error as "N:M: parse error: ..." (what `check rules` rejects)."""
    return re.match(r"(\d+:\d+: )?parse error", message) is not None


_DUPLICATES = re.compile(r"(found duplicate series for the match group ).*?( on the \w+ hand-side of the operation: )"
                         r"\[.*?\];")


def _eval_message(message: str) -> str:
    """An evaluation error's words, without the series a duplicate-series error names
    (promtool finds the first duplicate in its random load order)."""
    message = message.removeprefix("error: ")
    return _DUPLICATES.sub(lambda m: m[1] + "..." + m[2] + "[...];", message)


def agree(mine: Result, theirs: Result, rel: float = 0.0) -> bool:
    """Same samples (values exactly, or within `rel`); or an error in both, of the same
    kind: refused when loaded (what `check rules` rejects) or failed when evaluated."""
    if isinstance(mine, str) or isinstance(theirs, str):
        if not (isinstance(mine, str) and isinstance(theirs, str)):
            return False
        if _is_parse_error(mine) or _is_parse_error(theirs):  # goyacc's wording is not ours: the kind only
            return _is_parse_error(mine) == _is_parse_error(theirs)
        return _eval_message(mine) == _eval_message(theirs)
    return set(mine) == set(theirs) and all(_same(mine[k], theirs[k], rel) for k in mine)


@dataclass
class Tally:
    compared: int = 0
    exact: int = 0
    order_dependent: int = 0  # exact in some promtool run, not in the first
    close: int = 0  # within 1e-6 only
    errors_both: int = 0
    differ: list[str] = field(default_factory=list)
    close_cases: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.compared += other.compared
        self.exact += other.exact
        self.order_dependent += other.order_dependent
        self.close += other.close
        self.errors_both += other.errors_both
        self.differ += other.differ
        self.close_cases += other.close_cases


def _topk_tie(expr: str, mine: Result, theirs: Result) -> bool:
    """topk/bottomk among equal values keep whichever series promtool loaded first: the
    same values, other labels, is a tie broken differently, not a difference."""
    if ("topk" not in expr and "bottomk" not in expr) or isinstance(mine, str) or isinstance(theirs, str):
        return False
    return sorted(map(repr, mine.values())) == sorted(map(repr, theirs.values()))


def compare_case(case: Case, reruns: int = 4) -> Tally:
    """Compare every expression of the case; those that do not agree exactly are run
    through promtool again (its series order, and so sums and topk ties, vary by run) and
    count as agreeing when some run agrees exactly."""
    theirs = run_promtool(case)
    mine = run_tocsin(case)
    tally = Tally()
    pending: list[tuple[str, int]] = []
    for key in case.exprs:
        tally.compared += 1
        if agree(mine[key], theirs[key]):
            tally.exact += 1
            tally.errors_both += isinstance(mine[key], str)
        else:
            pending.append(key)
    for _ in range(reruns):
        if not pending:
            break
        again = run_promtool(case, pending)
        settled = [k for k in pending if agree(mine[k], again[k])]
        tally.order_dependent += len(settled)
        pending = [k for k in pending if k not in settled]
    ties = [k for k in pending if _topk_tie(k[0], mine[k], theirs[k])]
    tally.order_dependent += len(ties)
    pending = [k for k in pending if k not in ties]
    for k in pending:
        line = f"seed {case.seed}: {k[0]} @ {k[1] // 1000}s\n  promtool: {theirs[k]}\n  tocsin:   {mine[k]}"
        if agree(mine[k], theirs[k], 1e-6):
            tally.close += 1
            tally.close_cases.append(line)
        else:
            tally.differ.append(line)
    return tally
