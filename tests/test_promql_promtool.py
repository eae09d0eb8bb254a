"""Differential check against Debian 12's promtool (Prometheus 2.42).

`promtool test rules` evaluates `promql_expr_test` expressions and, when the expected
samples do not match, prints what Prometheus actually computed. Expecting nothing
turns it into an oracle: every expression here is evaluated by both engines on the
same input series and the results must agree. Covers corners the upstream test files
do not (Go regexp templates, float formatting, NaN/Inf in aggregations, @ with
subqueries, ...).
"""

from __future__ import annotations

import json
import math
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import require_tool
from tocsin.promql import MemoryStorage, PromQLError, Scalar, instant_query
from tocsin.promql.testfile import parse_duration, parse_metric, parse_series_line

pytestmark = pytest.mark.external

INTERVAL = "10s"
SERIES = [
    ('a{job="x",inst="1"}', "1+1x30"),
    ('a{job="x",inst="2"}', "5x30"),
    ('a{job="y",inst="1"}', " ".join(["NaN"] * 31)),
    ('b{job="x"}', "2x30"),
    ('b{job="y"}', " ".join(["Inf"] * 31)),
    ('big{i="1"}', "1.7976931348623157e+308x30"),
    ('big{i="2"}', "1.7976931348623157e+308x30"),
    ('c{job="a",src="host-42"}', "0+10x12 5+10x12"),
    ('g{job="a",le="0.1"}', "1 2 3 NaN 5 -1 7 1e21 0.1 0.3 -0.5"),
    ('g{job="b",le="+Inf"}', "3x30"),
    ('h_bucket{le="0.5"}', "0+1x30"),
    ('h_bucket{le="1"}', "0+3x30"),
    ('h_bucket{le="+Inf"}', "0+4x30"),
    ("st", "1 2 stale 4 _ _ 7"),
]
EXPRS = [
    ('label_replace(c, "dst", "$1x${1}y$$z$9$name", "src", "(?P<name>\\\\w+)-(\\\\d+)")', "1m"),
    ('label_replace(a, "inst", "", "inst", "1")', "1m"),
    ('label_join(c, "new", "-", "job", "src", "nope")', "2m"),
    ('count_values("v", g)', "100s"),
    ('count_values by (job) ("val", a)', "1m"),
    ("predict_linear(c[1m], 60) + deriv(c[1m])", "3m"),
    ("stddev_over_time(g[1m]) + stdvar_over_time(g[1m])", "100s"),
    ("quantile_over_time(0.3, g[1m])", "100s"),
    ("histogram_quantile(0.3, rate(h_bucket[1m]))", "3m"),
    ("histogram_quantile(0.99, h_bucket)", "3m"),
    ("histogram_quantile(-1, h_bucket)", "3m"),
    ("month(vector(-1000000)) + day_of_week(vector(1e10)) + day_of_year(vector(951782400))", "1m"),
    ("rate(c[2m]) - increase(c[1m30s]) + irate(c[1m])", "2m5s"),
    ("changes(g[2m]) + resets(g[2m]) + delta(g[1m]) + idelta(g[1m])", "100s"),
    ("round(g, 0.3) + clamp(g, 0.5, 2) * sgn(g)", "100s"),
    ("sort_desc(g)", "100s"),
    ("st", "45s"),
    ("st", "25s"),
    ("last_over_time(st[1m]) + present_over_time(st[10s])", "40s"),
    ("timestamp(st)", "3m"),
    ("sum_over_time(rate(c[1m])[3m:20s] offset -1m)", "3m"),
    ("sum_over_time(a[1m:] @ 60) + max_over_time(c[1m:7s])", "2m"),
    ('a{inst="1"} offset 10s @ 90', "1m"),
    ("a * on(job) group_left b", "1m"),
    ("a > bool on(job) group_left b", "1m"),
    ("a or ignoring(inst) b", "1m"),
    ("a unless on(job) b", "1m"),
    ("avg(big) + avg_over_time(big[30s])", "1m"),
    ("sum(big) + avg(b) + max(a) + min(a) + stddev(big) + stdvar(a)", "1m"),
    ("topk(2, a) + 0", "1m"),
    ("quantile by (job) (0.5, a) + quantile(2, a)", "1m"),
    ("-a + scalar(vector(1)) * a", "1m"),
    ("vector(time()) - timestamp(a)", "1m"),
    ("g ^ g % 3 atan2 g", "100s"),
    ("a / on(job) b", "1m"),  # many-to-one without group_left: both must fail
    ("b / on(job) group_left a", "1m"),
]


def _promtool_results(tmp: Path) -> tuple[dict[tuple[str, int], str], set[tuple[str, int]]]:
    doc = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": INTERVAL,
                "input_series": [{"series": s, "values": v} for s, v in SERIES],
                "promql_expr_test": [{"expr": e, "eval_time": t} for e, t in EXPRS],
            }
        ],
    }
    (tmp / "rules.yml").write_text("groups: []\n")
    (tmp / "t.yml").write_text(yaml.safe_dump(doc))
    proc = subprocess.run(["promtool", "test", "rules", "t.yml"], cwd=tmp, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    got: dict[tuple[str, int], str] = {}
    for m in re.finditer(r'expr: "((?:[^"\\]|\\.)*)", time: (\S+),\n\s+exp: nil\n\s+got: (.*)\n', out):
        got[(json.loads('"' + m[1] + '"'), parse_duration(m[2]))] = m[3]
    errs = {
        (json.loads('"' + m[1] + '"'), parse_duration(m[2]))
        for m in re.finditer(r'expr: "((?:[^"\\]|\\.)*)", time: (\S+), err:', out)
    }
    return got, errs


def _close(a: float, b: float) -> bool:
    if math.isnan(a) and math.isnan(b):
        return True
    return a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))


def test_same_results_as_promtool(tmp_path: Path) -> None:
    require_tool("promtool")  # skips locally without it; fails in CI
    got, errs = _promtool_results(tmp_path)
    step = parse_duration(INTERVAL)
    parsed = [parse_series_line(f"{spec} {vals}") for spec, vals in SERIES]
    # promtool loads input samples only up to the last evaluation_interval step not
    # after the latest eval_time of the group, then runs every expression; do the same.
    last_ms = max(parse_duration(t) for _, t in EXPRS) // 60_000 * 60_000
    st = MemoryStorage()
    for labels, values in parsed:
        for i, v in enumerate(values):
            if v is not None and i * step <= last_ms:
                st.add(labels, i * step, v)
    problems = []
    for expr, at in EXPRS:
        key = (expr, parse_duration(at))
        try:
            res = instant_query(expr, st, key[1], subquery_step_ms=60_000)
        except PromQLError as exc:
            if key not in errs:
                problems.append(f"{expr} @ {at}: we failed ({exc}), Prometheus did not")
            continue
        if key in errs:
            problems.append(f"{expr} @ {at}: Prometheus failed, we did not")
            continue
        mine = {(): res.value} if isinstance(res, Scalar) else {s.labels: s.value for s in res}  # type: ignore[union-attr]
        theirs = {}
        for m in re.finditer(r"(\{.*?\}) (\S+?)(?:, |$)", got.get(key, "")):
            theirs[parse_metric(m[1])[0]] = float(m[2])
        if set(mine) != set(theirs) or not all(_close(mine[k], theirs[k]) for k in mine):
            problems.append(f"{expr} @ {at}:\n  promtool: {got.get(key)}\n  tocsin:   {mine}")
    assert len(got) + len(errs) > len(EXPRS) // 2, "promtool output not understood"
    assert not problems, "\n".join(problems)
