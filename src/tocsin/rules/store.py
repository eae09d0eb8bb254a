"""The sample store: recent samples of the series rules read, nothing else, bounded.

Rules only ever look a few minutes back, so the store keeps per series two compact arrays
(`array('q')` timestamps in ms, `array('d')` values: 16 bytes a sample) trimmed to the
longest window any rule reads of it plus a margin: H + M, where H is a range selector's
range + offset, or an instant selector's offset + 5m lookback (a range reads no sample
before its range), and M is the longest evaluation interval + 60 s. A series no rule
selects is dropped at ingest, decided once per label set; a series whose newest sample is
older than H + M (a removed target, a label value that changed) holds nothing any rule can
read and is dropped by a sweep once a minute. So the store holds at most, per series
reported within its H + M, (H + M) * 9/8 / interval + 1 samples (trims run in batches of
1/8): the bound is series x the longest window, whatever the uptime. It implements the PromQL engine's `Storage` protocol; `select` copies the
requested window under the lock so evaluation (on a worker thread) never sees a
half-appended series; `select_refs`, the engine's fast path, hands out the series
themselves and the lock, which the engine holds for each pass over them (as long as
`select` used to hold it to copy). Matcher results are cached while the set of series
is unchanged, so a rule evaluation allocates nothing per series to select. Like a Prometheus scrape, a series a target stops reporting, or a
target removed by a reload, gets a staleness marker so alerts on it resolve.
"""

from __future__ import annotations

import threading
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import Any

from ..metrics.exposition import MetricSample
from ..promql import DEFAULT_LOOKBACK_MS, STALE_NAN, Series
from ..promql import nodes as N
from ..promql.labels import METRIC_NAME, Labels, drop_name, get
from ..promql.matchers import Matcher
from ..promql.storage import NEVER_MS, UNKNOWN_MS
from .files import selectors

BYTES_PER_SAMPLE = 16  # 8-byte timestamp + 8-byte float, amortised array growth aside
SWEEP_EVERY_MS = 60_000  # how often (in sample time) series out of every rule's reach are dropped



class _Series:
    """One series' samples, changed only in place and only under the store's lock. The
    engine reads the arrays without copying while it holds that lock for one pass over a
    selector's series, so the objects live as long as the series (no churn for the
    garbage collector) and a pass sees one consistent state."""

    __slots__ = ("labels", "unnamed", "ts", "vals", "retention", "nan_t", "change_t", "reset_t")

    def __init__(self, labels: Labels, retention: int) -> None:
        self.labels = labels
        self.unnamed = drop_name(labels)  # what most functions and operators return
        self.ts = array("q")
        self.vals = array("d")
        self.retention = retention
        # Newest timestamp of a NaN sample (stale markers included), of a sample that
        # differs from the one before it, and of one lower than the one before it. A
        # window starting at or after them holds no NaN, no change or no counter reset,
        # which lets range functions skip scanning it.
        self.nan_t = NEVER_MS
        self.change_t = NEVER_MS
        self.reset_t = NEVER_MS

    def append(self, t: int, v: float) -> None:
        if v != v and t > self.nan_t:
            self.nan_t = t
        ts, vals = self.ts, self.vals
        if ts and t <= ts[-1]:
            i = bisect_left(ts, t)
            if ts[i] == t:
                vals[i] = v
            else:
                ts.insert(i, t)
                vals.insert(i, v)
            self.change_t = self.reset_t = UNKNOWN_MS  # history rewritten: no longer known
            return
        if vals:
            last = vals[-1]
            if v != last and (v == v or last == last):
                self.change_t = t
                if v < last:
                    self.reset_t = t
        ts.append(t)
        vals.append(v)
        # Trim in batches: at most ~1/8 of the window is kept beyond the retention.
        if t - ts[0] > self.retention + (self.retention >> 3):
            cut = bisect_left(ts, t - self.retention)
            del ts[:cut]
            del vals[:cut]


class Interest:
    """Which series rules select, and for how long (per metric name)."""

    def __init__(self) -> None:
        self.by_name: dict[str, list[tuple[tuple[Matcher, ...], int]]] = {}
        self.anonymous: list[tuple[tuple[Matcher, ...], int]] = []  # selectors without a fixed name

    def add(self, matchers: Sequence[Matcher], history_ms: int) -> None:
        name = next((m.value for m in matchers if m.name == METRIC_NAME and m.op == "="), None)
        rest = tuple(m for m in matchers if not (m.name == METRIC_NAME and m.op == "="))
        if name is None:
            self.anonymous.append((rest, history_ms))
        else:
            self.by_name.setdefault(name, []).append((rest, history_ms))

    def retention_for(self, labels: Labels) -> int:
        """The history (ms) some rule needs of this series, or -1 if no rule selects it."""
        name = get(labels, METRIC_NAME)
        best = -1
        for matchers, history in self.by_name.get(name, ()):
            if history > best and all(m.matches(get(labels, m.name)) for m in matchers):
                best = history
        for matchers, history in self.anonymous:
            if history > best and all(m.matches(get(labels, m.name)) for m in matchers):
                best = history
        return best

    def may_want(self, name: str) -> bool:
        return bool(self.anonymous) or name in self.by_name


