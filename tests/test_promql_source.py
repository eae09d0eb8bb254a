"""PromQL 2.42's lexical rules where the parser library follows a newer PromQL.

Each case is checked against Debian's promtool 2.42 too (`promtool check rules`), so the
expectation is Prometheus's, not ours.
"""

from __future__ import annotations

import subprocess

import pytest

from conftest import require_tool
from tocsin.promql import PromQLParseError, parse

ACCEPTED = [
    r"x{instance=~`10\.0\.0\.1:9100`}",  # backtick strings are raw: the idiomatic regex
    r"x{a=~`1\d*`}",
    "sum by (job) (rate(x[5m:1m] offset -5m))",
    'count_values("v", x) * 5',
    "predict_linear(x[1h], 4*3600) > 1e3",
    "job:rate5m{a='b'} OFFSET 10m",
]
REFUSED = [
    'sum by ("job") (x)',  # Prometheus 3: quoted label names
    'x{"job"=~".+"}',
    'a + on("job") b',
    '{"foo"}',
    "vector(90s)",  # Prometheus 3: durations as numbers
    "x offset 5m + 30s",
]


@pytest.mark.parametrize("expr", ACCEPTED)
def test_accepted_as_in_prometheus_2_42(expr):
    parse(expr)


@pytest.mark.parametrize("expr", REFUSED)
def test_refused_as_in_prometheus_2_42(expr):
    with pytest.raises(PromQLParseError, match="not PromQL 2.42 syntax"):
        parse(expr)


def test_backtick_regex_means_what_it_says():
    """The backtick string is raw: `\\.` is a regex escape, not a string escape."""
    raw = parse(r"x{a=~`1\.5`}")
    quoted = parse(r'x{a=~"1\\.5"}')
    assert [(m.name, m.op, m.value) for m in raw.matchers] == [(m.name, m.op, m.value) for m in quoted.matchers]
    assert raw.matchers[1].value == "1\\.5"


def test_promtool_agrees(tmp_path):
    promtool = require_tool("promtool")
    for expected_ok, exprs in ((True, ACCEPTED), (False, REFUSED)):
        for i, expr in enumerate(exprs):
            path = tmp_path / f"r{int(expected_ok)}{i}.yml"
            quoted = expr.replace("'", "''")
            path.write_text(f"groups:\n  - name: g\n    rules:\n      - record: r\n        expr: '{quoted}'\n")
            proc = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
            assert (proc.returncode == 0) == expected_ok, (expr, proc.stdout, proc.stderr)
