"""Random input series and random well-typed PromQL expressions, for the differential tests.

Series: counters with resets and gaps, gauges with NaN, ±Inf, huge and tiny values, stale
markers and gaps, and a classic histogram (cumulative `le` buckets). Expressions: every
function, aggregation, operator and modifier tocsin's parser allows, typed so that most
are valid, with the mistakes PromQL users make (many-to-one without group_left, duplicate
series after dropping names) left in, since an error must be an error in both engines.
"""

from __future__ import annotations

import math
import random

INTERVAL_S = 15
POINTS = 41  # 10 minutes of samples
STALE = "stale"


# ------------------------------------------------------------------ series


def _fmt(v: float) -> str:
    if v != v:
        return "NaN"
    if math.isinf(v):
        return "Inf" if v > 0 else "-Inf"
    return repr(v)


def _counter(rnd: random.Random) -> list[str | None]:
    v = float(rnd.choice([0, 1, 100, rnd.randint(0, 10**6)]))
    out: list[str | None] = []
    for _ in range(POINTS):
        r = rnd.random()
        if r < 0.05:
            v = float(rnd.randint(0, 5))  # a reset
        elif r < 0.1:
            out.append(None)
            continue
        else:
            v += rnd.choice([0.0, 1.0, float(rnd.randint(0, 50)), round(rnd.uniform(0, 10), 3)])
        out.append(_fmt(v))
    return out


def _gauge(rnd: random.Random) -> list[str | None]:
    scale = rnd.choice([1.0, 100.0, 1e-3, 1e6, 1e18])
    out: list[str | None] = []
    for _ in range(POINTS):
        r = rnd.random()
        if r < 0.03:
            out.append(rnd.choice(["NaN", "Inf", "-Inf"]))
        elif r < 0.06:
            out.append(STALE)
        elif r < 0.12:
            out.append(None)
        elif r < 0.2:
            out.append(_fmt(float(rnd.randint(-3, 3))))
        else:
            out.append(_fmt(round(rnd.uniform(-1, 1) * scale, rnd.choice([0, 2, 6, 17]))))
    return out


def random_series(rnd: random.Random) -> list[tuple[str, list[str | None]]]:
    """(series text, one value or None per step) for the metrics the expressions use."""
    series: list[tuple[str, list[str | None]]] = []
    for job in ("a", "b"):
        for inst in rnd.sample(["1", "2", "3"], rnd.randint(1, 3)):
            series.append((f'c{{job="{job}",inst="{inst}"}}', _counter(rnd)))
            series.append((f'g{{job="{job}",inst="{inst}"}}', _gauge(rnd)))
    for job in rnd.sample(["a", "b"], rnd.randint(1, 2)):
        base = _counter(rnd)
        prev: list[float] = [0.0] * POINTS
        for le in ("0.1", "0.5", "1", "+Inf"):
            vals: list[str | None] = []
            for i, b in enumerate(base):
                if b is None:
                    vals.append(None)
                    continue
                prev[i] = prev[i] + float(b) * rnd.choice([0.0, 0.3, 0.5, 1.0])
                vals.append(_fmt(prev[i]))
            series.append((f'h_bucket{{job="{job}",le="{le}"}}', vals))
    return series


# ------------------------------------------------------------------ expressions

_RANGE_FUNCS = ["rate", "increase", "delta", "irate", "idelta", "deriv", "avg_over_time", "sum_over_time",
                "count_over_time", "min_over_time", "max_over_time", "stddev_over_time", "stdvar_over_time",
                "present_over_time", "last_over_time", "changes", "resets", "absent_over_time"]
