"""quantile() (of aggregations and quantile_over_time) and histogram_quantile.

Both follow Prometheus: linear interpolation between ranks, and for classic histograms
buckets with equal bounds merged and counts forced monotonic before interpolating
inside the bucket the rank falls into.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .. import gomath as G
from .. import nodes as N
from ..labels import Labels, drop_name, get, without
from ..values import Sample

NAN = math.nan
INF = math.inf


def quantile(q: float, values: Sequence[float]) -> float:
    """Prometheus' quantile(): linear interpolation between closest ranks, NaN sorts first."""
    if not values:
        return NAN
    if q < 0:
        return -INF
    if q > 1:
        return INF
    if q != q:
        return NAN
    vs = sorted(values, key=lambda v: (v == v, v))
    n = float(len(vs))
    rank = q * (n - 1)
    lower = max(0.0, math.floor(rank))
    upper = min(n - 1, lower + 1)
    weight = rank - math.floor(rank)
    return vs[int(lower)] * (1 - weight) + vs[int(upper)] * weight


def _bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    if q != q:
        return NAN
    if q < 0:
        return -INF
    if q > 1:
        return INF
    buckets.sort(key=lambda b: b[0])
    if not math.isinf(buckets[-1][0]) or buckets[-1][0] < 0:
        return NAN
    # Merge buckets with equal bounds (e.g. le="1" and le="1.0"), then force counts
    # to be monotonic: scrapes of different buckets are not atomic.
    merged: list[list[float]] = []
    for ub, c in buckets:
        if merged and merged[-1][0] == ub:
            merged[-1][1] += c
        else:
            merged.append([ub, c])
    mx = -INF
    for bucket in merged:
        if bucket[1] > mx:
            mx = bucket[1]
        elif bucket[1] < mx:
            bucket[1] = mx
    if len(merged) < 2:
        return NAN
    observations = merged[-1][1]
    if observations == 0:
        return NAN
    rank = q * observations
    counts = [b[1] for b in merged[:-1]]
    # first bucket index whose count >= rank (sort.Search over len-1 buckets)
    lo, hi = 0, len(counts)
    while lo < hi:
        mid = (lo + hi) // 2
        if counts[mid] >= rank:
            hi = mid
        else:
            lo = mid + 1
    idx = lo
    if idx == len(merged) - 1:
        return merged[-2][0]
    if idx == 0 and merged[0][0] <= 0:
        return merged[0][0]
    bucket_start = 0.0
    bucket_end = merged[idx][0]
    count = merged[idx][1]
    if idx > 0:
        bucket_start = merged[idx - 1][0]
        count -= merged[idx - 1][1]
        rank -= merged[idx - 1][1]
    return bucket_start + (bucket_end - bucket_start) * G.div(rank, count)


def _parse_go_float(s: str) -> float | None:
    try:
        return float(s)
    except ValueError:
        try:
            return float.fromhex(s)
        except ValueError:
            return None


def s_histogram_quantile(args: list[Any], _node: N.Call, _ts: int) -> list[Sample]:
    q, vec = args
    groups: dict[Labels, tuple[Labels, list[tuple[float, float]]]] = {}
    le_only = frozenset({"le"})
    for s in vec:
        ub = _parse_go_float(get(s.labels, "le"))
        if ub is None:
            continue
        key = without(s.labels, le_only)
        g = groups.get(key)
        if g is None:
            g = (drop_name(key), [])
            groups[key] = g
        g[1].append((ub, s.value))
    return [Sample(lbl, _bucket_quantile(q, bks)) for lbl, bks in groups.values() if bks]


def s_native_histogram_only(_args: list[Any], _node: N.Call, _ts: int) -> list[Sample]:
    """histogram_count, histogram_sum, histogram_fraction: 2.42 computes them on native
    histograms only, which tocsin does not store; over float samples they give nothing."""
    return []
