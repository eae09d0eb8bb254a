"""Prometheus 2.42's own PromQL test cases, run against tocsin's engine.

The data (Apache-2.0, from the Prometheus repository) lives outside this repository in
`../shared/promql-testdata/prometheus-v2.42.0/` or wherever TOCSIN_PROMQL_TESTDATA
points; without it these tests are skipped. `cases.tsv` there lists every `eval`
command with a tier; the `strict` and `extended` tiers are the subset tocsin supports.

Each case is checked the way Prometheus' harness (promql/test.go) does: an instant
query at T, then a range query from T-1m to T+1m with a 1m step whose T step must give
the same result (order is only checked for eval_ordered, and only on the instant query).
"""

from __future__ import annotations

import csv
import functools
import math
import os
from pathlib import Path

import pytest

from conftest import IN_CI
from tocsin.gofmt import format_metric
from tocsin.promql import (
    MemoryStorage,
    PromQLError,
    Scalar,
    Vector,
    instant_query,
    range_query,
)
from tocsin.promql.testfile import ClearCommand, EvalCommand, LoadCommand, parse_test_file

REPO = Path(__file__).resolve().parents[1]
DATA = Path(
    os.environ.get("TOCSIN_PROMQL_TESTDATA")
    or REPO.parent / "shared" / "promql-testdata" / "prometheus-v2.42.0"
)
TIERS = {"strict", "extended"}
LOOKBACK_MS = 300_000
SUBQUERY_STEP_MS = 60_000
MIN_NORMAL = 2.2250738585072014e-308
EPSILON = 1e-6


def _case_params() -> list[object]:
    manifest = DATA / "cases.tsv"
    if not manifest.is_file():
        return [pytest.param(None, 0, id="testdata-missing")]
    with manifest.open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if r["tier"] in TIERS]
    return [pytest.param(r["file"], int(r["line"]), id=f"{r['file']}:{r['line']}") for r in rows]


@functools.lru_cache(maxsize=None)
def _file_commands(name: str) -> tuple[dict[int, tuple[EvalCommand, tuple[int, ...]]], list[LoadCommand]]:
    """Eval commands by line, each with the indexes of the loads visible to it."""
    cmds = parse_test_file((DATA / name).read_text(encoding="utf-8"))
    loads: list[LoadCommand] = []
    active: list[int] = []
    evals: dict[int, tuple[EvalCommand, tuple[int, ...]]] = {}
    for c in cmds:
        if isinstance(c, ClearCommand):
            active = []
        elif isinstance(c, LoadCommand):
            loads.append(c)
            active.append(len(loads) - 1)
        else:
            evals[c.line] = (c, tuple(active))
    return evals, loads


@functools.lru_cache(maxsize=64)
def _storage(name: str, load_ids: tuple[int, ...]) -> MemoryStorage:
    _, loads = _file_commands(name)
    st = MemoryStorage()
    for i in load_ids:
        for labels, t, v in loads[i].samples():
            st.add(labels, t, v)
    return st


def almost_equal(a: float, b: float) -> bool:
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    diff = abs(a - b)
    if a == 0 or b == 0 or diff < MIN_NORMAL:
        return diff < EPSILON * MIN_NORMAL
    return diff / (abs(a) + abs(b)) < EPSILON


def _compare(cmd: EvalCommand, result: object, ordered: bool) -> None:
    if isinstance(result, Scalar):
        assert len(cmd.expected) == 1 and cmd.expected[0].labels is None, f"got scalar {result.value}"
        want = cmd.expected[0].value
        assert almost_equal(want, result.value), f"expected scalar {want}, got {result.value}"
        return
    assert isinstance(result, Vector), f"unexpected result type {type(result).__name__}"
    expected = {e.labels: (pos, e.value) for pos, e in enumerate(cmd.expected)}
    got_labels = [s.labels for s in result]
    assert len(set(got_labels)) == len(got_labels), "result has duplicate label sets"
    for pos, s in enumerate(result):
        assert s.labels in expected, f"unexpected metric {format_metric(s.labels)} => {s.value} in result"
        want_pos, want = expected[s.labels]
        if ordered:
            assert want_pos == pos, f"{format_metric(s.labels)} at position {pos}, expected {want_pos}"
        assert almost_equal(want, s.value), f"expected {want} for {format_metric(s.labels)}, got {s.value}"
    missing = [format_metric(k) for k in expected if k not in set(got_labels)]
    assert not missing, f"expected metrics not found: {missing}"


@pytest.mark.parametrize(("file", "line"), _case_params())
def test_prometheus_case(file: str | None, line: int) -> None:
    if file is None:
        if IN_CI:
            pytest.fail(f"PromQL conformance data not found at {DATA} (CI has it beside the repository)")
        pytest.skip(f"PromQL conformance data not found at {DATA}")
    evals, _ = _file_commands(file)
    cmd, load_ids = evals[line]
    storage = _storage(file, load_ids)
    t = cmd.at_ms
    kw = {"lookback_ms": LOOKBACK_MS, "subquery_step_ms": SUBQUERY_STEP_MS}

    if cmd.fail:
        with pytest.raises(PromQLError):
            instant_query(cmd.expr, storage, t, **kw)
        return

    result = instant_query(cmd.expr, storage, t, **kw)
    _compare(cmd, result, cmd.ordered)

    matrix = range_query(cmd.expr, storage, t - 60_000, t + 60_000, 60_000, **kw)
    if cmd.ordered:
        return  # like Prometheus: range results have no defined order
    at_t = Vector()
    for series in matrix:
        for ts, v in zip(series.timestamps, series.values, strict=True):
            if ts == t:
                at_t.append((series.labels, v))  # type: ignore[arg-type]
                break
    if isinstance(result, Scalar):
        assert at_t, "range query gave no value at T for a scalar expression"
        _compare(cmd, Scalar(at_t[0][1]), False)
    else:
        from tocsin.promql import Sample

        _compare(cmd, Vector(Sample(lbl, v) for lbl, v in at_t), False)
