"""Unit tests for the tricky corners of the PromQL engine.

Expected numbers are worked out by hand from Prometheus 2.42's documented algorithms
(see the comments), independently of the conformance data.
"""

from __future__ import annotations

import math

import pytest

from tocsin.promql import (
    STALE_NAN,
    MemoryStorage,
    PromQLError,
    PromQLEvalError,
    PromQLParseError,
    Scalar,
    String,
    Vector,
    from_dict,
    instant_query,
    parse,
    range_query,
)

S = 1000  # ms per second


def store(series: dict[str, list[tuple[float, float]]]) -> MemoryStorage:
    """Series given as 'name{a="b"}' -> [(seconds, value), ...]."""
    st = MemoryStorage()
    for spec, samples in series.items():
        name, _, rest = spec.partition("{")
        labels = {"__name__": name}
        if rest:
            for pair in rest.rstrip("}").split(","):
                k, v = pair.split("=")
                labels[k.strip()] = v.strip().strip('"')
        for t, v in samples:
            st.add(from_dict(labels), int(t * S), v)
    return st


def one(result: object) -> float:
    assert isinstance(result, Vector), result
    assert len(result) == 1, result
    return result[0].value


def values(result: object) -> dict[tuple[tuple[str, str], ...], float]:
    assert isinstance(result, Vector), result
    return {s.labels: s.value for s in result}


# ------------------------------------------------------------------ extrapolation


def test_rate_exact_window_needs_no_extrapolation() -> None:
    st = store({"c": [(t, t) for t in range(0, 61, 10)]})
    assert one(instant_query("rate(c[1m])", st, 60 * S)) == pytest.approx(1.0)
    assert one(instant_query("increase(c[1m])", st, 60 * S)) == pytest.approx(60.0)


def test_rate_extrapolates_to_window_edges_when_close() -> None:
    # Samples 5s..55s: 5s from each edge, below 1.1 x the 10s spacing, so the 50 seen
    # is stretched over the whole 60s window: 60.
    st = store({"c": [(t, t) for t in range(5, 56, 10)]})
    assert one(instant_query("increase(c[1m])", st, 60 * S)) == pytest.approx(60.0)
    assert one(instant_query("rate(c[1m])", st, 60 * S)) == pytest.approx(1.0)


def test_counter_extrapolation_stops_at_zero() -> None:
    # 1, 11, 21, 31 at 30..60s: extrapolating 30s back would go below zero; the zero
    # point is 1s before the first sample, so the interval is 30 + 1 = 31s.
    st = store({"c": [(30, 1), (40, 11), (50, 21), (60, 31)]})
    assert one(instant_query("increase(c[1m])", st, 60 * S)) == pytest.approx(31.0)


def test_extrapolation_limited_to_half_interval_when_far_from_edge() -> None:
    # 100..130 at 30..60s: start gap 30s >= 11s, so only avg/2 = 5s is added: 30*35/30.
    st = store({"c": [(30, 100), (40, 110), (50, 120), (60, 130)]})
    assert one(instant_query("increase(c[1m])", st, 60 * S)) == pytest.approx(35.0)


def test_counter_reset_adds_value_before_reset() -> None:
    st = store({"c": [(0, 0), (10, 10), (20, 20), (30, 5), (40, 15)]})
    assert one(instant_query("increase(c[40s])", st, 40 * S)) == pytest.approx(35.0)
    assert one(instant_query("resets(c[40s])", st, 40 * S)) == 1.0
    # delta() treats it as a gauge: no reset correction.
    assert one(instant_query("delta(c[40s])", st, 40 * S)) == pytest.approx(15.0)


def test_rate_needs_two_samples() -> None:
    st = store({"c": [(50, 5)]})
    assert instant_query("rate(c[1m])", st, 60 * S) == []


