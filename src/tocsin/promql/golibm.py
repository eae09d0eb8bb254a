"""Go 1.19's math package on amd64, reproduced operation by operation.

promtool compares floats exactly, so a rule test written against Prometheus passes in
tocsin only if every function rounds as Go's does. C's libm (which Python's `math` wraps)
is nearly correctly rounded; Go's is not, and differs in the last bit for many inputs
(`log10(20)`: Go 1.301029995663981, C 1.3010299956639813). Each function below follows
the order of floating-point operations of Go's implementation:

- Exp and Log are assembly on amd64 (`exp_amd64.s`, `log_amd64.s`): Exp is Shibata's
  method, with fused multiply-adds when the CPU has AVX and FMA (every x86-64 server of
  the last decade; `HAS_FMA` below follows Prometheus on such a machine); Log is the
  FreeBSD algorithm with the mantissa split done on the bits (subnormals included);
- everything else is Go code (Cephes and FreeBSD algorithms) built on Exp, Log, Log1p,
  Sqrt (exact in both) and Frexp. Go does not fuse `a*b+c` on amd64, so plain Python float
  arithmetic rounds as Go's does.

Constants Go evaluates exactly at compile time (`4/Pi`, `1/Ln10`...) are float64 bits here
(Python's `4/math.pi` rounds twice). Methods and coefficients: Go's math package (BSD-style
licence, the Go Authors), from Cephes (Stephen L. Moshier) and FreeBSD's msun.
"""

from __future__ import annotations

import math
import struct

INF = math.inf
NAN = math.nan
HAS_FMA = True

_PI = math.pi
_PI_2 = float.fromhex("0x1.921fb54442d18p+0")
_PI_4 = float.fromhex("0x1.921fb54442d18p-1")
_PI3_4 = float.fromhex("0x1.2d97c7f3321d2p+1")
_FOUR_OVER_PI = float.fromhex("0x1.45f306dc9c883p+0")
_INV_LN10 = float.fromhex("0x1.bcb7b1526e50ep-2")
_INV_LN2 = float.fromhex("0x1.71547652b82fep+0")
_LN2 = float.fromhex("0x1.62e42fefa39efp-1")


def _bits(x: float) -> int:
    return int.from_bytes(struct.pack("<d", x), "little")


