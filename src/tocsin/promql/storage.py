"""What the engine reads samples from.

The engine asks once per selector and query for the matching series and then does its
own windowing with `bisect`, so a store only has to hand over per-series sorted arrays;
it may return more samples than asked for (e.g. whole arrays, without copying).

Two contracts: every store implements `Storage.select` (copies, or anything shaped like
`values.Series`). A store that rules read every few seconds also implements
`RefStorage.select_refs`, which lends the engine its own series (`SeriesRef`): no copy
per evaluation of thousands of series, and facts the store keeps on append (newest NaN,
change, counter reset) that let fastpath.py skip scanning windows. tsdb.SampleStore is
that store; `MemoryStorage` below only implements `select`.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

from .labels import METRIC_NAME, Labels, get
from .matchers import Matcher
from .values import Series

# Timestamps (ms) a SeriesRef's facts take when there is nothing to report (before any
# sample) or nothing known (after history was rewritten, or for a copied series).
NEVER_MS = -(1 << 62)
UNKNOWN_MS = 1 << 62


@runtime_checkable
class Storage(Protocol):
    def select(self, matchers: Sequence[Matcher], mint_ms: int, maxt_ms: int) -> Iterable[Series]:
        """Series whose labels satisfy every matcher (a missing label counts as "").

        Timestamps (ms) must be sorted ascending with parallel values; samples outside
        [mint_ms, maxt_ms] may be included. Stale markers are `values.STALE_NAN`.
        The engine never mutates what it gets.
        """
        ...


class SeriesRef(Protocol):
    """One series as the store keeps it, lent for one pass and never mutated by the engine."""

    @property
    def labels(self) -> Labels: ...

    @property
    def unnamed(self) -> Labels:
        """`labels` without the metric name, computed once: what most functions return."""
        ...

    @property
    def ts(self) -> Sequence[int]:
        """Timestamps (ms), sorted ascending; parallel to `vals`."""
        ...

    @property
    def vals(self) -> Sequence[float]: ...

    @property
    def nan_t(self) -> int:
        """Newest timestamp of a NaN sample, stale markers included (NEVER_MS if none,
        UNKNOWN_MS if not known). A query reading from after it sees no stale marker."""
        ...

    @property
    def change_t(self) -> int:
        """Newest timestamp of a sample that differs from the one before it: a window
        starting at or after it holds no change (UNKNOWN_MS: not known)."""
        ...

    @property
    def reset_t(self) -> int:
        """Newest timestamp of a sample lower than the one before it (a counter reset):
        a window starting at or after it holds none (UNKNOWN_MS: not known)."""
        ...


@runtime_checkable
class RefStorage(Storage, Protocol):
    def select_refs(self, matchers: Sequence[Matcher], mint_ms: int,
                    maxt_ms: int) -> tuple[Sequence[SeriesRef], AbstractContextManager[Any]]:
        """The matching series themselves, sorted by labels and unique, not copied, and
        the lock the engine holds while it reads their arrays (once per pass over them),
        so it never sees a half-appended series. The sequence may be shared between
        queries: read-only."""
        ...


class _MemSeries:
    __slots__ = ("labels", "timestamps", "values")

    def __init__(self, labels: Labels) -> None:
        self.labels = labels
        self.timestamps: list[int] = []
        self.values: array[float] = array("d")


class MemoryStorage:
    """In-memory store: one pair of sorted arrays per series, indexed by metric name."""

    def __init__(self) -> None:
        self._series: dict[Labels, _MemSeries] = {}
        self._by_name: dict[str, list[_MemSeries]] = {}

    def __len__(self) -> int:
        return len(self._series)

    def add(self, labels: Labels, t_ms: int, value: float) -> None:
        s = self._series.get(labels)
        if s is None:
            s = _MemSeries(labels)
            self._series[labels] = s
            self._by_name.setdefault(get(labels, METRIC_NAME), []).append(s)
        ts = s.timestamps
        if not ts or ts[-1] < t_ms:
            ts.append(t_ms)
            s.values.append(value)
            return
        i = bisect.bisect_left(ts, t_ms)
        if i < len(ts) and ts[i] == t_ms:
            s.values[i] = value  # last write wins, like a re-scrape of the same instant
        else:
            ts.insert(i, t_ms)
            s.values.insert(i, value)

    def add_series(self, labels: Labels, samples: Iterable[tuple[int, float]]) -> None:
        for t, v in samples:
            self.add(labels, t, v)

    def clear(self) -> None:
        self._series.clear()
        self._by_name.clear()

    # maxt_ms: the protocol's; a test store never holds samples after the evaluation time.
    def select(self, matchers: Sequence[Matcher], mint_ms: int, maxt_ms: int) -> list[Series]:  # noqa: ARG002
        # Matchers on the metric name are decided once per name, not once per series.
        name_ms = [m for m in matchers if m.name == METRIC_NAME]
        rest = [m for m in matchers if m.name != METRIC_NAME]
        eq = next((m for m in name_ms if m.op == "="), None)
        if eq is not None:
            names: Iterable[str] = (eq.value,) if eq.value in self._by_name else ()
        else:
            names = self._by_name.keys()
        groups = [self._by_name[n] for n in names if all(m.matches(n) for m in name_ms)]
        out: list[Series] = []
        for group in groups:
            for s in group:
                lbl = s.labels
                if all(m.matches(get(lbl, m.name)) for m in rest):
                    out.append(Series(lbl, s.timestamps, s.values))
        return out
