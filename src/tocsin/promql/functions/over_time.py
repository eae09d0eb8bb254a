"""Range functions over a window's samples: the *_over_time family, deriv,
predict_linear, changes and resets.

Sums use Kahan compensation as Prometheus 2.42 does, step by step: its result is not
always the exact sum (`math.fsum`), and promtool compares the last bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .. import gomath as G
from ..errors import PromQLEvalError
from .definition import Window
from .quantiles import quantile

NAN = math.nan


def _finite_sum(vals: Sequence[float]) -> float | None:
    """The exact sum when every value is finite, else None: a C-speed test for NaN and Inf."""
    try:
        s = math.fsum(vals)
    except (ValueError, OverflowError):
        return None
    return s if math.isfinite(s) else None


def _kahan_inc(inc: float, s: float, c: float) -> tuple[float, float]:
    t = s + inc
    if abs(s) >= abs(inc):
        c += (s - t) + inc
    else:
        c += (inc - t) + s
    return t, c


def _linear_regression(tss: Sequence[int], vals: Sequence[float], intercept_time: int) -> tuple[float, float]:
    init_y = vals[0]
    const_y = True
    n = 0.0
    sx = cx = sy = cy = sxy = cxy = sx2 = cx2 = 0.0
    for t, v in zip(tss, vals, strict=True):
        if const_y and n > 0 and v != init_y:
            const_y = False
        n += 1.0
        x = (t - intercept_time) / 1e3
        sx, cx = _kahan_inc(x, sx, cx)
        sy, cy = _kahan_inc(v, sy, cy)
        sxy, cxy = _kahan_inc(x * v, sxy, cxy)
        sx2, cx2 = _kahan_inc(x * x, sx2, cx2)
    if const_y:
        if math.isinf(init_y):
            return NAN, NAN
        return 0.0, init_y
    sx += cx
    sy += cy
    sxy += cxy
    sx2 += cx2
    cov_xy = sxy - sx * sy / n
    var_x = sx2 - sx * sx / n
    slope = G.div(cov_xy, var_x)
    intercept = sy / n - slope * sx / n
    return slope, intercept


def f_deriv(tss: Sequence[int], vals: Sequence[float], _w: Window) -> float | None:
    if len(vals) < 2:
        return None
    return _linear_regression(tss, vals, tss[0])[0]


def f_predict_linear(tss: Sequence[int], vals: Sequence[float], w: Window, duration: float) -> float | None:
    if len(vals) < 2:
        return None
    slope, intercept = _linear_regression(tss, vals, w.ts)
    return slope * duration + intercept


def f_avg_over_time(_tss: Sequence[int], vals: Sequence[float], _w: Window) -> float | None:
    mean = 0.0
    c = 0.0
    count = 0.0
    for v in vals:
        count += 1
        if math.isinf(mean):
            if math.isinf(v) and (mean > 0) == (v > 0):
                continue
            if not math.isinf(v) and v == v:
                continue
        mean, c = _kahan_inc(v / count - mean / count, mean, c)
    if math.isinf(mean):
        return mean
    return mean + c


def _exact_integer_sum(vals: Sequence[float]) -> float | None:
    """The sum when every value is an integer and every partial sum stays below 2**53:
    then each addition is exact, the compensation stays 0, and Kahan's result is this one
    (counters and 0/1 gauges, the common case, at C speed)."""
    try:
        if math.fsum(map(abs, vals)) < 2.0**53 and all(v.is_integer() for v in vals):
            return 0.0 + math.fsum(vals)  # Go starts from +0: no -0 sums
    except (ValueError, OverflowError):
        pass
    return None


def f_sum_over_time(_tss: Sequence[int], vals: Sequence[float], _w: Window) -> float | None:
    fast = _exact_integer_sum(vals)
    if fast is not None:
        return fast
    s = 0.0
    c = 0.0
    for v in vals:
        s, c = _kahan_inc(v, s, c)
    if math.isinf(s):
        return s
    return s + c


def f_count_over_time(_tss: Sequence[int], vals: Sequence[float], _w: Window) -> float | None:
    return float(len(vals))


def f_min_over_time(_tss: Sequence[int], vals: Sequence[float], _w: Window) -> float | None:
    if _finite_sum(vals) is not None:
        return min(vals)
    m = vals[0]
    for v in vals:
        if v < m or m != m:
            m = v
    return m


def f_max_over_time(_tss: Sequence[int], vals: Sequence[float], _w: Window) -> float | None:
    if _finite_sum(vals) is not None:
        return max(vals)
    m = vals[0]
    for v in vals:
        if v > m or m != m:
            m = v
    return m


def f_last_over_time(_tss: Sequence[int], vals: Sequence[float], _w: Window) -> float | None:
    return vals[-1]


def f_present_over_time(_tss: Sequence[int], _vals: Sequence[float], _w: Window) -> float | None:
    return 1.0


def _variance(vals: Sequence[float]) -> float:
    count = 0.0
    mean = c_mean = 0.0
    aux = c_aux = 0.0
    for v in vals:
        count += 1
        delta = v - (mean + c_mean)
        mean, c_mean = _kahan_inc(delta / count, mean, c_mean)
        aux, c_aux = _kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux)
    return (aux + c_aux) / count


def f_stdvar_over_time(_tss: Sequence[int], vals: Sequence[float], _w: Window) -> float | None:
    return _variance(vals)


def f_stddev_over_time(_tss: Sequence[int], vals: Sequence[float], _w: Window) -> float | None:
    return G.sqrt(_variance(vals))


def f_quantile_over_time(_tss: Sequence[int], vals: Sequence[float], _w: Window, q: float) -> float | None:
    return quantile(q, vals)


def f_changes(_tss: Sequence[int], vals: Sequence[float], _w: Window) -> float | None:
    changes = 0
    prev = vals[0]
    for v in vals[1:]:
        if v != prev and not (v != v and prev != prev):
            changes += 1
        prev = v
    return float(changes)


def f_resets(_tss: Sequence[int], vals: Sequence[float], _w: Window) -> float | None:
    resets = 0
    prev = vals[0]
    for v in vals[1:]:
        if v < prev:
            resets += 1
        prev = v
    return float(resets)


def _go_f(x: float) -> str:
    """Go's %f, for the error message."""
    if x != x:
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return f"{x:f}"


def f_holt_winters(_tss: Sequence[int], vals: Sequence[float], _w: Window, sf: float, tf: float) -> float | None:
    """Double exponential smoothing, as 2.42's holt_winters: the factors are checked for
    each series (so an empty selection never fails), NaN factors pass the check."""
    if sf <= 0 or sf >= 1:
        raise PromQLEvalError(f"invalid smoothing factor. Expected: 0 < sf < 1, got: {_go_f(sf)}")
    if tf <= 0 or tf >= 1:
        raise PromQLEvalError(f"invalid trend factor. Expected: 0 < tf < 1, got: {_go_f(tf)}")
    if len(vals) < 2:
        return None
    s0 = 0.0
    s1 = vals[0]
    b = vals[1] - vals[0]
    for i in range(1, len(vals)):
        x = sf * vals[i]
        if i > 1:  # the trend starts from the first difference
            b = tf * (s1 - s0) + (1 - tf) * b
        y = (1 - sf) * (s1 + b)
        s0, s1 = s1, x + y
    return s1
