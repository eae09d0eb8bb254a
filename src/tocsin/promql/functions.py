"""PromQL functions, with Prometheus 2.42 semantics.

Three shapes cover every function: *range* functions see one series' samples inside the
window at a time; *elementwise* functions map each sample value; *special* functions
need the whole vector or the call node (absent, label_replace, sort...) and are driven
by the engine directly.
"""

from __future__ import annotations

import calendar
import math
import time as _time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from . import gomath as G
from . import nodes as N
from .errors import PromQLEvalError, PromQLParseError
from .labels import METRIC_NAME, Labels, drop_name, get, is_valid_label_name, set_label, without
from .matchers import compile_anchored
from .values import Sample

NAN = math.nan
INF = math.inf


class Window(NamedTuple):
    """What a range function knows about its window besides the samples."""

    mint: int  # window start, ms, inclusive
    maxt: int  # window end, ms, inclusive
    range_ms: int
    ts: int  # evaluation time of the step, ms


@dataclass(frozen=True)
class FunctionDef:
    name: str
    kind: str  # "range", "elementwise", "special"
    fn: Callable[..., Any]
    matrix_arg: int = 0
    keep_name: bool = False
    check: Callable[[N.Call], None] | None = None

    def validate(self, node: N.Call) -> None:
        if self.check is not None:
            self.check(node)


# --------------------------------------------------------------------------- range functions


def _non_decreasing(vals: Sequence[float]) -> bool:
    """True when there is certainly no counter reset (C-speed check; NaN says no)."""
    as_list = list(vals)
    return as_list == sorted(as_list)


def _finite_sum(vals: Sequence[float]) -> float | None:
    """Exact sum when every value is finite, else None (callers take the slow path)."""
    try:
        s = math.fsum(vals)
    except (ValueError, OverflowError):
        return None
    return s if math.isfinite(s) else None


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


def f_irate(tss: Sequence[int], vals: Sequence[float], w: Window) -> float | None:
    return _instant_value(tss, vals, True)


def f_idelta(tss: Sequence[int], vals: Sequence[float], w: Window) -> float | None:
    return _instant_value(tss, vals, False)


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
    for t, v in zip(tss, vals):
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


def f_deriv(tss: Sequence[int], vals: Sequence[float], w: Window) -> float | None:
    if len(vals) < 2:
        return None
    return _linear_regression(tss, vals, tss[0])[0]


def f_predict_linear(tss: Sequence[int], vals: Sequence[float], w: Window, duration: float) -> float | None:
    if len(vals) < 2:
        return None
    slope, intercept = _linear_regression(tss, vals, w.ts)
    return slope * duration + intercept


def f_avg_over_time(tss: Sequence[int], vals: Sequence[float], w: Window) -> float | None:
    fast = _finite_sum(vals)
    if fast is not None:
        return fast / len(vals)
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


def f_sum_over_time(tss: Sequence[int], vals: Sequence[float], w: Window) -> float | None:
    fast = _finite_sum(vals)
    if fast is not None:
        return fast
    s = 0.0
    c = 0.0
    for v in vals:
        s, c = _kahan_inc(v, s, c)
    if math.isinf(s):
        return s
    return s + c


def f_count_over_time(tss: Sequence[int], vals: Sequence[float], w: Window) -> float | None:
    return float(len(vals))


def f_min_over_time(tss: Sequence[int], vals: Sequence[float], w: Window) -> float | None:
    if _finite_sum(vals) is not None:
        return min(vals)
    m = vals[0]
    for v in vals:
        if v < m or m != m:
            m = v
    return m


def f_max_over_time(tss: Sequence[int], vals: Sequence[float], w: Window) -> float | None:
    if _finite_sum(vals) is not None:
        return max(vals)
    m = vals[0]
    for v in vals:
        if v > m or m != m:
            m = v
    return m


def f_last_over_time(tss: Sequence[int], vals: Sequence[float], w: Window) -> float | None:
    return vals[-1]


def f_present_over_time(tss: Sequence[int], vals: Sequence[float], w: Window) -> float | None:
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


def f_stdvar_over_time(tss: Sequence[int], vals: Sequence[float], w: Window) -> float | None:
    return _variance(vals)


def f_stddev_over_time(tss: Sequence[int], vals: Sequence[float], w: Window) -> float | None:
    return G.sqrt(_variance(vals))


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


def f_quantile_over_time(tss: Sequence[int], vals: Sequence[float], w: Window, q: float) -> float | None:
    return quantile(q, vals)


def f_changes(tss: Sequence[int], vals: Sequence[float], w: Window) -> float | None:
    changes = 0
    prev = vals[0]
    for v in vals[1:]:
        if v != prev and not (v != v and prev != prev):
            changes += 1
        prev = v
    return float(changes)


def f_resets(tss: Sequence[int], vals: Sequence[float], w: Window) -> float | None:
    resets = 0
    prev = vals[0]
    for v in vals[1:]:
        if v < prev:
            resets += 1
        prev = v
    return float(resets)


