"""Go 1.19's sine, cosine, tangent and their inverses (pure Go on amd64), step by step.

Cephes polynomials after a reduction by pi/4 split in three parts; arguments of 2**29
and more are reduced with Payne and Hanek's method over the bits of 4/pi, which are
computed here from Machin's formula rather than tabulated. See golibm for why the
operation order matters (promtool compares results exactly).
The methods and coefficients are those of Go's math package (BSD-style licence, the Go
Authors), which takes them from Cephes (Stephen L. Moshier) and FreeBSD's msun.
"""

from __future__ import annotations

import math

from .golibm import _FOUR_OVER_PI, _PI3_4, _PI_2, _PI_4, NAN, _bits, _from_bits

_M64 = (1 << 64) - 1
_PI4A = 7.85398125648498535156e-1
_PI4B = 3.77489470793079817668e-8
_PI4C = 2.69515142907905952645e-15
_REDUCE_THRESHOLD = float(1 << 29)


def _arctan_inv(n: int, one: int) -> int:
    """arctan(1/n) * one, by its series, in integers."""
    total = term = one // n
    k, n2, sign = 1, n * n, -1
    while term:
        term //= n2
        total += sign * (term // (2 * k + 1))
        k, sign = k + 1, -sign
    return total


def _four_over_pi_words(count: int = 20) -> tuple[int, ...]:
    """4/pi as `count` 64-bit words, the integer part first (binary fixed point)."""
    guard = 64
    one = 1 << (64 * (count - 1) + guard)
    pi = 4 * (4 * _arctan_inv(5, one) - _arctan_inv(239, one))  # Machin
    value = ((4 * one) << (64 * (count - 1) + guard)) // pi >> guard
    return tuple((value >> (64 * (count - 1 - i))) & _M64 for i in range(count))


_M_PI4 = _four_over_pi_words()


def _trig_reduce(x: float) -> tuple[int, float]:
    """Payne-Hanek: the octant j and x - j*pi/4, for x >= 2**29."""
    if x < _PI_4:
        return 0, x
    ix = _bits(x)
    e = ((ix >> 52) & 0x7FF) - 1023 - 52
    ix = (ix & ((1 << 52) - 1)) | (1 << 52)
    digit, shift = divmod(e + 61, 64)
    w = _M_PI4

    def window(i: int) -> int:
        return ((w[i] << shift) | (w[i + 1] >> (64 - shift))) & _M64

    z0, z1, z2 = window(digit), window(digit + 1), window(digit + 2)
    z2hi = (z2 * ix) >> 64
    z1full = z1 * ix
    z1hi, z1lo = z1full >> 64, z1full & _M64
    z0lo = (z0 * ix) & _M64
    lo_sum = z1lo + z2hi
    lo, carry = lo_sum & _M64, lo_sum >> 64
    hi = (z0lo + z1hi + carry) & _M64
    j = hi >> 61
    hi = ((hi << 3) | (lo >> 61)) & _M64
    lz = 64 - hi.bit_length()
    exp_bits = (1023 - (lz + 1)) & _M64
    s = lz + 1
    hi = ((hi << s) & _M64) | ((lo >> (64 - s)) if s < 64 else lo if s == 64 else 0)
    hi >>= 12
    hi |= (exp_bits << 52) & _M64
    z = _from_bits(hi)
    if j & 1:
        j = (j + 1) & 7
        z -= 1
    return j, z * _PI_4


_SIN = (1.58962301576546568060e-10, -2.50507477628578072866e-8, 2.75573136213857245213e-6,
        -1.98412698295895385996e-4, 8.33333333332211858878e-3, -1.66666666666666307295e-1)
_COS = (-1.13585365213876817300e-11, 2.08757008419747316778e-9, -2.75573141792967388112e-7,
        2.48015872888517045348e-5, -1.38888888888730564116e-3, 4.16666666666665929218e-2)


def _octant(x: float) -> tuple[int, float]:
    if x >= _REDUCE_THRESHOLD:
        return _trig_reduce(x)
    j = int(x * _FOUR_OVER_PI)
    y = float(j)
    if j & 1:
        j += 1
        y += 1
    j &= 7
    return j, ((x - y * _PI4A) - y * _PI4B) - y * _PI4C


def _sin_poly(z: float, zz: float) -> float:
    s = _SIN
    return z + z * zz * ((((((s[0] * zz) + s[1]) * zz + s[2]) * zz + s[3]) * zz + s[4]) * zz + s[5])


def _cos_poly(zz: float) -> float:
    c = _COS
    return 1.0 - 0.5 * zz + zz * zz * ((((((c[0] * zz) + c[1]) * zz + c[2]) * zz + c[3]) * zz + c[4]) * zz + c[5])


def cos(x: float) -> float:
    if x != x or math.isinf(x):
        return NAN
    x = abs(x)
    j, z = _octant(x)
    sign = False
    if j > 3:
        j -= 4
        sign = not sign
    if j > 1:
        sign = not sign
    zz = z * z
    y = _sin_poly(z, zz) if j in (1, 2) else _cos_poly(zz)
    return -y if sign else y


def sin(x: float) -> float:
    if x == 0 or x != x:
        return x
    if math.isinf(x):
        return NAN
    sign = x < 0
    if sign:
        x = -x
    j, z = _octant(x)
    if j > 3:
        sign = not sign
        j -= 4
    zz = z * z
    y = _cos_poly(zz) if j in (1, 2) else _sin_poly(z, zz)
    return -y if sign else y


_TAN_P = (-1.30936939181383777646e4, 1.15351664838587416140e6, -1.79565251976484877988e7)
_TAN_Q = (1.0, 1.36812963470692954678e4, -1.32089234440210967447e6, 2.50083801823357915839e7,
          -5.38695755929454629881e7)


def tan(x: float) -> float:
    if x == 0 or x != x:
        return x
    if math.isinf(x):
        return NAN
    sign = x < 0
    if sign:
        x = -x
    if x >= _REDUCE_THRESHOLD:
        j, z = _trig_reduce(x)
    else:
        j = int(x * _FOUR_OVER_PI)
        y = float(j)
        if j & 1:
            j += 1
            y += 1
        z = ((x - y * _PI4A) - y * _PI4B) - y * _PI4C
    zz = z * z
    if zz > 1e-14:
        p, q = _TAN_P, _TAN_Q
        y = z + z * (zz * (((p[0] * zz) + p[1]) * zz + p[2]) / ((((zz + q[1]) * zz + q[2]) * zz + q[3]) * zz + q[4]))
    else:
        y = z
    if j & 2:
        y = -1 / y
    return -y if sign else y


_ATAN_P = (-8.750608600031904122785e-01, -1.615753718733365076637e+01, -7.500855792314704667340e+01,
           -1.228866684490136173410e+02, -6.485021904942025371773e+01)
_ATAN_Q = (2.485846490142306297962e+01, 1.650270098316988542046e+02, 4.328810604912902668951e+02,
           4.853903996359136964868e+02, 1.945506571482613964425e+02)
_MOREBITS = 6.123233995736765886130e-17
_TAN3PIO8 = 2.41421356237309504880


def _xatan(x: float) -> float:
    p, q = _ATAN_P, _ATAN_Q
    z = x * x
    z = z * ((((p[0] * z + p[1]) * z + p[2]) * z + p[3]) * z + p[4]) / (((((z + q[0]) * z + q[1]) * z + q[2]) * z + q[3]) * z + q[4])
    return x * z + x


def _satan(x: float) -> float:
    if x <= 0.66:
        return _xatan(x)
    if x > _TAN3PIO8:
        return _PI_2 - _xatan(1 / x) + _MOREBITS
    return _PI_4 + _xatan((x - 1) / (x + 1)) + 0.5 * _MOREBITS


def atan(x: float) -> float:
    if x == 0:
        return x
    if x > 0:
        return _satan(x)
    if x != x:
        return x
    return -_satan(-x)


def asin(x: float) -> float:
    if x == 0:
        return x
    sign = x < 0
    if sign:
        x = -x
    if x > 1 or x != x:
        return NAN
    t = math.sqrt(1 - x * x)
    t = _PI_2 - _satan(t / x) if x > 0.7 else _satan(x / t)
    return -t if sign else t


def acos(x: float) -> float:
    return _PI_2 - asin(x)


def atan2(y: float, x: float) -> float:
    if y != y or x != x:
        return NAN
    if y == 0:
        if x >= 0 and math.copysign(1.0, x) > 0:
            return math.copysign(0.0, y)
        return math.copysign(math.pi, y)
    if x == 0:
        return math.copysign(_PI_2, y)
    if math.isinf(x):
        if x > 0:
            return math.copysign(_PI_4, y) if math.isinf(y) else math.copysign(0.0, y)
        return math.copysign(_PI3_4, y) if math.isinf(y) else math.copysign(math.pi, y)
    if math.isinf(y):
        return math.copysign(_PI_2, y)
    q = atan(y / x)
    if x < 0:
        return q + math.pi if q <= 0 else q - math.pi
    return q