def test_irate_uses_last_two_samples_and_handles_reset() -> None:
    st = store({"c": [(0, 0), (10, 100), (20, 200), (30, 10)]})
    assert one(instant_query("irate(c[1m])", st, 30 * S)) == pytest.approx(1.0)  # reset: 10/10s
    assert one(instant_query("idelta(c[1m])", st, 30 * S)) == pytest.approx(-190.0)


def test_rate_drops_metric_name_and_last_over_time_keeps_it() -> None:
    st = store({"c{job=a}": [(0, 0), (10, 10)]})
    (s,) = instant_query("rate(c[1m])", st, 10 * S)  # type: ignore[misc]
    assert dict(s.labels) == {"job": "a"}
    (s,) = instant_query("last_over_time(c[1m])", st, 10 * S)  # type: ignore[misc]
    assert dict(s.labels) == {"__name__": "c", "job": "a"}


# ------------------------------------------------------------------ staleness and lookback


def test_stale_marker_ends_series_for_lookback() -> None:
    st = store({"m": [(0, 1), (10, STALE_NAN)]})
    assert one(instant_query("m", st, 5 * S)) == 1.0
    assert instant_query("m", st, 15 * S) == []
    # Range selectors skip the marker but keep the real sample.
    assert one(instant_query("count_over_time(m[1m])", st, 20 * S)) == 1.0


def test_plain_nan_is_data_not_staleness() -> None:
    st = store({"m": [(0, math.nan)]})
    assert math.isnan(one(instant_query("m", st, 10 * S)))
    assert one(instant_query("count_over_time(m[1m])", st, 10 * S)) == 1.0


def test_lookback_window_is_closed() -> None:
    st = store({"m": [(0, 7)]})
    assert one(instant_query("m", st, 300 * S)) == 7.0
    assert instant_query("m", st, 300 * S + 1) == []
    assert one(instant_query("m", st, 60 * S, lookback_ms=60 * S)) == 7.0
    assert instant_query("m", st, 61 * S, lookback_ms=60 * S) == []


def test_range_window_is_closed_at_both_ends() -> None:
    st = store({"m": [(0, 1), (30, 1), (60, 1)]})
    assert one(instant_query("count_over_time(m[1m])", st, 60 * S)) == 3.0
    assert one(instant_query("count_over_time(m[1m])", st, 60 * S + 1)) == 2.0


def test_offset_and_negative_offset() -> None:
    st = store({"m": [(t, t) for t in range(0, 601, 60)]})
    assert one(instant_query("m offset 2m", st, 300 * S)) == 180.0
    assert one(instant_query("m offset -2m", st, 300 * S)) == 420.0


def test_at_modifier_start_end_in_range_query() -> None:
    st = store({"m": [(t, t) for t in range(0, 601, 60)]})
    mat = range_query("m @ end()", st, 0, 600 * S, 300 * S)
    assert [list(s.values) for s in mat] == [[600.0, 600.0, 600.0]]
    mat = range_query("m @ start()", st, 120 * S, 600 * S, 240 * S)
    assert [list(s.values) for s in mat] == [[120.0, 120.0, 120.0]]
    assert one(instant_query("m @ 60", st, 600 * S)) == 60.0


def test_subquery_steps_are_aligned_to_multiples_of_step() -> None:
    st = store({"m": [(t, t / 10) for t in range(0, 1001, 10)]})
    # Window [40s, 100s], 25s steps at absolute multiples: 50, 75, 100.
    assert one(instant_query("count_over_time(m[1m:25s])", st, 100 * S)) == 3.0
    # Same number as Prometheus' own subquery test: 97+98+99+100.
    assert one(instant_query("sum_over_time(m[30s:10s])", st, 1000 * S)) == 394.0
    # Default step: 1m here.
    assert one(instant_query("count_over_time(m[5m:])", st, 1000 * S, subquery_step_ms=60 * S)) == 5.0


def test_timestamp_returns_sample_time_for_selectors() -> None:
    st = store({"m": [(10, 1)]})
    assert one(instant_query("timestamp(m)", st, 100 * S)) == 10.0
    assert one(instant_query("timestamp(m + 0)", st, 100 * S)) == 100.0