def _from_bits(b: int) -> float:
    return struct.unpack("<d", (b & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little"))[0]


def _fma(a: float, b: float, c: float) -> float:
    """a*b+c rounded once: exact rational arithmetic, one rounding."""
    if not (math.isfinite(a) and math.isfinite(b) and math.isfinite(c)):
        return a * b + c
    na, da = a.as_integer_ratio()
    nb, db = b.as_integer_ratio()
    nc, dc = c.as_integer_ratio()
    num = na * nb * dc + nc * da * db
    if num == 0:
        return a * b + c  # the sign of an exact zero, as IEEE gives it
    try:
        return num / (da * db * dc)  # int true division is correctly rounded
    except OverflowError:
        return INF if num > 0 else -INF


def _round_half_even_int32(t: float) -> int:
    """CVTSD2SL: round to nearest even; NaN or out of int32 range gives INT32_MIN."""
    if t != t or not -2147483648.5 < t < 2147483647.5:
        return -(1 << 31)
    r = round(t)
    return r if -(1 << 31) <= r < (1 << 31) else -(1 << 31)


# exp_amd64.s: Taylor coefficients 1/n!, n = 2..9, and the split of ln 2.
_E = (0.5, 1.0, 2.0, 1.6666666666666666667e-1, 4.1666666666666666667e-2, 8.3333333333333333333e-3,
      1.3888888888888888889e-3, 1.9841269841269841270e-4, 2.4801587301587301587e-5)
_LOG2E = float.fromhex("0x1.71547652b82fep+0")
_LN2U = float.fromhex("0x1.62e42fefa3p-1")
_LN2L = float.fromhex("0x1.3de6af278ece6p-42")
_EXP_OVERFLOW = 7.09782712893384e02


def exp(x: float) -> float:
    if x != x or x == INF:
        return x
    if x == -INF:
        return 0.0
    if x > _EXP_OVERFLOW:
        return INF
    k = _round_half_even_int32(_LOG2E * x)
    kf = float(k)
    c2, c24, c32, c40, c48, c56, c64 = _E[2], _E[3], _E[4], _E[5], _E[6], _E[7], _E[8]
    if HAS_FMA:
        r = _fma(-kf, _LN2U, x)
        r = _fma(-kf, _LN2L, r)
        r *= 0.0625
        p = _fma(c64, r, c56)
        for c in (c48, c40, c32, c24, _E[0], _E[1]):
            p = _fma(p, r, c)
        r = r * p
        for _ in range(3):
            r = r * (r + c2)
        r = _fma(r, r + c2, 1.0)
    else:
        r = x - kf * _LN2U
        r = r - kf * _LN2L
        r *= 0.0625
        p = c64 * r + c56
        for c in (c48, c40, c32, c24, _E[0], _E[1]):
            p = p * r + c
        r = r * p
        for _ in range(4):
            r = r * (r + c2)
        r = r + 1.0
    e = k + 0x3FF
    if e <= 0:
        if e < -52:
            return 0.0
        r *= _from_bits((e + 0x3FE) << 52)
        e = 1
    elif e >= 0x7FF:
        return INF
    return r * _from_bits(e << 52)


_HSQRT2 = 7.07106781186547524401e-01
_LN2HI = 6.93147180369123816490e-01
_LN2LO = 1.90821492927058770002e-10
_L1, _L2, _L3, _L4, _L5, _L6, _L7 = (6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01,
                                     2.222219843214978396e-01, 1.818357216161805012e-01, 1.531383769920937332e-01,
                                     1.479819860511658591e-01)


def log(x: float) -> float:
    b = _bits(x)
    if b & 0x7FFFFFFFFFFFFFFF == 0:
        return -INF
    if b >> 63:
        return NAN
    if b >= 0x7FF0000000000000:
        return x
    f1 = _from_bits((b & 0x000FFFFFFFFFFFFF) | 0x3FE0000000000000)
    k = float(((b >> 52) & 0x7FF) - 0x3FE)
    if not _HSQRT2 < f1:  # the assembly's CMPSD NLT: also when f1 equals Sqrt2/2
        k -= 1.0
        f1 *= 2.0
    f = f1 - 1.0
    s = f / (2.0 + f)
    s2 = s * s
    s4 = s2 * s2
    t1 = s2 * (((_L7 * s4 + _L5) * s4 + _L3) * s4 + _L1)
    t2 = s4 * ((_L6 * s4 + _L4) * s4 + _L2)
    r = t1 + t2
    hfsq = 0.5 * f * f
    return k * _LN2HI - ((hfsq - (s * (hfsq + r) + k * _LN2LO)) - f)


def log10(x: float) -> float:
    return log(x) * _INV_LN10


def log2(x: float) -> float:
    frac, e = math.frexp(x) if math.isfinite(x) and x != 0 else (x, 0)
    if frac == 0.5:
        return float(e - 1)
    return log(frac) * _INV_LN2 + float(e)


_LP = (6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01, 2.222219843214978396e-01,
       1.818357216161805012e-01, 1.531383769920937332e-01, 1.479819860511658591e-01)


def log1p(x: float) -> float:
    if x != x or x < -1:
        return NAN
    if x == -1:
        return -INF
    if x == INF:
        return INF
    absx = abs(x)
    f = 0.0
    iu = 0
    k = 1
    if absx < 4.142135623730950488017e-01:
        if absx < 2.0**-29:
            if absx < 2.0**-54:
                return x
            return x - x * x * 0.5
        if x > -2.928932188134524755992e-01:
            k, f, iu = 0, x, 1
    c = 0.0
    if k != 0:
        if absx < 2.0**53:
            u = 1.0 + x
            iu = _bits(u)
            k = (iu >> 52) - 1023
            c = 1.0 - (u - x) if k > 0 else x - (u - 1.0)
            c /= u
        else:
            u = x
            iu = _bits(u)
            k = (iu >> 52) - 1023
            c = 0.0
        iu &= 0x000FFFFFFFFFFFFF
        if iu < 0x0006A09E667F3BCD:
            u = _from_bits(iu | 0x3FF0000000000000)
        else:
            k += 1
            u = _from_bits(iu | 0x3FE0000000000000)
            iu = ((0x0010000000000000 - iu) & 0xFFFFFFFFFFFFFFFF) >> 2
        f = u - 1.0
    hfsq = 0.5 * f * f
    fk = float(k)
    if iu == 0:
        if f == 0:
            if k == 0:
                return 0.0
            c += fk * _LN2LO
            return fk * _LN2HI + c
        r = hfsq * (1.0 - 0.66666666666666666 * f)
        if k == 0:
            return f - r
        return fk * _LN2HI - ((r - (fk * _LN2LO + c)) - f)
    s = f / (2.0 + f)
    z = s * s
    r = z * (_LP[0] + z * (_LP[1] + z * (_LP[2] + z * (_LP[3] + z * (_LP[4] + z * (_LP[5] + z * _LP[6]))))))
    if k == 0:
        return f - (hfsq - s * (hfsq + r))
    return fk * _LN2HI - ((hfsq - (s * (hfsq + r) + (fk * _LN2LO + c))) - f)


def ldexp(frac: float, e: int) -> float:
    try:
        return math.ldexp(frac, e)
    except OverflowError:
        return math.copysign(INF, frac)


def _is_odd_int(y: float) -> bool:
    if abs(y) >= 2.0**53:
        return False
    yf, yi = math.modf(y)
    return yf == 0 and int(yi) & 1 == 1


def pow_(x: float, y: float) -> float:
    """Go's Pow: special cases first, then x**frac(y) via Exp(yf*Log(x)) times x**int(y)
    by repeated squaring of Frexp's mantissa."""
    if y == 0 or x == 1:
        return 1.0
    if y == 1:
        return x
    if x != x or y != y:
        return NAN
    if x == 0:
        if y < 0:
            return math.copysign(INF, x) if _is_odd_int(y) else INF
        return x if _is_odd_int(y) else 0.0
    if math.isinf(y):
        if x == -1:
            return 1.0
        return 0.0 if (abs(x) < 1) == (y > 0) else INF
    if math.isinf(x):
        if x < 0:
            return pow_(1 / x, -y)  # Pow(-0, -y)
        return 0.0 if y < 0 else INF
    if y == 0.5:
        return math.sqrt(x) if x >= 0 else NAN
    if y == -0.5:
        return 1 / math.sqrt(x) if x >= 0 else NAN
    yf, yi = math.modf(abs(y))
    if yf != 0 and x < 0:
        return NAN
    if yi >= 2.0**63:
        if x == -1:
            return 1.0
        return 0.0 if (abs(x) < 1) == (y > 0) else INF
    a1 = 1.0
    ae = 0
    if yf != 0:
        if yf > 0.5:
            yf -= 1
            yi += 1
        a1 = exp(yf * log(x))
    x1, xe = math.frexp(x)
    i = int(yi)
    while i != 0:
        if xe < -(1 << 12) or (1 << 12) < xe:
            ae += xe
            break
        if i & 1 == 1:
            a1 *= x1
            ae += xe
        x1 *= x1
        xe <<= 1
        if x1 < 0.5:
            x1 += x1
            xe -= 1
        i >>= 1
    if y < 0:
        a1 = 1 / a1
        ae = -ae
    return ldexp(a1, ae)


_SINH_P = (-0.6307673640497716991184787251e+6, -0.8991272022039509355398013511e+5,
           -0.2894211355989563807284660366e+4, -0.2630563213397497062819489e+2)
_SINH_Q = (-0.6307673640497716991212077277e+6, 0.1521517378790019070696485176e+5,
           -0.173678953558233699533450911e+3)


def sinh(x: float) -> float:
    sign = x < 0
    if sign:
        x = -x
    if x > 21:
        t = exp(x) * 0.5
    elif x > 0.5:
        ex = exp(x)
        t = (ex - 1 / ex) * 0.5
    else:
        sq = x * x
        t = (((_SINH_P[3] * sq + _SINH_P[2]) * sq + _SINH_P[1]) * sq + _SINH_P[0]) * x
        t = t / (((sq + _SINH_Q[2]) * sq + _SINH_Q[1]) * sq + _SINH_Q[0])
    return -t if sign else t


def cosh(x: float) -> float:
    x = abs(x)
    if x > 21:
        return exp(x) * 0.5
    ex = exp(x)
    return (ex + 1 / ex) * 0.5


_TANH_P = (-9.64399179425052238628e-1, -9.92877231001918586564e1, -1.61468768441708447952e3)
_TANH_Q = (1.12811678491632931402e2, 2.23548839060100448583e3, 4.84406305325125486048e3)


def tanh(x: float) -> float:
    z = abs(x)
    if z > 0.5 * 8.8029691931113054295988e01:
        return -1.0 if x < 0 else 1.0
    if z >= 0.625:
        s = exp(2 * z)
        z = 1 - 2 / (s + 1)
        return -z if x < 0 else z
    if x == 0 or x != x:
        return x
    s = x * x
    return x + x * s * ((_TANH_P[0] * s + _TANH_P[1]) * s + _TANH_P[2]) / (((s + _TANH_Q[0]) * s + _TANH_Q[1]) * s + _TANH_Q[2])


def asinh(x: float) -> float:
    if x != x or math.isinf(x):
        return x
    sign = x < 0
    if sign:
        x = -x
    if x > 2.0**28:
        t = log(x) + _LN2
    elif x > 2:
        t = log(2 * x + 1 / (math.sqrt(x * x + 1) + x))
    elif x < 2.0**-28:
        t = x
    else:
        t = log1p(x + x * x / (1 + math.sqrt(1 + x * x)))
    return -t if sign else t


def acosh(x: float) -> float:
    if x != x or x < 1:
        return NAN
    if x == 1:
        return 0.0
    if x >= 2.0**28:
        return log(x) + _LN2
    if x > 2:
        return log(2 * x - 1 / (x + math.sqrt(x * x - 1)))
    t = x - 1
    return log1p(t + math.sqrt(2 * t + t * t))


def atanh(x: float) -> float:
    if x != x or x < -1 or x > 1:
        return NAN
    if x == 1:
        return INF
    if x == -1:
        return -INF
    sign = x < 0
    if sign:
        x = -x
    if x < 2.0**-28:
        t = x
    elif x < 0.5:
        t = x + x
        t = 0.5 * log1p(t + t * x / (1 - x))
    else:
        t = 0.5 * log1p((x + x) / (1 - x))
    return -t if sign else t
