"""Elementwise math: each sample's value mapped through a Go-semantics function
(gomath), plus clamp, which needs its bounds before it can drop the whole vector."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .. import gomath as G
from .. import nodes as N
from ..labels import drop_name
from ..values import Sample


def _sgn(v: float) -> float:
    if v < 0:
        return -1.0
    if v > 0:
        return 1.0
    return v


def _round(v: float, to_nearest: float = 1.0) -> float:
    inv = G.div(1.0, to_nearest)
    return G.div(G.floor(v * inv + 0.5), inv)


def _clamp_min(v: float, lo: float) -> float:
    return G.gmax(lo, v)


def _clamp_max(v: float, hi: float) -> float:
    return G.gmin(hi, v)


def _deg(v: float) -> float:
    return v * 180 / math.pi


def _rad(v: float) -> float:
    return v * math.pi / 180


def s_clamp(args: list[Any], _node: N.Call, _ts: int) -> list[Sample]:
    vec, lo, hi = args
    if hi < lo:
        return []
    return [Sample(drop_name(s.labels), G.gmax(lo, G.gmin(hi, s.value))) for s in vec]


MATH: dict[str, Callable[..., float]] = {
    "abs": math.fabs,
    "ceil": G.ceil,
    "floor": G.floor,
    "exp": G.exp,
    "sqrt": G.sqrt,
    "ln": G.ln,
    "log2": G.log2,
    "log10": G.log10,
    "sgn": _sgn,
    "round": _round,
    "clamp_min": _clamp_min,
    "clamp_max": _clamp_max,
    "sin": G.sin,
    "cos": G.cos,
    "tan": G.tan,
    "asin": G.asin,
    "acos": G.acos,
    "atan": G.atan,
    "sinh": G.sinh,
    "cosh": G.cosh,
    "tanh": G.tanh,
    "asinh": G.asinh,
    "acosh": G.acosh,
    "atanh": G.atanh,
    "deg": _deg,
    "rad": _rad,
}


def s_pi(_args: list[Any], _node: N.Call, _ts: int) -> float:
    """pi(): in Prometheus since 2.24, so rule files written for 2.42 may use it."""
    return math.pi