# ------------------------------------------------------------------ regex matchers


def test_regex_matchers_are_fully_anchored() -> None:
    st = store({'m{job="api"}': [(0, 1)], 'm{job="api-server"}': [(0, 2)]})
    assert one(instant_query('m{job=~"api"}', st, 0)) == 1.0
    assert one(instant_query('m{job!~"api"}', st, 0)) == 2.0
    assert len(instant_query('m{job=~"api.*"}', st, 0)) == 2  # type: ignore[arg-type]
    assert instant_query('m{job=~"pi"}', st, 0) == []


def test_regex_dot_does_not_match_newline_like_prometheus_2() -> None:
    st = MemoryStorage()
    st.add(from_dict({"__name__": "m", "v": "a\nb"}), 0, 1)
    assert instant_query('m{v=~"a.b"}', st, 0) == []
    assert one(instant_query('m{v=~"(?s)a.b"}', st, 0)) == 1.0


def test_regex_and_missing_labels() -> None:
    st = store({"m": [(0, 1)]})
    assert one(instant_query('m{foo=~""}', st, 0)) == 1.0
    assert one(instant_query('m{foo!="x"}', st, 0)) == 1.0
    assert instant_query('m{foo=~".+"}', st, 0) == []


def test_non_re2_regex_is_rejected_at_parse_time() -> None:
    with pytest.raises(PromQLParseError, match="regex|regular expression"):
        parse(r'm{a=~"(x)\\1"}')
    with pytest.raises(PromQLParseError):
        parse('m{a=~"(?=x)"}')


# ------------------------------------------------------------------ label functions


def test_label_replace_go_template_expansion() -> None:
    st = store({'m{src="host-42"}': [(0, 1)]})
    (s,) = instant_query('label_replace(m, "dst", "$1-${2}x$$", "src", "(\\\\w+)-(\\\\d+)")', st, 0)  # type: ignore[misc]
    assert dict(s.labels)["dst"] == "host-42x$"
    # No match: unchanged. "$1x" names a group "1x", which does not exist: empty.
    (s,) = instant_query('label_replace(m, "dst", "$1x", "src", "(.*)")', st, 0)  # type: ignore[misc]
    assert "dst" not in dict(s.labels)
    (s,) = instant_query('label_replace(m, "dst", "v", "src", "nomatch")', st, 0)  # type: ignore[misc]
    assert "dst" not in dict(s.labels)


def test_label_replace_errors() -> None:
    """Bad regexes and label names fail each evaluation, even of an empty vector, but the
    expression loads: `promtool check rules` 2.42 accepts it."""
    parse('label_replace(m, "dst", "", "src", "(.*")')
    with pytest.raises(PromQLEvalError, match="invalid regular expression in label_replace"):
        instant_query('label_replace(nope, "dst", "", "src", "(.*")', MemoryStorage(), 0)
    with pytest.raises(PromQLEvalError, match="invalid destination label name"):
        instant_query('label_replace(nope, "bad-name", "", "src", "(.*)")', MemoryStorage(), 0)
    with pytest.raises(PromQLEvalError, match='invalid label name "a b"'):
        instant_query('count_values("a b", nope)', MemoryStorage(), 0)
    st = store({'m{src="a"}': [(0, 1)], 'm{src="b"}': [(0, 2)]})
    with pytest.raises(PromQLEvalError, match="vector cannot contain metrics with the same labelset"):
        instant_query('label_replace(m, "src", "", "", "")', st, 0)


def test_label_join() -> None:
    st = store({'m{a="x",b="y"}': [(0, 1)]})
    (s,) = instant_query('label_join(m, "j", "-", "a", "b", "c")', st, 0)  # type: ignore[misc]
    assert dict(s.labels)["j"] == "x-y-"
    with pytest.raises(PromQLEvalError, match=r"invalid source label name in label_join\(\): not-valid"):
        instant_query('label_join(nope, "j", "-", "not-valid")', MemoryStorage(), 0)