# --------------------------------------------------------------------------- elementwise


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

_DATE_FUNCS = {
    "minute": _minute,
    "hour": _hour,
    "day_of_week": _day_of_week,
    "day_of_month": _day_of_month,
    "day_of_year": _day_of_year,
    "days_in_month": _days_in_month,
    "month": _month,
    "year": _year,
}

# --------------------------------------------------------------------------- special functions
# Signature: fn(args: list[evaluated values], node, ts_ms) -> value.


def s_time(args: list[Any], node: N.Call, ts: int) -> float:
    return ts / 1000.0


def s_vector(args: list[Any], node: N.Call, ts: int) -> list[Sample]:
    return [Sample((), args[0])]


def s_scalar(args: list[Any], node: N.Call, ts: int) -> float:
    vec = args[0]
    if len(vec) != 1:
        return NAN
    return vec[0].value


def absent_labels(arg: N.Expr) -> Labels:
    """Labels absent() invents: the selector's equality matchers, minus any label
    that is also constrained some other way (it cannot know a single value for it)."""
    if isinstance(arg, N.MatrixSelector):
        arg = arg.selector
    if not isinstance(arg, N.VectorSelector):
        return ()
    out: dict[str, str] = {}
    dropped: list[str] = []
    for m in arg.matchers:
        if m.name == METRIC_NAME:
            continue
        if m.op == "=" and m.name not in out:
            out[m.name] = m.value
        else:
            dropped.append(m.name)
    for d in dropped:
        out.pop(d, None)
    return tuple(sorted((k, v) for k, v in out.items() if v != ""))


def s_absent(args: list[Any], node: N.Call, ts: int) -> list[Sample]:
    if args[0]:
        return []
    return [Sample(absent_labels(node.args[0]), 1.0)]


def s_sort(args: list[Any], node: N.Call, ts: int) -> list[Sample]:
    return sorted(args[0], key=lambda s: (s.value != s.value, s.value))


def s_sort_desc(args: list[Any], node: N.Call, ts: int) -> list[Sample]:
    return sorted(args[0], key=lambda s: (s.value != s.value, -s.value))


def s_clamp(args: list[Any], node: N.Call, ts: int) -> list[Sample]:
    vec, lo, hi = args
    if hi < lo:
        return []
    return [Sample(drop_name(s.labels), G.gmax(lo, G.gmin(hi, s.value))) for s in vec]


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


def s_histogram_quantile(args: list[Any], node: N.Call, ts: int) -> list[Sample]:
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


def _go_expand(template: str, m: Any) -> str:
    """Go regexp.Expand: $1, ${1}, $name, ${name}, $$; unknown groups expand to ''."""
    out: list[str] = []
    i = 0
    n = len(template)
    while i < n:
        ch = template[i]
        if ch != "$":
            j = template.find("$", i)
            if j < 0:
                j = n
            out.append(template[i:j])
            i = j
            continue
        if i + 1 < n and template[i + 1] == "$":
            out.append("$")
            i += 2
            continue
        j = i + 1
        brace = j < n and template[j] == "{"
        if brace:
            j += 1
        k = j
        while k < n and (template[k].isalnum() or template[k] == "_"):
            k += 1
        name = template[j:k]
        if not name or (brace and (k >= n or template[k] != "}")):
            out.append("$")
            i += 1
            continue
        i = k + 1 if brace else k
        if name.isdigit() and name.isascii():
            idx = int(name)
            if idx <= m.re.groups:
                g = m.group(idx)
                if g is not None:
                    out.append(g)
        else:
            gi = m.re.groupindex.get(name)
            if gi is not None:
                g = m.group(gi)
                if g is not None:
                    out.append(g)
    return "".join(out)


def _literal(node: N.Expr) -> str:
    if not isinstance(node, N.StringLiteral):
        raise PromQLParseError("expected a string literal")
    return node.value


def _check_label_replace(node: N.Call) -> None:
    dst, _repl, _src, regex = (_literal(a) for a in node.args[1:5])
    try:
        compile_anchored(regex)
    except PromQLParseError:
        raise PromQLParseError(f"invalid regular expression in label_replace(): {regex}") from None
    if not is_valid_label_name(dst):
        raise PromQLParseError(f"invalid destination label name in label_replace(): {dst}")


def s_label_replace(args: list[Any], node: N.Call, ts: int) -> list[Sample]:
    vec, dst, repl, src, regex_s = args
    regex = compile_anchored(regex_s)
    out: list[Sample] = []
    seen: set[Labels] = set()
    memo: dict[Labels, Labels] = {}
    for s in vec:
        new = memo.get(s.labels)
        if new is None:
            m = regex.search(get(s.labels, src))
            if m is None:
                new = s.labels
            else:
                new = set_label(s.labels, dst, _go_expand(repl, m))
            memo[s.labels] = new
        if new in seen:
            raise PromQLEvalError(f"duplicated label set in output of label_replace(): {new}")
        seen.add(new)
        out.append(Sample(new, s.value))
    return out


