"""IEEE-754 arithmetic as Go does it.

Python raises on 1/0, log(0), pow overflow and math.ceil(inf); Prometheus (Go) returns
Inf or NaN and keeps going. Every operator and function goes through these helpers so
results match Prometheus bit for bit: signs of zeros and infinities here, and the last
bit of exp, log, pow and the trigonometric functions in golibm and gotrig (Go's own
algorithms, which round differently from C's libm).
"""

from __future__ import annotations

import math

from . import golibm as L
from . import gotrig as T

INF = math.inf
NAN = math.nan


def div(a: float, b: float) -> float:
    try:
        return a / b
    except ZeroDivisionError:
        if a != a or a == 0:
            return NAN
        return math.copysign(INF, a) * math.copysign(1.0, b)


def mod(a: float, b: float) -> float:
    try:
        return math.fmod(a, b)
    except ValueError:
        return NAN


pow_ = L.pow_


atan2 = T.atan2


def gmax(a: float, b: float) -> float:
    """Go's math.Max: +Inf wins, then NaN; +0 beats -0."""
    if a == INF or b == INF:
        return INF
    if a != a or b != b:
        return NAN
    if a == 0 and b == 0:
        return a if math.copysign(1.0, a) > 0 else b
    return a if a > b else b


def gmin(a: float, b: float) -> float:
    """Go's math.Min: -Inf wins, then NaN; -0 beats +0."""
    if a == -INF or b == -INF:
        return -INF
    if a != a or b != b:
        return NAN
    if a == 0 and b == 0:
        return a if math.copysign(1.0, a) < 0 else b
    return a if a < b else b


def ceil(x: float) -> float:
    """Go's Ceil keeps the sign of a zero result: Ceil(-0.5) is -0."""
    return math.copysign(float(math.ceil(x)), x) if math.isfinite(x) else x


def floor(x: float) -> float:
    return math.copysign(float(math.floor(x)), x) if math.isfinite(x) else x


def sqrt(x: float) -> float:
    if x != x or x < 0:
        return NAN
    return math.sqrt(x)


exp = L.exp
ln = L.log
log2 = L.log2
log10 = L.log10
sin = T.sin
cos = T.cos
tan = T.tan
asin = T.asin
acos = T.acos
atan = T.atan
sinh = L.sinh
cosh = L.cosh
tanh = L.tanh
asinh = L.asinh
acosh = L.acosh
atanh = L.atanh


def to_int64(x: float) -> int:
    """Go's int64(float64) on amd64: out-of-range and NaN become math.MinInt64."""
    if x != x or x >= 9.223372036854775807e18 or x < -9.223372036854775808e18:
        return -(1 << 63)
    return int(x)