def test_same_labelset_after_dropping_name_is_an_error() -> None:
    st = store({"a": [(0, 1)], "b": [(0, 2)]})
    with pytest.raises(PromQLEvalError, match="same labelset"):
        instant_query('-{__name__=~"a|b"}', st, 0)
    with pytest.raises(PromQLEvalError, match="same labelset"):
        instant_query('abs({__name__=~"a|b"})', st, 0)
    # Comparisons without bool keep the name, so no collision.
    assert len(instant_query('{__name__=~"a|b"} > 0', st, 0)) == 2  # type: ignore[arg-type]


# ------------------------------------------------------------------ binary operators


def test_many_to_one_needs_group_left() -> None:
    st = store(
        {
            'req{job="a",path="/x"}': [(0, 10)],
            'req{job="a",path="/y"}': [(0, 20)],
            'limit{job="a",owner="me"}': [(0, 100)],
        }
    )
    with pytest.raises(PromQLEvalError, match="many-to-one matching must be explicit"):
        instant_query("req / on(job) limit", st, 0)
    got = values(instant_query("req / on(job) group_left(owner) limit", st, 0))
    assert got == {
        (("job", "a"), ("owner", "me"), ("path", "/x")): 0.1,
        (("job", "a"), ("owner", "me"), ("path", "/y")): 0.2,
    }
    with pytest.raises(PromQLEvalError, match="duplicate series for the match group"):
        instant_query("limit / on(job) group_left req", st, 0)


def test_one_to_one_on_keeps_only_on_labels() -> None:
    st = store({'a{x="1",y="2"}': [(0, 3)], 'b{x="1",y="9"}': [(0, 4)]})
    assert values(instant_query("a + on(x) b", st, 0)) == {(("x", "1"),): 7.0}
    assert values(instant_query("a > bool ignoring(y) b", st, 0)) == {(("x", "1"),): 0.0}


def test_set_operators() -> None:
    st = store({'a{k="1"}': [(0, 1)], 'a{k="2"}': [(0, 2)], 'b{k="2"}': [(0, 5)], 'b{k="3"}': [(0, 6)]})
    assert len(instant_query("a and b", st, 0)) == 1  # type: ignore[arg-type]
    assert len(instant_query("a unless b", st, 0)) == 1  # type: ignore[arg-type]
    assert len(instant_query("a or b", st, 0)) == 3  # type: ignore[arg-type]


def test_scalar_arithmetic_follows_ieee_like_go() -> None:
    def sc(q: str) -> float:
        r = instant_query(q, MemoryStorage(), 0)
        assert isinstance(r, Scalar)
        return r.value

    assert sc("1 / 0") == math.inf
    assert sc("-1 / 0") == -math.inf
    assert math.isnan(sc("0 / 0"))
    assert math.isnan(sc("5 % 0"))
    assert sc("-5 % 3") == -2.0
    assert sc("2 ^ 1024") == math.inf
    assert math.isnan(sc("(-8) ^ (1/3)"))
    assert sc("0 ^ -1") == math.inf
    assert sc("2 > bool 1") == 1.0


def test_comparison_with_scalar_on_left_keeps_vector_value() -> None:
    st = store({"m": [(0, 5)]})
    (s,) = instant_query("1 < m", st, 0)  # type: ignore[misc]
    assert s.value == 5.0 and dict(s.labels)["__name__"] == "m"


# ------------------------------------------------------------------ aggregations


def test_count_values_formats_like_go() -> None:
    st = store({'m{i="1"}': [(0, 1)], 'm{i="2"}': [(0, 1.5)], 'm{i="3"}': [(0, 1e21)], 'm{i="4"}': [(0, 1)]})
    got = values(instant_query('count_values("v", m)', st, 0))
    assert got == {(("v", "1"),): 2.0, (("v", "1.5"),): 1.0, (("v", "1000000000000000000000"),): 1.0}


