"""Date functions on any float, as Prometheus 2.42 on amd64 computes them.

Expected values come from Go 1.19 (`time.Unix(int64(v), 0).UTC()`): NaN, ±Inf and
anything beyond int64 become math.MinInt64 seconds, a date in year 292277026596 after
Go's calendar wraps; finite huge values give far-away but real dates.
"""

from __future__ import annotations

import pytest

from tocsin.promql import MemoryStorage, Vector, instant_query

FUNCS = ("minute", "hour", "day_of_week", "day_of_month", "day_of_year", "days_in_month", "month", "year")
WRAPPED = (30, 15, 0, 4, 339, 31, 12, 292277026596)  # int64 minimum, as Go's calendar gives it


@pytest.mark.parametrize(
    ("value", "want"),
    [
        ("NaN", WRAPPED),
        ("Inf", WRAPPED),
        ("-Inf", WRAPPED),
        ("1e19", WRAPPED),
        ("1e17", (46, 9, 3, 6, 250, 30, 9, 3168875820)),
        ("-1e17", (13, 14, 4, 27, 117, 30, 4, -3168871881)),
        ("951782400", (0, 0, 2, 29, 60, 29, 2, 2000)),
        ("-0.5", (0, 0, 4, 1, 1, 31, 1, 1970)),
    ],
)
def test_dates_as_go(value: str, want: tuple[int, ...]) -> None:
    got = []
    for f in FUNCS:
        res = instant_query(f"{f}(vector({value}))", MemoryStorage(), 0)
        assert isinstance(res, Vector) and len(res) == 1
        got.append(res[0].value)
    assert tuple(got) == want
