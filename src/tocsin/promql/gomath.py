"""IEEE-754 arithmetic as Go does it.

Python raises on 1/0, log(0), pow overflow and math.ceil(inf); Prometheus (Go) returns
Inf or NaN and keeps going. Every operator and function goes through these helpers so
results match Prometheus bit for bit where it matters (signs of zeros and infinities).
"""

from __future__ import annotations

import math

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


def _is_odd_int(y: float) -> bool:
    return math.isfinite(y) and y == math.floor(y) and math.fmod(y, 2.0) != 0


def pow_(x: float, y: float) -> float:
    try:
        return math.pow(x, y)
    except OverflowError:
        if x < 0 and _is_odd_int(y):
            return -INF
        return INF
    except ValueError:
        if x == 0:
            # y < 0: Go gives ±Inf with the sign of zero for odd integer y.
            if _is_odd_int(y):
                return math.copysign(INF, x)
            return INF
        return NAN


def atan2(a: float, b: float) -> float:
    return math.atan2(a, b)


def gmax(a: float, b: float) -> float:
    """Go's math.Max: NaN wins, +0 beats -0."""
    if a != a or b != b:
        return NAN
    if a == 0 and b == 0:
        return a if math.copysign(1.0, a) > 0 else b
    return a if a > b else b


def gmin(a: float, b: float) -> float:
    if a != a or b != b:
        return NAN
    if a == 0 and b == 0:
        return a if math.copysign(1.0, a) < 0 else b
    return a if a < b else b


def ceil(x: float) -> float:
    return float(math.ceil(x)) if math.isfinite(x) else x


def floor(x: float) -> float:
    return float(math.floor(x)) if math.isfinite(x) else x


def sqrt(x: float) -> float:
    if x != x or x < 0:
        return NAN
    return math.sqrt(x)


def exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return INF


def _log_with(f):
    def g(x: float) -> float:
        if x != x or x < 0:
            return NAN
        if x == 0:
            return -INF
        if x == INF:
            return INF
        return f(x)

    return g


ln = _log_with(math.log)
log2 = _log_with(math.log2)
log10 = _log_with(math.log10)


def _guard(f):
    def g(x: float) -> float:
        try:
            return f(x)
        except (ValueError, OverflowError):
            if x != x:
                return NAN
            return NAN if f not in (math.sinh, math.cosh) else math.copysign(INF, x) if f is math.sinh else INF

    return g


sin = _guard(math.sin)
cos = _guard(math.cos)
tan = _guard(math.tan)
asin = _guard(math.asin)
acos = _guard(math.acos)
atan = _guard(math.atan)
sinh = _guard(math.sinh)
cosh = _guard(math.cosh)
tanh = _guard(math.tanh)
asinh = _guard(math.asinh)


def acosh(x: float) -> float:
    if x != x or x < 1:
        return NAN
    return math.acosh(x)


def atanh(x: float) -> float:
    if x != x or x < -1 or x > 1:
        return NAN
    if x == 1:
        return INF
    if x == -1:
        return -INF
    return math.atanh(x)


def to_int64(x: float) -> int:
    """Go's int64(float64) on amd64: out-of-range and NaN become math.MinInt64."""
    if x != x or x >= 9.223372036854775807e18 or x < -9.223372036854775808e18:
        return -(1 << 63)
    return int(x)
