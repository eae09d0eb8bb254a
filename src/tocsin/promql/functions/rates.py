"""rate, increase, delta and their instant forms irate, idelta.

Prometheus extrapolates the increase seen inside a window to the window's edges; the
engine's fast path (fastpath.py) calls `extrapolate` directly on the stored arrays when
it knows a window holds no counter reset, so the arithmetic lives here once.
"""

from __future__ import annotations

from collections.abc import Sequence

from .. import gomath as G
from .definition import Window


def _non_decreasing(vals: Sequence[float]) -> bool:
    """True when there is certainly no counter reset (C-speed check; NaN says no)."""
    as_list = list(vals)
    return as_list == sorted(as_list)


def _extrapolated(tss: Sequence[int], vals: Sequence[float], w: Window, is_counter: bool, is_rate: bool) -> float | None:
    # Mirrors Prometheus' extrapolatedRate: extrapolate the observed increase to the
    # window edges, but only by up to half a sample interval past the data unless the
    # data reaches (almost) the edge, and never below zero for counters.
    n = len(vals)
    if n < 2:
        return None
    first_v = vals[0]
    result = vals[-1] - first_v
    if is_counter and not _non_decreasing(vals):
        prev = first_v
        for v in vals:
            if v < prev:
                result += prev
            prev = v
    return extrapolate(result, first_v, tss[0], tss[-1], n, w, is_counter, is_rate)


def extrapolate(result: float, first_v: float, t0: int, t1: int, n: int, w: Window, is_counter: bool,
                is_rate: bool) -> float:
    """The extrapolation step of rate/increase/delta, given the (reset-corrected) increase
    between the first and the last of n >= 2 samples at t0 and t1."""
    duration_to_start = (t0 - w.mint) / 1000.0
    duration_to_end = (w.maxt - t1) / 1000.0
    sampled = (t1 - t0) / 1000.0
    avg_between = sampled / (n - 1)
    if is_counter and result > 0 and first_v >= 0:
        duration_to_zero = sampled * (first_v / result)
        if duration_to_zero < duration_to_start:
            duration_to_start = duration_to_zero
    threshold = avg_between * 1.1
    interval = sampled
    interval += duration_to_start if duration_to_start < threshold else avg_between / 2
    interval += duration_to_end if duration_to_end < threshold else avg_between / 2
    factor = G.div(interval, sampled)
    if is_rate:
        factor = G.div(factor, w.range_ms / 1000.0)
    return result * factor


def f_rate(tss: Sequence[int], vals: Sequence[float], w: Window) -> float | None:
    return _extrapolated(tss, vals, w, True, True)


def f_increase(tss: Sequence[int], vals: Sequence[float], w: Window) -> float | None:
    return _extrapolated(tss, vals, w, True, False)


def f_delta(tss: Sequence[int], vals: Sequence[float], w: Window) -> float | None:
    return _extrapolated(tss, vals, w, False, False)


def _instant_value(tss: Sequence[int], vals: Sequence[float], is_rate: bool) -> float | None:
    if len(vals) < 2:
        return None
    last, prev = vals[-1], vals[-2]
    if is_rate and last < prev:
        result = last
    else:
        result = last - prev
    interval = tss[-1] - tss[-2]
    if interval == 0:
        return None
    if is_rate:
        result = G.div(result, interval / 1000.0)
    return result


def f_irate(tss: Sequence[int], vals: Sequence[float], _w: Window) -> float | None:
    return _instant_value(tss, vals, True)


def f_idelta(tss: Sequence[int], vals: Sequence[float], _w: Window) -> float | None:
    return _instant_value(tss, vals, False)
