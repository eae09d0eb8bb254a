"""time() and the date functions (minute, hour, day_of_week...), as Prometheus 2.42 on amd64.

Prometheus converts the sample to whole seconds with Go's `int64(v)` and hands that to
Go's calendar code in UTC. Every input gives a date there, NaN and ±Inf included: on
amd64 the conversion turns NaN and anything out of int64's range into math.MinInt64, and
the calendar works in wrapping 64-bit unsigned arithmetic from an "absolute" epoch in
year -292277022399. So `month(vector(NaN))` is a month, not NaN. We follow that exactly
(the integers below wrap as Go's do) so a rule behaves the same in both, and so
promtool's expectations hold; the dates for such inputs mean nothing, in both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import nodes as N
from ..gomath import to_int64

_U64 = (1 << 64) - 1
_DAY = 86400
_ABSOLUTE_ZERO_YEAR = -292277022399
_DAYS_400 = 365 * 400 + 97
_DAYS_100 = 365 * 100 + 24
_DAYS_4 = 365 * 4 + 1
_UNIX_TO_INTERNAL = (1969 * 365 + 1969 // 4 - 1969 // 100 + 1969 // 400) * _DAY
# Go's absoluteToInternal: (absoluteZeroYear - 1) * 365.2425 days, an exact integer.
_ABSOLUTE_TO_INTERNAL = (_ABSOLUTE_ZERO_YEAR - 1) * 3652425 * _DAY // 10000
_UNIX_TO_ABSOLUTE = _UNIX_TO_INTERNAL - _ABSOLUTE_TO_INTERNAL
_DAYS_BEFORE = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365)


def _abs_seconds(v: float) -> int:
    """Seconds since the absolute epoch, as Go's Time.abs() of time.Unix(int64(v), 0).UTC()."""
    return (to_int64(v) + _UNIX_TO_ABSOLUTE) & _U64


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _year_yday(abs_s: int) -> tuple[int, int]:
    """Go's absDate: the year and the zero-based day of the year."""
    d = abs_s // _DAY
    n = d // _DAYS_400
    y = 400 * n
    d -= _DAYS_400 * n
    n = d // _DAYS_100
    n -= n >> 2
    y += 100 * n
    d -= _DAYS_100 * n
    n = d // _DAYS_4
    y += 4 * n
    d -= _DAYS_4 * n
    n = d // 365
    n -= n >> 2
    y += n
    d -= 365 * n
    return y + _ABSOLUTE_ZERO_YEAR, d


def _month_day(abs_s: int) -> tuple[int, int]:
    year, day = _year_yday(abs_s)
    if _is_leap(year):
        if day == 31 + 29 - 1:
            return 2, 29
        if day > 31 + 29 - 1:
            day -= 1
    month = day // 31
    end = _DAYS_BEFORE[month + 1]
    if day >= end:
        month += 1
        begin = end
    else:
        begin = _DAYS_BEFORE[month]
    return month + 1, day - begin + 1


def _days_since_epoch(year: int) -> int:
    y = (year - _ABSOLUTE_ZERO_YEAR) & _U64
    n = y // 400
    y -= 400 * n
    d = _DAYS_400 * n
    n = y // 100
    y -= 100 * n
    d += _DAYS_100 * n
    n = y // 4
    y -= 4 * n
    d += _DAYS_4 * n
    return (d + 365 * y) & _U64


def _days_in_month(abs_s: int) -> float:
    """32 minus the day of time.Date(year, month, 32): how Prometheus counts them."""
    year, _ = _year_yday(abs_s)
    month, _ = _month_day(abs_s)
    d = _days_since_epoch(year) + _DAYS_BEFORE[month - 1]
    if _is_leap(year) and month >= 3:
        d += 1
    d += 31
    return float(32 - _month_day((d * _DAY) & _U64)[1])


def _date(f: Callable[[int], float]) -> Callable[[float], float]:
    def g(v: float) -> float:
        return f(_abs_seconds(v))

    return g


DATES: dict[str, Callable[[float], float]] = {
    "minute": _date(lambda a: float(a % 3600 // 60)),
    "hour": _date(lambda a: float(a % _DAY // 3600)),
    "day_of_week": _date(lambda a: float((a + _DAY) % (7 * _DAY) // _DAY)),
    "day_of_month": _date(lambda a: float(_month_day(a)[1])),
    "day_of_year": _date(lambda a: float(_year_yday(a)[1] + 1)),
    "days_in_month": _date(_days_in_month),
    "month": _date(lambda a: float(_month_day(a)[0])),
    "year": _date(lambda a: float(_year_yday(a)[0])),
}


def s_time(_args: list[Any], _node: N.Call, ts: int) -> float:
    return ts / 1000.0
