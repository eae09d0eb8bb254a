"""time() and the date functions (minute, hour, day_of_week...), in UTC as Prometheus.

A value that is not a finite Unix time, or one out of the platform's range, gives NaN.
"""

from __future__ import annotations

import calendar
import math
import time as _time
from collections.abc import Callable
from typing import Any

from .. import nodes as N

NAN = math.nan


def _date(f: Callable[[_time.struct_time], float]) -> Callable[[float], float]:
    def g(v: float) -> float:
        if not math.isfinite(v):
            return NAN
        try:
            return f(_time.gmtime(int(v)))
        except (OverflowError, OSError, ValueError):
            return NAN

    return g


_minute = _date(lambda t: float(t.tm_min))
_hour = _date(lambda t: float(t.tm_hour))
_day_of_week = _date(lambda t: float((t.tm_wday + 1) % 7))
_day_of_month = _date(lambda t: float(t.tm_mday))
_day_of_year = _date(lambda t: float(t.tm_yday))
_days_in_month = _date(lambda t: float(calendar.monthrange(t.tm_year, t.tm_mon)[1]))
_month = _date(lambda t: float(t.tm_mon))
_year = _date(lambda t: float(t.tm_year))

DATES: dict[str, Callable[[float], float]] = {
    "minute": _minute,
    "hour": _hour,
    "day_of_week": _day_of_week,
    "day_of_month": _day_of_month,
    "day_of_year": _day_of_year,
    "days_in_month": _days_in_month,
    "month": _month,
    "year": _year,
}


def s_time(_args: list[Any], _node: N.Call, ts: int) -> float:
    return ts / 1000.0