def test_topk_orders_and_puts_nan_last() -> None:
    st = store({'m{i="1"}': [(0, 1)], 'm{i="2"}': [(0, math.nan)], 'm{i="3"}': [(0, 3)]})
    got = instant_query("topk(3, m)", st, 0)
    assert [dict(s.labels)["i"] for s in got] == ["3", "1", "2"]  # type: ignore[union-attr]
    got = instant_query("bottomk(2, m)", st, 0)
    assert [dict(s.labels)["i"] for s in got] == ["1", "3"]  # type: ignore[union-attr]


def test_without_drops_name_and_by_keeps_listed() -> None:
    st = store({'m{a="1",b="x"}': [(0, 1)], 'm{a="1",b="y"}': [(0, 2)]})
    assert values(instant_query("sum without (b) (m)", st, 0)) == {(("a", "1"),): 3.0}
    assert values(instant_query("max by (b) (m)", st, 0)) == {(("b", "x"),): 1.0, (("b", "y"),): 2.0}


def test_absent_builds_labels_from_equality_matchers() -> None:
    st = MemoryStorage()
    got = values(instant_query('absent(nope{job="a", env=~"p.*", x="1", x="2"})', st, 0))
    assert got == {(("job", "a"),): 1.0}
    assert values(instant_query('absent_over_time(nope{job="a"}[5m])', st, 0)) == {(("job", "a"),): 1.0}


# ------------------------------------------------------------------ API and validation


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("double_exponential_smoothing(m[5m], 0.1, 0.1)", "double_exponential_smoothing"),  # 3.x's holt_winters
        ("mad_over_time(m[5m])", 'unsupported function "mad_over_time"'),
        ("histogram_stddev(m)", 'unsupported function "histogram_stddev"'),  # 2.50
        ("limitk(1, m)", 'unsupported aggregation "limitk"'),
        ('{"my.metric"}', "not PromQL 2.42 syntax"),  # promtool 2.42: unexpected string in label matching
        ('sum by ("a.b") (m)', "not PromQL 2.42 syntax"),  # ... in grouping opts
        ("rate(m)", "expected type matrix"),
        ("1 > 2", "BOOL"),
        ("{}", "at least one non-empty matcher"),
    ],
)
def test_unsupported_or_invalid_is_rejected_at_parse(expr: str, message: str) -> None:
    with pytest.raises(PromQLParseError, match=message):
        parse(expr)


def test_errors_share_a_base_class() -> None:
    assert issubclass(PromQLParseError, PromQLError)
    assert issubclass(PromQLEvalError, PromQLError)


def test_range_query_shapes() -> None:
    st = store({'m{k="b"}': [(0, 1)], 'm{k="a"}': [(0, 2)]})
    mat = range_query("m", st, 0, 120 * S, 60 * S)
    assert [dict(s.labels)["k"] for s in mat] == ["a", "b"]
    assert list(mat[0].timestamps) == [0, 60 * S, 120 * S]
    mat = range_query("time()", st, 0, 120 * S, 60 * S)
    assert len(mat) == 1 and mat[0].labels == () and list(mat[0].values) == [0.0, 60.0, 120.0]
    with pytest.raises(PromQLEvalError):
        range_query('"text"', st, 0, 60 * S, 60 * S)
    assert instant_query('"text"', st, 0) == String("text")


def test_instant_query_of_range_selector_returns_matrix() -> None:
    st = store({"m": [(0, 1), (30, 2), (60, 3)]})
    mat = instant_query("m[1m]", st, 60 * S)
    assert [list(s.timestamps) for s in mat] == [[0, 30 * S, 60 * S]]  # type: ignore[union-attr]


