"""The Prometheus `.test` reader and the expanding series notation."""

from __future__ import annotations

import math

import pytest

from tocsin.promql import is_stale
from tocsin.promql.errors import TestFileError
from tocsin.promql.testfile import (
    ClearCommand,
    EvalCommand,
    LoadCommand,
    parse_duration,
    parse_metric,
    parse_series_line,
    parse_series_values,
    parse_test_file,
)


def test_expanding_notation() -> None:
    assert parse_series_values("0+10x3") == [0, 10, 20, 30]
    assert parse_series_values("1-2x3") == [1, -1, -3, -5]
    assert parse_series_values("-1x2") == [-1, -1, -1]
    assert parse_series_values("0x10") == [0.0] * 11  # not hex: 0 repeated
    assert parse_series_values("_ _x2 7") == [None, None, None, 7]
    got = parse_series_values("1 Inf -Inf NaN stale")
    assert got[:3] == [1, math.inf, -math.inf]
    assert math.isnan(got[3]) and not is_stale(got[3])  # type: ignore[arg-type]
    assert is_stale(got[4])  # type: ignore[arg-type]


def test_increments_accumulate_like_prometheus() -> None:
    # Repeated addition, not a + i*b: the float rounding must match.
    assert parse_series_values("0+0.1x3")[3] == 0.1 + 0.1 + 0.1


def test_invalid_values_are_reported() -> None:
    with pytest.raises(TestFileError):
        parse_series_values("1+x3")
    with pytest.raises(TestFileError):
        parse_series_values("abc")


def test_metric_parsing() -> None:
    labels, rest = parse_metric('http_requests{job="api", path="/a\\"b"} 1 2')
    assert dict(labels) == {"__name__": "http_requests", "job": "api", "path": '/a"b'}
    assert rest.split() == ["1", "2"]
    assert parse_metric("{} 3")[0] == ()
    assert parse_series_line("up 1+1x2") == ((("__name__", "up"),), [1, 2, 3])


def test_durations() -> None:
    assert parse_duration("5m") == 300_000
    assert parse_duration("1h30m") == 5_400_000
    assert parse_duration("100ms") == 100
    assert parse_duration("0") == 0
    with pytest.raises(TestFileError):
        parse_duration("5x")


def test_test_file_commands() -> None:
    text = """
# a comment
load 5m
  m{a="b"} 0+1x2
  n 1

eval instant at 10m m
  {__name__="m", a="b"} 2

eval_ordered instant at 5m sort(n)
  n 1

eval_fail instant at 0 m / on() group_left n

eval instant at 1m 1 + 1
  2

clear
"""
    cmds = parse_test_file(text)
    assert [type(c) for c in cmds] == [LoadCommand, EvalCommand, EvalCommand, EvalCommand, EvalCommand, ClearCommand]
    load = cmds[0]
    assert isinstance(load, LoadCommand) and load.interval_ms == 300_000 and load.line == 3
    assert list(load.samples())[:3] == [((("__name__", "m"), ("a", "b")), 0, 0), ((("__name__", "m"), ("a", "b")), 300_000, 1), ((("__name__", "m"), ("a", "b")), 600_000, 2)]
    ev = cmds[1]
    assert isinstance(ev, EvalCommand) and ev.at_ms == 600_000 and ev.expected[0].value == 2 and ev.line == 7
    assert cmds[2].ordered and cmds[3].fail  # type: ignore[union-attr]
    scalar = cmds[4]
    assert isinstance(scalar, EvalCommand) and scalar.expected[0].labels is None and scalar.expected[0].value == 2