_MATH = ["abs", "ceil", "floor", "exp", "sqrt", "ln", "log2", "log10", "sgn", "sin", "cos", "tan", "asin", "acos",
         "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "deg", "rad"]
_DATES = ["minute", "hour", "day_of_week", "day_of_month", "day_of_year", "days_in_month", "month", "year"]
_AGGS = ["sum", "avg", "min", "max", "count", "group", "stddev", "stdvar"]
_ARITH = ["+", "-", "*", "/", "%", "^", "atan2"]
_CMP = ["==", "!=", ">", "<", ">=", "<="]
_LABELS = ["job", "inst", "le"]
_SCALARS = ["0", "1", "2", "-1", "0.5", "3.7", "1e3", "-2.5", "NaN", "Inf", "-Inf", "1e-3", "0.25", "100", "1e17"]


class ExprGen:
    def __init__(self, rnd: random.Random) -> None:
        self.r = rnd

    def pick(self, xs: list[str]) -> str:
        return self.r.choice(xs)

    def selector(self) -> str:
        name = self.pick(["c", "g", "g", "h_bucket", "c"])
        r = self.r.random()
        if r < 0.5:
            m = ""
        elif r < 0.7:
            m = f'{{job="{self.pick(["a", "b"])}"}}'
        elif r < 0.85:
            m = f'{{inst=~"{self.pick(["1|2", "2", ".*", "3|x"])}"}}'
        else:
            m = f'{{job!="{self.pick(["a", "b"])}"}}'
        return name + m

    def modifiers(self) -> str:
        out = ""
        r = self.r.random()
        if r < 0.1:
            out += f" @ {self.pick(['60', '300', '540', '599.5', 'start()', 'end()', '-60'])}"
        if self.r.random() < 0.15:
            out += f" offset {self.pick(['1m', '30s', '-1m', '5m', '2m15s', '-5m'])}"
        return out

    def matrix(self, depth: int) -> str:
        if depth > 0 and self.r.random() < 0.2:
            step = self.pick(["", "30s", "1m", "20s"])
            return f"({self.vector(depth - 1)})[{self.pick(['2m', '5m', '3m'])}:{step}]" + self.modifiers()
        rng = self.pick(["1m", "2m", "5m", "45s", "10m", "30s"])
        return f"{self.selector()}[{rng}]" + self.modifiers()

    def scalar(self, depth: int) -> str:
        r = self.r.random()
        if depth <= 0 or r < 0.55:
            return self.pick(_SCALARS)
        if r < 0.7:
            return f"scalar({self.vector(depth - 1)})"
        if r < 0.78:
            return self.pick(["time()", "pi()"])
        if r < 0.9:
            return f"({self.scalar(depth - 1)} {self.pick(_ARITH)} {self.scalar(depth - 1)})"
        return f"({self.scalar(depth - 1)} {self.pick(_CMP)} bool {self.scalar(depth - 1)})"

    def grouping(self) -> str:
        r = self.r.random()
        if r < 0.4:
            return ""
        labels = ", ".join(self.r.sample(_LABELS, self.r.randint(0, 2)))
        return f" {self.pick(['by', 'without'])} ({labels})"

    def matching(self) -> str:
        r = self.r.random()
        if r < 0.5:
            return ""
        labels = ", ".join(self.r.sample(_LABELS, self.r.randint(0, 2)))
        out = f" {self.pick(['on', 'ignoring'])}({labels})"
        if self.r.random() < 0.3:
            out += f" {self.pick(['group_left', 'group_right'])}"
            if self.r.random() < 0.4:
                out += f"({self.pick(_LABELS)})"
        return out

    def vector(self, depth: int) -> str:  # noqa: C901 - one branch per kind of expression
        r = self.r.random()
        if depth <= 0 or r < 0.2:
            return self.selector() + self.modifiers()
        d = depth - 1
        if r < 0.32:
            f = self.pick(_RANGE_FUNCS)
            return f"{f}({self.matrix(d)})"
        if r < 0.36:
            f = self.pick(["predict_linear", "quantile_over_time", "holt_winters"])
            if f == "predict_linear":
                return f"predict_linear({self.matrix(d)}, {self.scalar(d)})"
            if f == "quantile_over_time":
                return f"quantile_over_time({self.scalar(d)}, {self.matrix(d)})"
            return f"holt_winters({self.matrix(d)}, {self.pick(['0.5', '0.1', '0.9'])}, {self.pick(['0.3', '0.8'])})"
        if r < 0.44:
            return f"{self.pick(_MATH)}({self.vector(d)})"
        if r < 0.47:
            f = self.pick(_DATES)
            return f"{f}({self.vector(d)})" if self.r.random() < 0.8 else f"{f}()"
        if r < 0.52:
            f = self.pick(["round", "clamp_min", "clamp_max", "clamp"])
            if f == "clamp":
                return f"clamp({self.vector(d)}, {self.scalar(d)}, {self.scalar(d)})"
            if f == "round" and self.r.random() < 0.4:
                return f"round({self.vector(d)})"
            return f"{f}({self.vector(d)}, {self.scalar(d)})"
        if r < 0.62:
            agg = self.pick(_AGGS + ["topk", "bottomk", "quantile", "count_values"])
            if agg in ("topk", "bottomk"):
                return f"{agg}{self.grouping()} ({self.pick(['1', '2', '0', '5'])}, {self.vector(d)})"
            if agg == "quantile":
                return f"quantile{self.grouping()} ({self.scalar(d)}, {self.vector(d)})"
            if agg == "count_values":
                return f'count_values{self.grouping()} ("v", {self.vector(d)})'
            return f"{agg}{self.grouping()} ({self.vector(d)})"
        if r < 0.74:
            op = self.pick(_ARITH + _CMP + ["and", "or", "unless"])
            if op in _CMP and self.r.random() < 0.5:
                op += " bool"
            return f"({self.vector(d)} {op}{self.matching()} {self.vector(d)})"
        if r < 0.84:
            op = self.pick(_ARITH + _CMP)
            if op in _CMP and self.r.random() < 0.4:
                op += " bool"
            if self.r.random() < 0.5:
                return f"({self.vector(d)} {op} {self.scalar(d)})"
            return f"({self.scalar(d)} {op} {self.vector(d)})"
        if r < 0.86:
            return f"-{self.vector(d)}"
        if r < 0.88:
            return f"vector({self.scalar(d)})"
        if r < 0.9:
            return f"timestamp({self.vector(d)})"
        if r < 0.92:
            return f"histogram_quantile({self.scalar(d)}, {self.vector(d)})"
        if r < 0.94:
            return f'label_replace({self.vector(d)}, "{self.pick(["dst", "job"])}", "{self.pick(["x$1", "$1$2", "", "y"])}", "{self.pick(_LABELS)}", "{self.pick(["(.*)", "([a-z])(.*)", "1", ""])}")'
        if r < 0.95:
            return f'label_join({self.vector(d)}, "{self.pick(["dst", "job"])}", "-", "{self.pick(_LABELS)}", "{self.pick(_LABELS)}")'
        if r < 0.97:
            return f"{self.pick(['absent', 'sort', 'sort_desc'])}({self.vector(d)})"
        if r < 0.98:
            f = self.pick(["histogram_count", "histogram_sum"])
            return f"{f}({self.vector(d)})"
        if r < 0.99:
            return f"histogram_fraction({self.scalar(d)}, {self.scalar(d)}, {self.vector(d)})"
        return f"({self.vector(d)})"

    def expression(self) -> str:
        r = self.r.random()
        if r < 0.06:
            return self.odd_syntax()
        if r < 0.15:
            return self.scalar(2)
        return self.vector(self.r.randint(1, 3))

    def odd_syntax(self) -> str:
        """Spellings at the edge of 2.42's grammar, valid or not: Prometheus 3 syntax, raw
        strings, renamed and newer functions, type errors. Each must load in both or in neither."""
        v = self.vector(1)
        forms = [
            f'sum by ("job") ({v})', f'{self.pick(["c", "g"])}{{"job"=~".+"}}', f"({v}) * on(\"job\") ({v})",
            f"vector({self.pick(['90s', '1m', '5m30s'])})", f"{self.selector()} offset 5m + 30s",
            "g{inst=~`1|\\d`}", "c{job=~`a\\.b|a`}", 'c{job="a\\q"}',
            f"double_exponential_smoothing({self.matrix(0)}, 0.5, 0.5)", f"holt_winters({self.matrix(0)}, 0.5, 0.5)",
            f"mad_over_time({self.matrix(0)})", f"limitk(1, {v})", f"histogram_stddev({v})", f"rate({v})",
            f"sort({self.matrix(0)})", f"({v}) + bool ({v})", "{}", '{job=~".*"}', f"{self.selector()} @ -1e3",
            f"{self.selector()}[5m] @ -30.5 offset -1m", f"timestamp({self.selector()} @ 400 offset 2m)",
            f"label_replace({v}, \"a-b\", \"x\", \"job\", \".*\")", f'count_values("a b", {v})',
            f"info({v})", f"{self.selector()}[1m:0s]", f"sum({v}) without ()", f"pi() + {self.scalar(0)}",
        ]
        return self.pick(forms)