def test_date_functions() -> None:
    st = store({"t": [(0, 1136239445)]})  # 2006-01-02T22:04:05Z, a Monday
    q = lambda f: one(instant_query(f"{f}(t)", st, 0))  # noqa: E731
    assert (q("year"), q("month"), q("day_of_month"), q("hour"), q("minute")) == (2006, 1, 2, 22, 4)
    assert (q("day_of_week"), q("day_of_year"), q("days_in_month")) == (1, 2, 31)
    assert one(instant_query("minute()", st, 125 * S)) == 2.0


def test_histogram_quantile_interpolates_within_bucket() -> None:
    st = store(
        {
            'h_bucket{le="0.1"}': [(0, 10)],
            'h_bucket{le="0.5"}': [(0, 30)],
            'h_bucket{le="+Inf"}': [(0, 40)],
        }
    )
    # rank 20 falls in (0.1, 0.5]: 0.1 + 0.4 * (20-10)/(30-10) = 0.3
    assert one(instant_query("histogram_quantile(0.5, h_bucket)", st, 0)) == pytest.approx(0.3)
    # rank 36 is in the +Inf bucket: the highest finite bound is returned.
    assert one(instant_query("histogram_quantile(0.9, h_bucket)", st, 0)) == pytest.approx(0.5)


def test_storage_keeps_samples_sorted_and_last_write_wins() -> None:
    st = MemoryStorage()
    lbl = from_dict({"__name__": "m"})
    for t, v in [(20, 2.0), (0, 0.0), (10, 1.0), (10, 1.5)]:
        st.add(lbl, t * S, v)
    (series,) = st.select(parse("m").matchers, 0, 30 * S)  # type: ignore[union-attr]
    assert list(series.timestamps) == [0, 10 * S, 20 * S]
    assert list(series.values) == [0.0, 1.5, 2.0]


@pytest.mark.parametrize("k", ["NaN", "Inf", "-Inf", "1e19", "-1e19"])
def test_topk_with_a_k_that_is_no_int64_is_an_error(k):
    """Prometheus fails the evaluation ("Scalar value NaN overflows int64"); an empty result would
    make an alerting rule silently quiet instead of a visible rule error."""
    store = MemoryStorage()
    with pytest.raises(PromQLEvalError, match="overflows int64"):
        instant_query(parse(f"topk(scalar(vector({k})), vector(1))"), store, 0, 300_000, 60_000)
    assert instant_query(parse("bottomk(scalar(vector(-1)), vector(1))"), store, 0, 300_000, 60_000) == []


@pytest.mark.parametrize(("selector", "labels"), [
    ('m{job!~"a", job="nope"}', {"job": "nope"}),  # a later = sets the label again
    ('m{job="nope", job!~"a"}', {}),
    ('m{job="a", job="b"}', {}),
    ('m{job="a", x!="q", job!="c", x="z"}', {"x": "z"}),
])
def test_absent_labels_walk_the_matchers_in_order(selector, labels):
    """What promtool 2.42 answers for these (absent and absent_over_time alike)."""
    store = MemoryStorage()
    for expr in (f"absent({selector})", f"absent_over_time({selector}[5m])"):
        (sample,) = instant_query(parse(expr), store, 60_000, 300_000, 60_000)
        assert dict(sample.labels) == labels, expr


def test_absent_labels_with_repeated_equality_matchers():
    store = MemoryStorage()
    for selector, labels in (('m{h="/foo", h="/bar", h="/foobar"}', {}),
                             ('m{job="a", job="b", job="c", foo="bar"}', {"foo": "bar"}),
                             ('m{job="a", job=~"b", foo="bar"}', {"foo": "bar"})):
        (sample,) = instant_query(parse(f"absent({selector})"), store, 60_000, 300_000, 60_000)
        assert dict(sample.labels) == labels, selector


def test_pi_is_a_function_as_in_prometheus_2_42():
    store = MemoryStorage()
    assert instant_query(parse("pi() * 2"), store, 0, 300_000, 60_000) == Scalar(2 * math.pi)
    (sample,) = instant_query(parse("vector(pi())"), store, 0, 300_000, 60_000)
    assert sample.value == math.pi
