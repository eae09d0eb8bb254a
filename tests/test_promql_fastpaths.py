"""The sample store's fast paths give exactly what the reference storage gives.

Rules read the sample store, which lets the engine skip copies and scans (range functions
straight from the stored arrays when a series says no NaN, reset or change can be in the
window). The conformance cases run on MemoryStorage, which never takes those paths, so
here both storages get the same randomised series (counters with resets, gauges, NaN,
stale markers, out-of-order and rewritten samples) and must answer every query alike.
"""

from __future__ import annotations

import math
import random
import struct

import pytest

from tocsin import promql
from tocsin.promql import STALE_NAN, MemoryStorage
from tocsin.rules.store import SampleStore, build_interest

QUERIES = [
    "rate(c[5m])", "increase(c[5m])", "delta(c[5m])", "changes(c[5m])", "resets(c[5m])",
    "rate(c[1m] offset 30s)", "increase(c[90s])", "changes(g[10m])", "delta(g[2m])", "rate(g[5m])",
    "sum without (k) (rate(c[5m]))", "sum by (k) (increase(c[5m])) / count by (k) (c)",
    "avg_over_time(g[5m])", "max_over_time(g[3m])", "g", "c > 3", "changes(g[10m]) > 1",
    "sum without (k) (rate(c[5m])) / sum without (k) (rate(g[5m]))", "irate(c[5m])", "idelta(g[5m])",
]


def _bits(v: float) -> bytes:
    return struct.pack("<d", v)


def _same(a: promql.Value, b: promql.Value) -> bool:
    if isinstance(a, promql.Vector) and isinstance(b, promql.Vector):
        da, db = {s.labels: s.value for s in a}, {s.labels: s.value for s in b}
        if da.keys() != db.keys():
            return False
        return all(_bits(da[k]) == _bits(db[k]) or (math.isnan(da[k]) and math.isnan(db[k])) for k in da)
    return a == b


def _check_random(rng: random.Random, n_series: int, steps: int) -> int:
    """Write time-major (as probes do), querying both storages as time advances."""
    mem = MemoryStorage()
    exprs = [promql.parse(q) for q in QUERIES]
    # The series' random steps carry some of them minutes ahead of the query time (the
    # slowest series'); a daemon's samples run ahead of an evaluation by at most the
    # margin (one evaluation interval + 60 s). The margin here covers this drift, so the
    # store keeps every window the queries read.
    store = SampleStore(build_interest(exprs), margin_ms=15 * 60_000)
    series = []
    for i in range(n_series):
        for name in ("c", "g"):
            labels = promql.from_dict({"__name__": name, "s": str(i), "k": str(i % 3)})
            series.append([labels, name, rng.choice((0.0, 5.0, 100.0)), 1_000_000 + rng.randint(0, 15_000)])
    checked = 0
    for step in range(steps):
        for entry in series:
            labels, name, value, ts = entry
            r = rng.random()
            if name == "c":
                value = 0.0 if r < 0.05 else value + rng.choice((0.0, 0.0, 1.0, 2.5))
            else:
                value = rng.choice((value, value, 1.0, 0.0, -3.5))
            written = math.nan if r > 0.98 else STALE_NAN if r > 0.96 else value
            mem.add(labels, ts, written)
            store.add(labels, ts, written)
            if rng.random() < 0.03:  # a late or repeated sample
                back = ts - rng.choice((0, 1, 7_000))
                late = rng.choice((value, 2.0, 0.0))
                mem.add(labels, back, late)
                store.add(labels, back, late)
            entry[2] = value
            entry[3] = ts + rng.choice((10_000, 15_000, 15_000, 30_000))
        if step % 3 == 0:
            now = min(e[3] for e in series) - 1
            for q, expr in zip(QUERIES, exprs, strict=True):
                for ts in (now, now - 20_000):
                    want = promql.instant_query(expr, mem, ts)
                    got = promql.instant_query(expr, store, ts)
                    assert _same(want, got), (q, ts, want, got)
                    checked += len(want) if isinstance(want, list) else 1
    return checked


@pytest.mark.parametrize("seed", range(6))
def test_sample_store_answers_like_the_reference_storage(seed: int) -> None:
    assert _check_random(random.Random(seed), 10, 90) > 1000


def test_fast_paths_are_taken_and_agree_on_clean_counters() -> None:
    """Counters without NaN or resets: the store's path reads no window copy at all."""
    mem = MemoryStorage()
    # Written first, queried up to 5 minutes in the past: the margin keeps those windows.
    store = SampleStore(build_interest([promql.parse("rate(c[5m])"), promql.parse("changes(c[5m])")]),
                        margin_ms=15 * 60_000)
    for i in range(50):
        labels = promql.from_dict({"__name__": "c", "s": str(i)})
        v = float(i)
        for step in range(60):
            v += (i * step) % 3
            mem.add(labels, 1_000_000 + step * 15_000 + i, v)
            store.add(labels, 1_000_000 + step * 15_000 + i, v)
    series, _ = store.select_refs([promql.Matcher.make("__name__", "=", "c")], 0, 1 << 62)
    assert all(s.nan_t < 0 for s in series) and any(s.change_t > 0 for s in series)
    assert all(s.reset_t < 0 for s in series)
    for q in ("rate(c[5m])", "increase(c[5m])", "changes(c[5m])", "delta(c[5m])"):
        for ts in range(1_000_000 + 40 * 15_000, 1_000_000 + 60 * 15_000, 11_000):
            assert _same(promql.instant_query(q, mem, ts), promql.instant_query(q, store, ts)), (q, ts)


def test_the_sample_store_lends_its_series() -> None:
    """The engine takes the in-place path only for a RefStorage: if the store stopped
    matching that contract, rules would silently fall back to copying every window."""
    store = SampleStore(build_interest([promql.parse("c")]))
    store.add(promql.from_dict({"__name__": "c", "k": "a"}), 1_000, 1.0)
    assert isinstance(store, promql.RefStorage)
    assert not isinstance(MemoryStorage(), promql.RefStorage)
    series, lock = store.select_refs([promql.Matcher.make("__name__", "=", "c")], 0, 1 << 62)
    with lock:
        (s,) = series
        assert s.labels == promql.from_dict({"__name__": "c", "k": "a"}) and s.unnamed == (("k", "a"),)
        assert list(s.ts) == [1_000] and list(s.vals) == [1.0]
        assert s.nan_t < 0 and s.change_t < 0 and s.reset_t < 0
