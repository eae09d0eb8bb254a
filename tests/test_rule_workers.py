"""The rule evaluation pool and the re-anchoring pieces, without a daemon."""

from __future__ import annotations

import threading
import time

from tocsin import promql
from tocsin.rules.store import SampleStore, build_interest
from tocsin.rules.workers import EvaluationPool


def test_a_stuck_evaluation_does_not_hold_up_the_others_and_stall_is_measured():
    pool = EvaluationPool(2)
    release = threading.Event()
    stuck = pool.submit(release.wait, 30)
    assert pool.submit(lambda: "done").result(timeout=5) == "done"  # another worker took it
    assert pool.stalled_for() < 1  # a completion counts as progress
    blocked = pool.submit(release.wait, 30)
    time.sleep(0.3)
    assert pool.stalled_for() >= 0.25  # both workers stuck: no progress since
    release.set()
    assert stuck.result(timeout=5) and blocked.result(timeout=5)
    assert pool.stalled_for() == 0  # idle is not a stall
    pool.close()


def test_close_does_not_wait_for_a_running_evaluation():
    pool = EvaluationPool(1)
    never = threading.Event()
    pool.submit(never.wait, 60)
    started = time.monotonic()
    pool.close()
    assert time.monotonic() - started < 1
    assert all(t.daemon for t in threading.enumerate() if t.name.startswith("rules-"))
    never.set()


def test_store_shift_moves_samples_and_keeps_lookback():
    store = SampleStore()
    store.set_interest(build_interest([promql.parse("up")]))
    for t in range(0, 60_000, 1000):
        store.ingest("a", [("up", (("target", "a"),), 1.0)], t / 1000)
    store.shift(3_600_000)
    (series,) = store.select(promql.parse("up").matchers, 0, 10**13)
    assert series.timestamps[0] == 3_600_000 and series.timestamps[-1] == 3_659_000
