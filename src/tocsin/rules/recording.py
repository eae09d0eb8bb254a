"""Recording rules: an expression's result written back under a new metric name."""

from __future__ import annotations

from typing import Any

from .. import promql
from ..promql.labels import METRIC_NAME, Labels
from .files import RuleSpec
from .rule import Rule, query_vector


class RecordingRule(Rule):
    def __init__(self, spec: RuleSpec) -> None:
        self.spec = spec

    def eval(self, ts: int, storage: Any, limit: int, subquery_step_ms: int) -> list[tuple[Labels, float]]:
        """The samples to write: the rule's name as `__name__`, its labels set (an empty value removes one)."""
        vector = query_vector(self.spec.expr, storage, ts, subquery_step_ms)
        out: list[tuple[Labels, float]] = []
        seen: set[Labels] = set()
        name = self.spec.name
        extra = self.spec.labels
        for s in vector:
            d = dict(s.labels)
            d[METRIC_NAME] = name
            for k, v in extra.items():
                if v == "":
                    d.pop(k, None)
                else:
                    d[k] = v
            labels = tuple(sorted(d.items()))
            if labels in seen:
                raise promql.PromQLEvalError("vector contains metrics with the same labelset after applying rule labels")
            seen.add(labels)
            out.append((labels, s.value))
        if limit > 0 and len(out) > limit:
            raise promql.PromQLEvalError(f"exceeded limit {limit} with {len(out)} series")
        return out
