"""Random expressions over random series: tocsin's engine against promtool 2.42.

A fixed-seed slice of the randomized differential test (tests/promql_diff.py; the large
run is bench/promql_diff.py). Every expression must give exactly promtool's result, or
an error where promtool gives one. Results promtool itself does not repeat run to run
(it loads series in random order, so sums over several series and topk ties vary) count
when one of its runs agrees exactly; a few aggregations over many series may still agree
only at 1e-6 and are allowed, but not more than a handful.
"""

from __future__ import annotations

import promql_diff as D
import pytest

from conftest import require_tool

pytestmark = pytest.mark.external

SEEDS = range(1000, 1040)
EXPRS_PER_CASE = 75


def test_random_expressions_agree_with_promtool() -> None:
    require_tool("promtool")  # skips locally without it; fails in CI
    total = D.Tally()
    for seed in SEEDS:
        total.add(D.compare_case(D.make_case(seed, EXPRS_PER_CASE)))
    assert total.compared == len(SEEDS) * EXPRS_PER_CASE
    assert total.errors_both > 0 and total.exact > total.compared * 0.9  # the oracle was understood
    assert not total.differ, f"{len(total.differ)} of {total.compared} differ:\n" + "\n".join(total.differ[:20])
    assert total.close <= total.compared // 200, "\n".join(total.close_cases)
