"""Regression tests for what Prometheus 2.42 has and tocsin lacked or computed otherwise.

Expected values are promtool 2.42's (Debian) on the same series: one sample every 15 s
with value i at i*15 s, every fourth one missing.
"""

from __future__ import annotations

import pytest

from tocsin.promql import MemoryStorage, PromQLError, PromQLParseError, Vector, instant_query, parse

NAME = (("__name__", "x"),)


@pytest.fixture(scope="module")
def st() -> MemoryStorage:
    s = MemoryStorage()
    for i in range(41):
        if i % 4 != 3:
            s.add(NAME, i * 15_000, float(i))
    return s


def values(res: object) -> list[float]:
    assert isinstance(res, Vector)
    return [s.value for s in res]


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ("timestamp(x @ 300 offset 1m)", [240.0]),  # the sample before T-o, within the shortened lookback
        ("timestamp(x @ 300 offset 5m)", [0.0]),  # only what was fetched: [T-o-5m, T-o]
        ("timestamp(x @ 50 offset 1m)", []),  # nothing fetched within lookback of T
        ("timestamp(x @ 300 offset -1m)", [300.0]),  # a negative offset: the sample at T
        ("timestamp(x @ 105 offset -10s)", [90.0]),
        ("timestamp(x @ 400 offset 4m15s)", [135.0]),
        ("timestamp(x @ 300)", [300.0]),
        ("x @ 300 offset 1m", [16.0]),  # without timestamp(), the offset counts
    ],
)
def test_timestamp_with_at_and_offset_as_242(st: MemoryStorage, expr: str, want: list[float]) -> None:
    assert values(instant_query(expr, st, 600_000)) == want


def test_holt_winters(st: MemoryStorage) -> None:
    assert values(instant_query("holt_winters(x[5m], 0.5, 0.3)", st, 600_000)) == [39.75004000914589]
    assert values(instant_query("holt_winters(nope[5m], 1, 0.3)", st, 600_000)) == []  # checked per series
    with pytest.raises(PromQLError, match=r"invalid smoothing factor. Expected: 0 < sf < 1, got: 1.000000"):
        instant_query("holt_winters(x[5m], 1, 0.3)", st, 600_000)
    with pytest.raises(PromQLError, match=r"invalid trend factor. Expected: 0 < tf < 1, got: 0.000000"):
        instant_query("holt_winters(x[5m], 0.5, 0)", st, 600_000)
    with pytest.raises(PromQLParseError, match="double_exponential_smoothing"):  # Prometheus 3's name
        parse("double_exponential_smoothing(x[5m], 0.5, 0.5)")
    assert parse("holt_winters (x[5m], 0.5, 0.5)").type == "instant vector"
    assert parse("sum by (holt_winters) (holt_winters)").type == "instant vector"  # a name, not a call


@pytest.mark.parametrize("expr", ["histogram_count(x)", "histogram_sum(x)", "histogram_fraction(0, 1, x)"])
def test_native_histogram_functions_are_empty_on_floats(st: MemoryStorage, expr: str) -> None:
    assert values(instant_query(expr, st, 600_000)) == []


@pytest.mark.parametrize(
    ("expr", "want"),
    [("x @ -100", [-8.0]), ("x @ -0.5", [-8.0]), ("timestamp(x @ -60.25)", [-120.0]), ("x @ -200", [])],
)
def test_at_before_1970(expr: str, want: list[float]) -> None:
    st = MemoryStorage()
    st.add(NAME, -120_000, -8.0)
    assert values(instant_query(expr, st, 600_000)) == want


def test_at_modifier_times_keep_their_value() -> None:
    node = parse("x @ -100.5 offset 1m")
    assert node.at is not None and node.at.ms == -100_500  # type: ignore[attr-defined]
    assert parse("x @ 1e3").at.ms == 1_000_000  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ("clamp_max(vector(NaN), -Inf)", [float("-inf")]),  # Go's math.Min: -Inf wins over NaN
        ("clamp_min(vector(NaN), Inf)", [float("inf")]),
        # Kahan-compensated running mean and sum, not the exact ones (131.479625, 7.101)
        ("avg_over_time(y[10m])", [131.47962499999997]),
        ("sum_over_time(z[10m])", [7.100999999999999]),
    ],
)
def test_go_semantics(expr: str, want: list[float]) -> None:
    s = MemoryStorage()
    for i, v in enumerate([124.58, 148.357, 159.039, 188.49, 147.98, 184.465, 5.801, 93.125]):
        s.add((("__name__", "y"),), i * 15_000, v)
    for i, v in enumerate([3.5, 0.001, -1e17, 3.5, 0.1, 1e17]):
        s.add((("__name__", "z"),), i * 15_000, v)
    assert values(instant_query(expr, s, 120_000)) == want


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ('label_replace(m, "src", "", "", "")', "vector cannot contain metrics with the same labelset"),
        ("m >= bool ignoring(src) group_left(src) n", "multiple matches for labels: grouping labels must ensure unique matches"),
        ('label_join(m, "a-b", "-", "src")', r"invalid destination label name in label_join\(\): a-b"),
    ],
)
def test_evaluation_errors_in_242_words(expr: str, message: str) -> None:
    st = MemoryStorage()
    st.add((("__name__", "m"), ("src", "a")), 0, 1.0)
    st.add((("__name__", "m"), ("src", "b")), 0, 2.0)
    st.add((("__name__", "n"), ("src", "c")), 0, 2.0)
    with pytest.raises(PromQLError, match=message):
        instant_query(expr, st, 0)


def test_predict_linear_with_at_inside_a_subquery_moves_with_the_steps(st: MemoryStorage) -> None:
    """2.42 makes `@ T` an offset from the subquery's first step, and predict_linear is
    evaluated at every step: its window moves forward, over the samples fetched for T
    only (promtool: 54.93333333333334 from 2 steps; a window fixed at T gives 9)."""
    got = values(instant_query("sum_over_time((predict_linear(x[1m] @ 60, 2))[3m:20s])", st, 575_000))
    assert got == [54.93333333333334]
    assert values(instant_query("count_over_time((predict_linear(x[1m] @ 60, 2))[3m:20s])", st, 575_000)) == [2.0]
