"""The flapping gate's per-target state: the same percentages from bits, and small."""

from __future__ import annotations

import gc
import random
import tracemalloc

import pytest

from tocsin.config import parse_config
from tocsin.flapping import FlappingConfig, FlappingGate, state_change_percent
from tocsin.notify.alert import Alert


def _targets(n: int):  # type: ignore[no-untyped-def]
    return parse_config({"targets": [{"name": f"t{i}", "tcp": {"address": "127.0.0.1:1"}, "labels": {"team": "x"}}
                                     for i in range(n)]}, "test").targets


@pytest.mark.parametrize("window", [3, 4, 11, 21, 64, 200])
def test_the_gate_keeps_icingas_percentage_exactly(window):
    """The gate keeps the last results as bits: its percentage must be the very float
    state_change_percent gives for the same results, young targets and full windows alike."""
    rnd = random.Random(window)
    target = _targets(1)[0]
    gate = FlappingGate(FlappingConfig(window=window, high=99.9, low=99.0), lambda _alerts: None)
    results: list[bool] = []
    for _ in range(3 * window):
        up = rnd.random() < rnd.choice([0.5, 0.9])
        results.append(up)
        gate.observe(target, up)
        assert gate._targets[target.name].percent == state_change_percent(results[-window:], window)


def test_a_reload_with_a_new_window_keeps_the_newest_results_that_fit():
    target = _targets(1)[0]
    gate = FlappingGate(FlappingConfig(window=21, high=99.9, low=99.0), lambda _alerts: None)
    results = [i % 3 == 0 for i in range(15)]
    for up in results:
        gate.observe(target, up)
    gate.configure(FlappingConfig(window=5, high=99.9, low=99.0))
    gate.observe(target, True)
    assert gate._targets[target.name].percent == state_change_percent((results + [True])[-5:], 5)
    gate.configure(FlappingConfig(window=30, high=99.9, low=99.0))  # wider: nothing comes back
    gate.observe(target, False)
    assert gate._targets[target.name].percent == state_change_percent((results + [True])[-5:] + [False], 30)


def test_the_notice_carries_the_labels_of_the_target_as_it_is_now():
    sent: list[Alert] = []
    gate = FlappingGate(FlappingConfig(window=5, high=30, low=20), sent.extend)
    first = _targets(1)[0]
    relabelled = parse_config({"targets": [{"name": "t0", "tcp": {"address": "127.0.0.1:1"},
                                            "labels": {"team": "y"}}]}, "test").targets[0]
    gate.observe(first, True)
    gate.observe(relabelled, False)
    gate.observe(relabelled, True)
    assert [a.labels for a in sent] == [{"alertname": "TargetFlapping", "target": "t0", "team": "y",
                                         "severity": "warning"}]


def test_a_steady_target_costs_the_gate_little_memory():
    """Tens of thousands of targets per shard: a target's flapping state must stay small
    (it was 1.7 KB: a deque of bools, a labels dict per result, two empty dicts)."""
    targets = _targets(2000)
    gate = FlappingGate(FlappingConfig(), lambda _alerts: None)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for target in targets:
            for r in range(30):
                gate.observe(target, r % 29 != 0)
        per_target = (tracemalloc.get_traced_memory()[0] - before) / len(targets)
    finally:
        tracemalloc.stop()
    assert per_target <= 400, per_target