class SampleStore:
    """Thread-safe: probe results arrive on the event loop, evaluations run on a worker thread."""

    def __init__(self, interest: Interest | None = None, margin_ms: int = 60_000) -> None:
        self._lock = threading.RLock()
        self._series: dict[Labels, _Series] = {}
        self._by_name: dict[str, dict[Labels, _Series]] = {}
        self._rejected: set[Labels] = set()
        self._label_cache: dict[tuple[str, tuple[tuple[str, str], ...]], Labels] = {}
        self._target_series: dict[str, set[Labels]] = {}
        # Matcher results, valid while the set of series is unchanged (`_generation`).
        self._generation = 0
        self._matched: dict[tuple[Matcher, ...], tuple[int, list[_Series]]] = {}
        self.margin_ms = margin_ms
        self.interest = interest or Interest()
        self._next_sweep_ms = 0

    # ---------------------------------------------------------------- configuration
    def set_interest(self, interest: Interest, margin_ms: int | None = None) -> None:
        """New rules: forget decisions, drop series no rule selects any more, re-size windows."""
        with self._lock:
            self.interest = interest
            if margin_ms is not None:
                self.margin_ms = margin_ms
            self._rejected.clear()
            for labels in list(self._series):
                retention = interest.retention_for(labels)
                if retention < 0:
                    self._drop(labels)
                else:
                    self._series[labels].retention = retention + self.margin_ms

    def _drop(self, labels: Labels) -> None:
        s = self._series.pop(labels, None)
        if s is not None:
            self._generation += 1
            name = get(labels, METRIC_NAME)
            group = self._by_name.get(name)
            if group is not None:
                group.pop(labels, None)
                if not group:
                    del self._by_name[name]

    def _sweep(self, now_ms: int) -> None:
        """Drop series whose newest sample is older than their window: no rule can read any
        of it (a removed target's, one whose label value changed). Without this, label churn
        and target churn would grow the store for as long as the daemon runs; runs once a
        minute of sample time, O(series)."""
        self._next_sweep_ms = now_ms + SWEEP_EVERY_MS
        gone = [labels for labels, s in self._series.items() if not s.ts or now_ms - s.ts[-1] > s.retention]
        for labels in gone:
            self._drop(labels)

    # ---------------------------------------------------------------- writing
    def add(self, labels: Labels, t_ms: int, value: float) -> None:
        """One sample (rule outputs, ALERTS, tests); ignored unless some rule selects the series."""
        with self._lock:
            self._add(labels, t_ms, value)

    def _add(self, labels: Labels, t_ms: int, value: float) -> bool:
        s = self._series.get(labels)
        if s is None:
            if labels in self._rejected:
                return False
            retention = self.interest.retention_for(labels)
            if retention < 0:
                if len(self._rejected) > 1_000_000:
                    self._rejected.clear()
                self._rejected.add(labels)
                return False
            s = _Series(labels, retention + self.margin_ms)
            self._generation += 1
            self._series[labels] = s
            self._by_name.setdefault(get(labels, METRIC_NAME), {})[labels] = s
        s.append(t_ms, value)
        return True

    def _labels(self, name: str, pairs: tuple[tuple[str, str], ...]) -> Labels:
        key = (name, pairs)
        labels = self._label_cache.get(key)
        if labels is None:
            labels = tuple(sorted(((METRIC_NAME, name),) + tuple(p for p in pairs if p[1] != "")))
            if len(self._label_cache) > 2_000_000:
                self._label_cache.clear()
            self._label_cache[key] = labels
        return labels

    def may_want(self, name: str) -> bool:
        """Whether some rule may select series named `name`: the metrics registry asks before
        it builds a family's samples for the store (its counters, for instance)."""
        return self.interest.may_want(name)

    def ingest(self, target: str, samples: list[MetricSample], unix_time: float) -> None:
        """ProbeMetrics listener: one probe result's samples (its gauges and the target's
        counters, as /metrics serves them), then stale markers for series the target stopped
        reporting. Only series some rule selects are stored."""
        t_ms = int(unix_time * 1000)
        wanted = self.interest.may_want
        with self._lock:
            kept: set[Labels] = set()
            for name, pairs, value in samples:
                if wanted(name):
                    labels = self._labels(name, pairs)
                    if self._add(labels, t_ms, value):
                        kept.add(labels)
            previous = self._target_series.get(target)
            if previous:
                for labels in previous - kept:
                    s = self._series.get(labels)
                    if s is not None:
                        s.append(t_ms, STALE_NAN)
            if kept:
                self._target_series[target] = kept
            elif previous is not None:
                del self._target_series[target]  # no empty set kept for each target no rule reads
            if t_ms >= self._next_sweep_ms:
                self._sweep(t_ms)

    def remove_target(self, target: str, unix_time: float) -> None:
        """The target was removed by a reload: end its series so alerts on it resolve."""
        t_ms = int(unix_time * 1000)
        with self._lock:
            for labels in self._target_series.pop(target, set()):
                s = self._series.get(labels)
                if s is not None:
                    s.append(t_ms, STALE_NAN)

    def shift(self, delta_ms: int) -> None:
        """Move every stored sample by `delta_ms`: the wall clock stepped (tocsin/clock.py).

        Afterwards the history reads as if stamped with the new clock, so lookback windows,
        ranges and staleness see no gap (forward step) and no overlap (backward step)."""
        if not delta_ms:
            return
        with self._lock:
            for s in self._series.values():
                s.ts[:] = array("q", [t + delta_ms for t in s.ts])  # in place: the engine holds refs
                for name in ("nan_t", "change_t", "reset_t"):
                    t = getattr(s, name)
                    if t not in (NEVER_MS, UNKNOWN_MS):
                        setattr(s, name, t + delta_ms)

    # ---------------------------------------------------------------- reading
    def _matching(self, matchers: Sequence[Matcher]) -> list[_Series]:
        """Series matching every matcher, sorted by labels; cached while the series set is
        unchanged (call with the lock held)."""
        key = tuple(matchers)
        hit = self._matched.get(key)
        if hit is not None and hit[0] == self._generation:
            return hit[1]
        name_ms = [m for m in matchers if m.name == METRIC_NAME]
        rest = [m for m in matchers if m.name != METRIC_NAME]
        eq = next((m for m in name_ms if m.op == "="), None)
        if eq is not None:
            groups = [self._by_name[eq.value]] if eq.value in self._by_name else []
        else:
            groups = [g for n, g in self._by_name.items() if all(m.matches(n) for m in name_ms)]
        found: list[_Series] = []
        for group in groups:
            for labels, s in group.items():
                if rest and not all(m.matches(get(labels, m.name)) for m in rest):
                    continue
                found.append(s)
        found.sort(key=lambda x: x.labels)
        if len(self._matched) > 1024:
            self._matched.clear()
        self._matched[key] = (self._generation, found)
        return found

    # maxt_ms is part of the Storage protocol; nothing newer than the evaluation time is ever
    # stored here, so the store needs no upper bound.
    def select(self, matchers: Sequence[Matcher], mint_ms: int, maxt_ms: int) -> list[Series]:  # noqa: ARG002 - above
        out: list[Series] = []
        with self._lock:
            for s in self._matching(matchers):
                ts = s.ts
                i = bisect_left(ts, mint_ms)
                if i >= len(ts):
                    continue
                out.append(Series(s.labels, ts[i:], s.vals[i:]))
        return out

    # The engine bounds the window itself (with bisect on the shared arrays): no bounds needed here.
    def select_refs(self, matchers: Sequence[Matcher], mint_ms: int, maxt_ms: int) -> tuple[Sequence[Any], Any]:  # noqa: ARG002
        """The engine's fast path: the matching series themselves (sorted by labels, unique;
        each a `promql.storage.SeriesRef`) and the lock the engine must hold while it reads them. Read-only: the list is shared by every query
        until the series set changes."""
        with self._lock:
            return self._matching(matchers), self._lock

    # ---------------------------------------------------------------- accounting
    def stats(self) -> dict[str, int]:
        with self._lock:
            samples = sum(len(s.ts) for s in self._series.values())
            allocated = sum(s.ts.buffer_info()[1] * s.ts.itemsize + s.vals.buffer_info()[1] * s.vals.itemsize
                            for s in self._series.values())
            return {"series": len(self._series), "samples": samples, "array_bytes": allocated}

    def __len__(self) -> int:
        return len(self._series)


def build_interest(exprs: Iterable[Any], lookback_ms: int = DEFAULT_LOOKBACK_MS) -> Interest:
    """The selectors of every rule expression, each with the history it needs: an instant
    selector looks `lookback_ms` back for its newest sample, a range selector reads its range
    and nothing before it (the engine selects from evaluation time - offset - range)."""
    interest = Interest()
    for expr in exprs:
        ranged = _range_selector_ids(expr)
        for sel, history in selectors(expr):
            assert isinstance(sel, N.VectorSelector)
            interest.add(sel.matchers, history + (0 if id(sel) in ranged else lookback_ms))
    return interest


def _range_selector_ids(expr: Any) -> set[int]:
    """id() of every vector selector that is the inside of a range selector in `expr`."""
    out: set[int] = set()
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, N.MatrixSelector):
            out.add(id(node.selector))
        else:
            stack.extend(N.children(node))
    return out


__all__ = ["SampleStore", "Interest", "build_interest", "BYTES_PER_SAMPLE"]
