"""Evaluation of a parsed expression against a Storage.

Every evaluation step is an instant evaluation at one timestamp; a range query is the
same evaluation repeated per step. Prometheus gets the same results with a vectorised
"range evaluation", but per-step evaluation keeps every operator in one obvious place.
What makes it cheap enough: selectors hit storage once per query (cached per selector
node, windowed with `bisect` afterwards), and subquery steps are memoised per query so
overlapping windows of consecutive range steps are not recomputed. Nothing recurses, however
deep the expression: nodes that need other nodes' values are generators (trampoline.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from . import nodes as N
from .aggregations import aggregate
from .errors import PromQLEvalError
from .fastpath import FAST_RANGE_FUNCTIONS, RangeSeries, fast_range, latest_samples, select_series, windows
from .functions import FunctionDef, Window, absent_labels
from .labels import Labels, drop_name
from .operators import check_unique as _check_unique
from .operators import evaluate_operators
from .parse import parse
from .storage import SeriesRef, Storage
from .trampoline import Evaluation, drive
from .values import Matrix, Sample, Scalar, Series, String, Value, Vector

# How far back an instant selector looks for a sample (Prometheus's default, 5 minutes).
DEFAULT_LOOKBACK_MS = 300_000
DEFAULT_SUBQUERY_STEP_MS = 60_000
# Prometheus's query.max-samples and query.timeout: one expensive query (a `[1w:1ms]`
# subquery) must fail with a reason, not hold the rule thread or the memory for hours.
DEFAULT_MAX_SAMPLES = 50_000_000
DEFAULT_TIMEOUT_S = 120.0
TOO_MANY_SAMPLES = "query processing would load too many samples into memory in query execution"


def _one_name(vs: N.VectorSelector) -> bool:
    return any(m.name == "__name__" and m.op == "=" for m in vs.matchers)


class Evaluator:
    """State of one query: its time range, options and per-query caches."""

    def __init__(
        self,
        storage: Storage,
        start_ms: int,
        end_ms: int,
        lookback_ms: int = DEFAULT_LOOKBACK_MS,
        subquery_step_ms: int = DEFAULT_SUBQUERY_STEP_MS,
        max_samples: int = DEFAULT_MAX_SAMPLES,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.storage = storage
        self.start = start_ms
        self.end = end_ms
        self.lookback = lookback_ms
        self.subquery_step = subquery_step_ms
        # Samples held at once: range-vector copies while their function runs, subquery
        # points until their consumer is done, the query's output. Instant vectors and the
        # store's own arrays, bounded by the store, are not counted (as the hot paths stay cheap).
        self.samples = 0
        self.max_samples = max_samples
        self.deadline = time.monotonic() + timeout_s
        self._bounds: dict[int, tuple[int, int]] = {}
        self._selected: dict[int, tuple[Sequence[SeriesRef], int, AbstractContextManager[Any]]] = {}
        self._memo: dict[int, dict[int, list[Sample]]] = {}  # subquery inner node -> step -> result
        self._subquery_first: list[int] = []  # first step of each subquery being evaluated
        # Nodes whose value needs no other node's, and the others' evaluations (trampoline.py).
        self._leaves: dict[type, Any] = {
            N.NumberLiteral: lambda n, _ts: n.value,
            N.StringLiteral: lambda n, _ts: n.value,
            N.VectorSelector: self._vector_selector,
            N.MatrixSelector: lambda n, ts: list(self._matrix(n, ts)[0]),
        }
        self._inner: dict[type, Any] = {
            N.Subquery: self._subquery_value,
            N.Call: self._call,
            N.Aggregate: self._aggregate,
            N.Binary: lambda n, ts: evaluate_operators(n, ts, self.check_time),
            N.Unary: lambda n, ts: evaluate_operators(n, ts, self.check_time),
        }

    # ------------------------------------------------------------------ selection

    def prepare(self, node: N.Expr) -> None:
        """Work out, per selector, the time span the whole query can read."""
        self._collect(node, self.start, self.end)

    def _at_span(self, at: N.At | None, start: int, end: int) -> tuple[int, int]:
        if at is None:
            return start, end
        t = self._at_time(at, start)
        return t, t

    def _at_time(self, at: N.At, _ts: int) -> int:
        if at.kind == "ms":
            return at.ms
        return self.start if at.kind == "start" else self.end

    def _collect(self, node: N.Expr, start: int, end: int) -> None:
        # An explicit stack: a 50 000-term chain is as deep as it is long.
        stack = [(node, start, end)]
        while stack:
            node, start, end = stack.pop()
            if isinstance(node, N.VectorSelector):
                s, e = self._at_span(node.at, start, end)
                self._widen(node, s - node.offset_ms - self.lookback, e - node.offset_ms)
            elif isinstance(node, N.MatrixSelector):
                vs = node.selector
                s, e = self._at_span(vs.at, start, end)
                self._widen(vs, s - vs.offset_ms - node.range_ms, e - vs.offset_ms)
            elif isinstance(node, N.Subquery):
                s, e = self._at_span(node.at, start, end)
                stack.append((node.expr, s - node.offset_ms - node.range_ms, e - node.offset_ms))
            else:
                stack.extend((c, start, end) for c in N.children(node))

    def _widen(self, vs: N.VectorSelector, mint: int, maxt: int) -> None:
        old = self._bounds.get(id(vs))
        if old is not None:
            mint, maxt = min(mint, old[0]), max(maxt, old[1])
        self._bounds[id(vs)] = (mint, maxt)

    def _select(self, vs: N.VectorSelector) -> tuple[Sequence[SeriesRef], int, AbstractContextManager[Any]]:
        """The series a selector matches, sorted by labels; the earliest time the query
        reads of them (a series whose newest NaN, `nan_t`, is older cannot hold a stale
        marker the query sees, so the hot loops skip staleness checks for it); and the
        lock to hold while reading their arrays."""
        got = self._selected.get(id(vs))
        if got is None:
            mint, maxt = self._bounds.get(id(vs), (-(1 << 62), 1 << 62))
            series, lock = select_series(self.storage, vs.matchers, mint, maxt)
            got = (series, mint, lock)
            self._selected[id(vs)] = got
        return got

    # ------------------------------------------------------------------ budget

    def take(self, n: int) -> None:
        """Count `n` more samples held; fail the query past its budget."""
        self.samples += n
        if self.samples > self.max_samples:
            raise PromQLEvalError(TOO_MANY_SAMPLES)

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise PromQLEvalError("query timed out in expression evaluation")

    # ------------------------------------------------------------------ evaluation

    def eval(self, node: N.Expr, ts: int) -> Any:
        """The value of `node` at `ts`."""
        leaf = self._leaves.get(type(node))
        if leaf is not None:
            return leaf(node, ts)
        return self.run(self._inner[type(node)](node, ts))

    def run(self, evaluation: Evaluation) -> Any:
        """The value an evaluation (a generator of this class) ends with."""
        return drive(evaluation, self._leaves, self._inner)

    def _vector_selector(self, vs: N.VectorSelector, ts: int, sample_times: bool = False) -> list[Sample]:
        ref = (ts if vs.at is None else self._at_time(vs.at, ts)) - vs.offset_ms
        selected, sel_mint, lock = self._select(vs)
        return latest_samples(selected, sel_mint, lock, ref, self.lookback, sample_times)

    def _timestamp_selector(self, vs: N.VectorSelector, ts: int) -> list[Sample]:
        """timestamp(x @ T offset o) as 2.42 has it: the sample picked at T (the offset
        dropped), but among those fetched for the selector: [T-o-lookback, T-o]."""
        if vs.at is None or vs.offset_ms == 0:
            return self._vector_selector(vs, ts, sample_times=True)
        at = self._at_time(vs.at, ts)
        fetched_to = at - vs.offset_ms
        newest = min(at, fetched_to)
        oldest = max(at, fetched_to) - self.lookback
        selected, sel_mint, lock = self._select(vs)
        return latest_samples(selected, sel_mint, lock, newest, newest - oldest, True)

    def _range(self, node: N.Expr, ts: int, at_moves: bool = False) -> Evaluation:
        """A matrix selector or subquery for the window ending at ts: (series, Window)."""
        if isinstance(node, N.MatrixSelector):
            return self._matrix(node, ts, at_moves)
        if isinstance(node, N.Subquery):
            return (yield from self._subquery(node, ts))
        raise PromQLEvalError(f"expected a range vector, got {node.type}")

    def _matrix(self, node: N.MatrixSelector, ts: int, at_moves: bool = False) -> tuple[Iterable[RangeSeries],
                                                                                        Window]:
        """`at_moves` (predict_linear): 2.42 moves `@ T` with a subquery's steps, to
        T + (ts - first step), over the samples fetched for T."""
        vs = node.selector
        maxt = (ts if vs.at is None else self._at_time(vs.at, ts)) - vs.offset_ms
        mint = maxt - node.range_ms
        if at_moves and vs.at is not None and self._subquery_first:
            moved = maxt + ts - self._subquery_first[-1]
            mint, maxt = max(mint, moved - node.range_ms), min(maxt, moved)
        selected, sel_mint, lock = self._select(vs)
        return windows(selected, sel_mint, lock, mint, maxt), Window(mint, maxt, node.range_ms, ts)

    def _subquery_value(self, node: N.Subquery, ts: int) -> Evaluation:
        series, _ = yield from self._subquery(node, ts)
        return series

    def _subquery(self, node: N.Subquery, ts: int) -> Evaluation:
        maxt = (ts if node.at is None else self._at_time(node.at, ts)) - node.offset_ms
        mint = maxt - node.range_ms
        step = node.step_ms or self.subquery_step
        first = -((-mint) // step) * step  # first multiple of step not before mint
        acc: dict[Labels, tuple[list[int], list[float]]] = {}
        inner = node.expr
        memo = self._memo.get(id(inner))
        if memo is None:
            memo = self._memo[id(inner)] = {}
        elif len(memo) > 2 * (node.range_ms // step + 1):
            # Range steps slide forward: steps before this window are not needed again.
            for old in [k for k in memo if k < first]:
                del memo[old]
        t = first
        check_time = self.check_time
        take = self.take
        self._subquery_first.append(first)
        while t <= maxt:
            check_time()
            got = memo.get(t)
            if got is None:
                got = memo[t] = yield inner, t
            take(len(got) or 1)  # an empty step still costs its memo entry
            _append_step(acc, got, t)
            t += step
        self._subquery_first.pop()  # (an error ends the whole query)
        return [(lbl, p[0], p[1]) for lbl, p in acc.items()], Window(mint, maxt, node.range_ms, ts)

    def _call(self, node: N.Call, ts: int) -> Evaluation:
        fd = node.impl
        kind = fd.kind
        if kind == "range":
            if fd.name in FAST_RANGE_FUNCTIONS and isinstance(node.args[0], N.MatrixSelector):
                fast = self._fast_range(fd, node.args[0], ts)
                # Series of one metric name stay unique without it.
                return fast if fd.keep_name or _one_name(node.args[0].selector) else _check_unique(fast)
            mi = fd.matrix_arg
            held = self.samples
            series, window = yield from self._range(node.args[mi], ts, fd.name == "predict_linear")
            if isinstance(node.args[mi], N.MatrixSelector):
                self.take(sum(len(s[1]) for s in series))
            extra = []
            for i, a in enumerate(node.args):
                if i != mi:
                    extra.append((yield a, ts))
            fn = fd.fn
            keep_name = fd.keep_name
            out: list[Sample] = []
            for lbl, tss, vals in series:
                v = fn(tss, vals, window, *extra)
                if v is not None:
                    out.append(Sample(lbl if keep_name else drop_name(lbl), v))
            self.samples = held  # the window copies are gone once the function is done
            return _check_unique(out)
        if kind == "elementwise":
            vec = (yield node.args[0], ts) if node.args else [Sample((), ts / 1000.0)]
            extra = []
            for a in node.args[1:]:
                extra.append((yield a, ts))
            fn = fd.fn
            return _check_unique([Sample(drop_name(lbl), fn(v, *extra)) for lbl, v in vec])
        if kind == "special":
            args = []
            for a in node.args:
                args.append((yield a, ts))
            res = fd.fn(args, node, ts)
            if isinstance(res, list):
                _check_unique(res)
            return res
        if kind == "absent_over_time":
            held = self.samples
            series, _ = yield from self._range(node.args[0], ts)
            self.samples = held
            if any(True for _ in series):
                return []
            return [Sample(absent_labels(node.args[0]), 1.0)]
        if kind == "timestamp":
            arg = node.args[0]
            if isinstance(arg, N.VectorSelector):
                vec = self._timestamp_selector(arg, ts)
                return _check_unique([Sample(drop_name(lbl), v) for lbl, v in vec])
            vec = yield arg, ts
            return _check_unique([Sample(drop_name(lbl), ts / 1000.0) for lbl, _ in vec])
        raise PromQLEvalError(f"function {node.name} has no implementation")

    def _fast_range(self, fd: FunctionDef, node: N.MatrixSelector, ts: int) -> list[Sample]:
        vs = node.selector
        maxt = (ts if vs.at is None else self._at_time(vs.at, ts)) - vs.offset_ms
        selected, sel_mint, lock = self._select(vs)
        return fast_range(fd, selected, sel_mint, lock, Window(maxt - node.range_ms, maxt, node.range_ms, ts))

    def _aggregate(self, node: N.Aggregate, ts: int) -> Evaluation:
        vec = yield node.expr, ts
        param = (yield node.param, ts) if node.param is not None else None
        return aggregate(node.op, vec, node.grouping, node.without, param)


# ---------------------------------------------------------------------- public entry points


def _as_expr(expr: str | N.Expr) -> N.Expr:
    return parse(expr) if isinstance(expr, str) else expr


def instant_query(
    expr: str | N.Expr,
    storage: Storage,
    t_ms: int,
    lookback_ms: int = DEFAULT_LOOKBACK_MS,
    subquery_step_ms: int = DEFAULT_SUBQUERY_STEP_MS,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Value:
    """Evaluate at one instant, as a rule evaluation or Prometheus' /api/v1/query does.

    Fails with PromQLEvalError past `max_samples` held at once or `timeout_s` of work.
    """
    node = _as_expr(expr)
    ev = Evaluator(storage, t_ms, t_ms, lookback_ms, subquery_step_ms, max_samples, timeout_s)
    ev.prepare(node)
    if node.type in (N.MATRIX,):
        series, _ = ev.run(ev._range(node, t_ms))
        return Matrix(Series(lbl, list(t), list(v)) for lbl, t, v in series)
    res = ev.eval(node, t_ms)
    if node.type == N.SCALAR:
        return Scalar(res)
    if node.type == N.STRING:
        return String(res)
    return Vector(res)


def range_query(
    expr: str | N.Expr,
    storage: Storage,
    start_ms: int,
    end_ms: int,
    step_ms: int,
    lookback_ms: int = DEFAULT_LOOKBACK_MS,
    subquery_step_ms: int = DEFAULT_SUBQUERY_STEP_MS,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Matrix:
    """Evaluate at start, start+step, ... <= end; one Series per label set, sorted by labels.

    Fails with PromQLEvalError past `max_samples` held at once or `timeout_s` of work.
    """
    node = _as_expr(expr)
    if node.type not in (N.SCALAR, N.VECTOR):
        raise PromQLEvalError(
            f'invalid expression type "{node.type}" for range query, must be Scalar or instant Vector'
        )
    if step_ms <= 0:
        raise PromQLEvalError("zero or negative query resolution step widths are not accepted")
    if end_ms < start_ms:
        raise PromQLEvalError("end timestamp must not be before start time")
    ev = Evaluator(storage, start_ms, end_ms, lookback_ms, subquery_step_ms, max_samples, timeout_s)
    ev.prepare(node)
    acc: dict[Labels, tuple[list[int], list[float]]] = {}
    output = 0
    t = start_ms
    while t <= end_ms:
        ev.check_time()
        res = ev.eval(node, t)
        if node.type == N.VECTOR:
            output += len(res)
        else:
            output += 1
        ev.samples = 0  # what this step held is gone; subquery memos are counted again as they refill
        ev.take(output)
        if node.type == N.SCALAR:
            res = [Sample((), res)]
        _append_step(acc, res, t)
        t += step_ms
    return Matrix(Series(lbl, acc[lbl][0], acc[lbl][1]) for lbl in sorted(acc))


def _append_step(acc: dict[Any, tuple[list[int], list[float]]], samples: Iterable[tuple[Any, float]], t: int) -> None:
    """Add one step's samples to per-series (times, values) lists: how a subquery and a range
    query build their series, step after step."""
    for lbl, v in samples:
        pts = acc.get(lbl)
        if pts is None:
            pts = acc[lbl] = ([], [])
        pts[0].append(t)
        pts[1].append(v)
