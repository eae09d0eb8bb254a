"""The engine's hot loops: reading selected series in place.

Rules evaluate the same selectors over thousands of series every few seconds, so these
loops are what an evaluation costs. Each selector is resolved once per query into
`SeriesRef`s (storage.py): from a `RefStorage` they are the store's own series, read
under its lock without copying; from any other store they are adapters over `select`'s
result whose facts say "unknown", so no shortcut is ever taken on them. The facts let
the loops skip work: a series whose newest NaN (`nan_t`) is older than anything the
query reads needs no stale-marker check, and rate, increase, delta and changes compute
straight from the arrays when no counter reset (`reset_t`) or change (`change_t`) can be
inside the window. Keep per-sample work out of here: no calls, no allocations per point
that the general path would not make.
"""

from __future__ import annotations

import contextlib
import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from .functions import FunctionDef, Window, extrapolate
from .labels import Labels, drop_name
from .matchers import Matcher
from .storage import NEVER_MS, UNKNOWN_MS, RefStorage, SeriesRef, Storage
from .values import Sample, is_stale

# Range functions with a shortcut when the series' facts allow it.
FAST_RANGE_FUNCTIONS = frozenset({"rate", "increase", "delta", "changes"})

# A range vector as the range functions see it: (labels, timestamps, values) per series.
RangeSeries = tuple[Labels, Sequence[int], Sequence[float]]

_NO_LOCK = contextlib.nullcontext()


class _CopiedSeries:
    """A SeriesRef over a series from `Storage.select`: change and reset unknown, and a
    NaN possible anywhere if the query's span holds one."""

    __slots__ = ("labels", "unnamed", "ts", "vals", "nan_t")
    change_t = UNKNOWN_MS
    reset_t = UNKNOWN_MS

    def __init__(self, labels: Labels, ts: Sequence[int], vals: Sequence[float], has_nan: bool) -> None:
        self.labels = labels
        self.unnamed = drop_name(labels)
        self.ts = ts
        self.vals = vals
        self.nan_t = UNKNOWN_MS if has_nan else NEVER_MS


def _window_has_nan(ts: Sequence[int], vals: Sequence[float], mint: int, maxt: int) -> bool:
    window = vals[bisect_left(ts, mint) : bisect_right(ts, maxt)]
    try:
        return math.isnan(math.fsum(window))  # C-speed NaN scan
    except (ValueError, OverflowError):  # +Inf and -Inf together, or huge values
        return any(v != v for v in window)


def select_series(storage: Storage, matchers: Sequence[Matcher], mint: int,
                  maxt: int) -> tuple[Sequence[SeriesRef], AbstractContextManager[Any]]:
    """The series matching a selector, sorted by labels and unique, with the lock to hold
    while reading them; the query reads nothing of them outside [mint, maxt]."""
    if isinstance(storage, RefStorage):
        return storage.select_refs(matchers, mint, maxt)  # sorted, unique, not copied
    seen: set[Labels] = set()
    found: list[_CopiedSeries] = []
    for s in storage.select(matchers, mint, maxt):
        if s.labels in seen:
            continue
        seen.add(s.labels)
        ts, vals = s.timestamps, s.values
        found.append(_CopiedSeries(s.labels, ts, vals, _window_has_nan(ts, vals, mint, maxt)))
    found.sort(key=lambda x: x.labels)
    return found, _NO_LOCK


def latest_samples(selected: Sequence[SeriesRef], sel_mint: int, lock: AbstractContextManager[Any], ref: int,
                   lookback: int, sample_times: bool) -> list[Sample]:
    """An instant vector selector: each series' newest sample in [ref - lookback, ref] (2.42 includes the start),
    unless it is a stale marker; its time in seconds instead of its value for timestamp()."""
    lo = ref - lookback
    out: list[Sample] = []
    append = out.append
    with lock:
        for s in selected:
            tss = s.ts
            i = bisect_right(tss, ref) - 1
            if i < 0:
                continue
            t = tss[i]
            if t < lo:
                continue
            v = s.vals[i]
            if v != v and s.nan_t >= sel_mint and is_stale(v):
                continue
            append(Sample(s.labels, t / 1000.0 if sample_times else v))
    return out


def window(s: SeriesRef, sel_mint: int, mint: int, maxt: int) -> tuple[Sequence[int], Sequence[float]] | None:
    """A series' samples in [mint, maxt] (copies), stale markers left out."""
    tss = s.ts
    lo = bisect_left(tss, mint)
    hi = bisect_right(tss, maxt, lo)
    if lo >= hi:
        return None
    win_t: Sequence[int] = tss[lo:hi]
    win_v: Sequence[float] = s.vals[lo:hi]
    if s.nan_t >= sel_mint:
        keep = [i for i, x in enumerate(win_v) if not (x != x and is_stale(x))]
        if len(keep) != len(win_v):
            win_t = [win_t[i] for i in keep]
            win_v = [win_v[i] for i in keep]
            if not win_t:
                return None
    return win_t, win_v


def windows(selected: Sequence[SeriesRef], sel_mint: int, lock: AbstractContextManager[Any], mint: int,
            maxt: int) -> list[RangeSeries]:
    """A matrix selector: every series' non-empty window [mint, maxt]."""
    out: list[RangeSeries] = []
    cut = window
    with lock:
        for s in selected:
            got = cut(s, sel_mint, mint, maxt)
            if got is not None:
                out.append((s.labels, got[0], got[1]))
    return out


def fast_range(fd: FunctionDef, selected: Sequence[SeriesRef], sel_mint: int, lock: AbstractContextManager[Any],
               w: Window) -> list[Sample]:
    """rate, increase, delta and changes straight from the stored arrays: without a
    window copy when the series says no NaN, and (counters) no reset or (changes) no
    change, can be inside the window; any other window takes the general path."""
    mint, maxt = w.mint, w.maxt
    name = fd.name
    is_changes = name == "changes"
    is_counter = name != "delta"
    is_rate = name == "rate"
    fn = fd.fn
    keep_name = fd.keep_name
    out: list[Sample] = []
    append = out.append
    with lock:
        for s in selected:
            tss = s.ts
            lo = bisect_left(tss, mint)
            hi = bisect_right(tss, maxt, lo)
            if lo >= hi:
                continue
            t0 = tss[lo]
            if s.nan_t < sel_mint and (s.change_t <= t0 if is_changes else (not is_counter or s.reset_t <= t0)):
                if is_changes:
                    v: float | None = 0.0
                elif hi - lo < 2:
                    continue
                else:
                    vals = s.vals
                    first_v = vals[lo]
                    v = extrapolate(vals[hi - 1] - first_v, first_v, t0, tss[hi - 1], hi - lo, w, is_counter,
                                    is_rate)
            else:
                got = window(s, sel_mint, mint, maxt)
                if got is None:
                    continue
                v = fn(got[0], got[1], w)
            if v is None:
                continue
            append(Sample(s.labels if keep_name else s.unnamed, v))
    return out
