"""Random alerting rules with templates: `tocsin test rules` prints what `promtool test rules`
2.42 prints (a fixed-seed slice of tests/alert_diff.py; the large run is bench/promql_diff.py)."""

from __future__ import annotations

import alert_diff as A
import pytest

from conftest import require_tool
from tocsin.rules.unit_tests import go_time_duration

SEEDS = range(1, 17)


@pytest.mark.external
def test_random_alert_rules_agree_with_promtool() -> None:
    require_tool("promtool")  # skips locally without it; fails in CI
    tests = 0
    problems: list[str] = []
    for seed in SEEDS:
        case = A.make_alert_case(seed)
        tests += case.n_tests
        found, _known_wording = A.compare_alert_case(case)
        problems += found
    assert tests >= 500
    assert not problems, "\n".join(problems[:5])


@pytest.mark.parametrize(("ms", "text"), [(0, "0s"), (60_000, "1m0s"), (90_500, "1m30.5s"), (3_600_000, "1h0m0s"),
                                          (250, "250ms"), (15_000, "15s")])
def test_rule_error_times_as_go_durations(ms: int, text: str) -> None:
    """promtool prints a rule's evaluation error with time.Duration's String (1m0s), not model.Duration's (1m)."""
    assert go_time_duration(ms) == text