def _check_label_join(node: N.Call) -> None:
    dst = _literal(node.args[1])
    for a in node.args[3:]:
        src = _literal(a)
        if not is_valid_label_name(src):
            raise PromQLParseError(f"invalid source label name in label_join(): {src}")
    if not is_valid_label_name(dst):
        raise PromQLParseError(f"invalid destination label name in label_join(): {dst}")


def s_label_join(args: list[Any], node: N.Call, ts: int) -> list[Sample]:
    vec, dst, sep = args[0], args[1], args[2]
    srcs = args[3:]
    out: list[Sample] = []
    for s in vec:
        joined = sep.join(get(s.labels, name) for name in srcs)
        out.append(Sample(set_label(s.labels, dst, joined), s.value))
    return out


def _check_string_literals(node: N.Call) -> None:
    for a in node.args:
        if a.type == N.STRING and not isinstance(a, N.StringLiteral):
            raise PromQLParseError(f"{node.name}(): string arguments must be literals")


def _chain(*checks: Callable[[N.Call], None]) -> Callable[[N.Call], None]:
    def run(node: N.Call) -> None:
        for c in checks:
            c(node)

    return run


# --------------------------------------------------------------------------- the table

FUNCTIONS: dict[str, FunctionDef] = {}


def _reg(fd: FunctionDef) -> None:
    FUNCTIONS[fd.name] = fd


_RANGE: list[tuple[str, Callable[..., float | None]]] = [
    ("rate", f_rate),
    ("increase", f_increase),
    ("delta", f_delta),
    ("irate", f_irate),
    ("idelta", f_idelta),
    ("deriv", f_deriv),
    ("predict_linear", f_predict_linear),
    ("avg_over_time", f_avg_over_time),
    ("sum_over_time", f_sum_over_time),
    ("count_over_time", f_count_over_time),
    ("min_over_time", f_min_over_time),
    ("max_over_time", f_max_over_time),
    ("stddev_over_time", f_stddev_over_time),
    ("stdvar_over_time", f_stdvar_over_time),
    ("present_over_time", f_present_over_time),
    ("changes", f_changes),
    ("resets", f_resets),
]
for _name, _rfn in _RANGE:
    _reg(FunctionDef(_name, "range", _rfn))
_reg(FunctionDef("last_over_time", "range", f_last_over_time, keep_name=True))
_reg(FunctionDef("quantile_over_time", "range", f_quantile_over_time, matrix_arg=1))


def _driven_by_engine(*args: Any) -> None:
    raise AssertionError("evaluated by the engine itself")


_reg(FunctionDef("absent_over_time", "absent_over_time", _driven_by_engine))

_ELEMENTWISE: list[tuple[str, Callable[..., float]]] = [
    ("abs", math.fabs),
    ("ceil", G.ceil),
    ("floor", G.floor),
    ("exp", G.exp),
    ("sqrt", G.sqrt),
    ("ln", G.ln),
    ("log2", G.log2),
    ("log10", G.log10),
    ("sgn", _sgn),
    ("round", _round),
    ("clamp_min", _clamp_min),
    ("clamp_max", _clamp_max),
    ("sin", G.sin),
    ("cos", G.cos),
    ("tan", G.tan),
    ("asin", G.asin),
    ("acos", G.acos),
    ("atan", G.atan),
    ("sinh", G.sinh),
    ("cosh", G.cosh),
    ("tanh", G.tanh),
    ("asinh", G.asinh),
    ("acosh", G.acosh),
    ("atanh", G.atanh),
    ("deg", lambda v: v * 180 / math.pi),
    ("rad", lambda v: v * math.pi / 180),
    *_DATE_FUNCS.items(),
]
for _name, _fn in _ELEMENTWISE:
    _reg(FunctionDef(_name, "elementwise", _fn))

_reg(FunctionDef("time", "special", s_time))
_reg(FunctionDef("vector", "special", s_vector))
_reg(FunctionDef("scalar", "special", s_scalar))
_reg(FunctionDef("absent", "special", s_absent))
_reg(FunctionDef("sort", "special", s_sort))
_reg(FunctionDef("sort_desc", "special", s_sort_desc))
_reg(FunctionDef("clamp", "special", s_clamp))
_reg(FunctionDef("histogram_quantile", "special", s_histogram_quantile))
_reg(
    FunctionDef(
        "label_replace", "special", s_label_replace, check=_chain(_check_string_literals, _check_label_replace)
    )
)
_reg(FunctionDef("label_join", "special", s_label_join, check=_chain(_check_string_literals, _check_label_join)))
_reg(FunctionDef("timestamp", "timestamp", _driven_by_engine))

DATE_FUNCTIONS = frozenset(_DATE_FUNCS)
