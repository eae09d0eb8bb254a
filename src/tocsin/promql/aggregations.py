"""Aggregation operators (sum, avg, topk, count_values, ...) with by/without grouping.

Groups come out in order of first appearance, like Prometheus, so `topk` inside an
instant query keeps a predictable order for ordered comparisons.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from ..gofmt import format_float, format_float_fixed
from . import gomath as G
from .errors import PromQLEvalError
from .functions import quantile
from .labels import METRIC_NAME, Labels, is_valid_label_name, keep, memo_table, set_label, without
from .values import Sample

NAN = math.nan


# Grouping keys per (grouping, without) and input label set (labels.memo_table).
_KEYS: dict[tuple[frozenset[str], bool], dict[Labels, Labels]] = {}


def _key_cache(grouping: Sequence[str], is_without: bool) -> tuple[dict[Labels, Labels], Callable[[Labels], Labels]]:
    if is_without:
        names = frozenset(grouping) | {METRIC_NAME}
        make: Callable[[Labels], Labels] = lambda lbl: without(lbl, names)  # noqa: E731 - chosen once, called per series
    else:
        names = frozenset(grouping)
        make = lambda lbl: keep(lbl, names)  # noqa: E731 - chosen once, called per series
    return memo_table(_KEYS, (names, is_without)), make


def _grouping_fn(grouping: Sequence[str], is_without: bool) -> Callable[[Labels], Labels]:
    cache, make = _key_cache(grouping, is_without)

    def key_of(lbl: Labels) -> Labels:
        k = cache.get(lbl)
        if k is None:
            k = cache[lbl] = make(lbl)
        return k

    return key_of


def aggregate(
    op: str,
    vec: list[Sample],
    grouping: Sequence[str],
    is_without: bool,
    param: float | str | None,
) -> list[Sample]:
    if op == "count_values":
        assert isinstance(param, str)
        label = param
        if not is_valid_label_name(label):  # at evaluation, after the argument, as 2.42
            raise PromQLEvalError(f'invalid label name "{label}"')
        if not is_without:
            grouping = tuple(grouping) + (label,)
        vec = [Sample(set_label(s.labels, label, format_float_fixed(s.value)), s.value) for s in vec]
        op = "count"

    if op in ("topk", "bottomk"):
        assert isinstance(param, float)
        return _topk(op == "topk", vec, _grouping_fn(grouping, is_without), param)

    cache, make = _key_cache(grouping, is_without)
    get = cache.get
    if op in ("sum", "count"):
        # Running totals in input order: the same additions as summing each group's list.
        totals: dict[Labels, float] = {}
        tget = totals.get
        counting = op == "count"
        for lbl, v in vec:
            k = get(lbl)
            if k is None:
                k = cache[lbl] = make(lbl)
            t = tget(k)
            if t is None:
                t = 0.0
            totals[k] = t + (1.0 if counting else v)
        return [Sample(k, t) for k, t in totals.items()]

    groups: dict[Labels, list[float]] = {}
    for lbl, v in vec:
        k = get(lbl)
        if k is None:
            k = cache[lbl] = make(lbl)
        g = groups.get(k)
        if g is None:
            groups[k] = [v]
        else:
            g.append(v)

    out: list[Sample] = []
    for k, vals in groups.items():
        out.append(Sample(k, _reduce(op, vals, param)))
    return out


def _reduce(op: str, vals: list[float], param: float | str | None) -> float:
    if op == "sum":
        s = 0.0
        for v in vals:
            s += v
        return s
    if op == "count":
        return float(len(vals))
    if op == "group":
        return 1.0
    if op == "max":
        m = vals[0]
        for v in vals:
            if m < v or m != m:
                m = v
        return m
    if op == "min":
        m = vals[0]
        for v in vals:
            if m > v or m != m:
                m = v
        return m
    if op == "avg":
        mean = vals[0]
        n = 1
        for v in vals[1:]:
            n += 1
            if math.isinf(mean):
                if math.isinf(v) and (mean > 0) == (v > 0):
                    continue
                if not math.isinf(v) and v == v:
                    continue
            mean += v / n - mean / n
        return mean
    if op in ("stddev", "stdvar"):
        mean = vals[0]
        acc = 0.0
        n = 1
        for v in vals[1:]:
            n += 1
            delta = v - mean
            mean += delta / n
            acc += delta * (v - mean)
        var = acc / n
        return G.sqrt(var) if op == "stddev" else var
    if op == "quantile":
        assert isinstance(param, float)
        return quantile(param, vals)
    raise PromQLEvalError(f"unknown aggregation {op!r}")


# The largest float Prometheus takes as an int64 (convertibleToInt64): the float just below 2**63.
_MAX_K = 9223372036854774784.0


def _topk(top: bool, vec: list[Sample], key_of, kf: float) -> list[Sample]:
    # NaN, ±Inf or out of range: an evaluation error in Prometheus (a rule error, not an empty,
    # silently quiet result).
    if not (-9223372036854775808.0 <= kf <= _MAX_K):
        raise PromQLEvalError(f"Scalar value {format_float(kf)} overflows int64")
    k = int(kf)
    if k < 1:
        return []
    groups: dict[Labels, list[Sample]] = {}
    for s in vec:
        groups.setdefault(key_of(s.labels), []).append(s)
    out: list[Sample] = []
    for members in groups.values():
        # NaN ranks below every number for both topk and bottomk, and sorts last.
        if top:
            ranked = sorted(members, key=lambda s: (s.value != s.value, -s.value if s.value == s.value else 0.0))
        else:
            ranked = sorted(members, key=lambda s: (s.value != s.value, s.value if s.value == s.value else 0.0))
        out.extend(ranked[:k])
    return out
