"""Go's and Prometheus's text rules: floats, quoting, label sets, times, regexp.Expand."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import re2

from tocsin import gofmt


def test_floats_as_strconv_prints_them() -> None:
    values = (0.0, -0.0, 0.1, 100000.0, 1e6, 1234567.5, 1e-5, 0.0001, 1e21, -2.5, math.inf, -math.inf, math.nan)
    assert [gofmt.format_float(v) for v in values] == [
        "0", "-0", "0.1", "100000", "1e+06", "1.2345675e+06", "1e-05", "0.0001", "1e+21", "-2.5", "+Inf", "-Inf",
        "NaN"]
    assert [gofmt.format_float_fixed(v) for v in values] == [
        "0", "-0", "0.1", "100000", "1000000", "1234567.5", "0.00001", "0.0001", "1000000000000000000000", "-2.5",
        "+Inf", "-Inf", "NaN"]
    assert [gofmt.format_float_exponent(v) for v in (0.0, -0.0, 1.5, 1e21, 1e-7, -123.25, math.nan)] == [
        "0E+00", "-0E+00", "1.5E+00", "1E+21", "1E-07", "-1.2325E+02", "NaN"]


def test_quoting_and_label_sets() -> None:
    assert gofmt.escape_label_value('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    assert gofmt.quote('say "hi"\n') == '"say \\"hi\\"\\n"'
    pairs = (("__name__", "up"), ("job", 'a"b'), ("x", "y"))
    assert gofmt.format_label_set(pairs) == '{__name__="up", job="a\\"b", x="y"}'
    assert gofmt.format_label_set(pairs[1:], separator=",") == '{job="a\\"b",x="y"}'
    assert gofmt.format_label_set(()) == "{}"
    assert gofmt.format_metric(pairs) == 'up{job="a\\"b", x="y"}'
    assert gofmt.format_metric(pairs[:1]) == "up"
    assert gofmt.format_metric(pairs[1:2]) == '{job="a\\"b"}'
    assert gofmt.format_metric(()) == "{}"


def test_times() -> None:
    t = datetime(2024, 3, 1, 12, 0, 5, 250000, tzinfo=timezone.utc)
    assert gofmt.rfc3339_nano(t) == "2024-03-01T12:00:05.25Z"
    assert gofmt.rfc3339_nano(t.replace(microsecond=0)) == "2024-03-01T12:00:05Z"
    assert gofmt.rfc3339_millis(t) == "2024-03-01T12:00:05.250Z"
    assert gofmt.rfc3339_millis(t.replace(tzinfo=None)) == "2024-03-01T12:00:05.250Z"
    assert gofmt.rfc3339_millis(t.astimezone(timezone(timedelta(hours=2)))) == "2024-03-01T12:00:05.250Z"
    assert gofmt.rfc3339_millis(None) == gofmt.rfc3339_nano(None) == "0001-01-01T00:00:00Z"
    assert gofmt.time_string(t) == "2024-03-01 12:00:05.25 +0000 UTC"
    assert gofmt.time_string(datetime(999, 1, 2, tzinfo=timezone.utc)) == "0999-01-02 00:00:00 +0000 UTC"


def test_expand_like_go_regexp() -> None:
    m = re2.search("(a)(?P<name>b)(c)?", "xab")
    assert gofmt.expand("$1-${name}-$name-$2-$3-$9-$$-$", m) == "a-b-b-b---$-$"
    assert gofmt.expand("$1x ${1}x ${1 \\1 $", m) == " ax ${1 \\1 $"
