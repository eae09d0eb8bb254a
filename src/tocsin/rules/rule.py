"""What every rule shares: its spec, its last error, and how it asks the engine for a vector."""

from __future__ import annotations

from typing import Any

from .. import promql
from ..promql.labels import Labels
from .files import RuleSpec


def query_vector(expr: Any, storage: Any, ts: int, subquery_step_ms: int) -> list[promql.Sample]:
    """What a rule sees: a vector (a scalar becomes one sample without labels)."""
    result = promql.instant_query(expr, storage, ts, promql.DEFAULT_LOOKBACK_MS, subquery_step_ms)
    if isinstance(result, promql.Vector):
        return result
    if isinstance(result, promql.Scalar):
        return [promql.Sample((), result.value)]
    raise promql.PromQLEvalError("rule result is not a vector or scalar")


class Rule:
    """A recording or alerting rule; `eval` returns the series it writes at `ts` (ms)."""

    spec: RuleSpec
    last_error: str | None = None  # of the last evaluation; None when it succeeded
    last_eval_ms: int = 0          # when it was last evaluated (0: never), for /api/v1/rules
    last_duration_s: float = 0.0   # how long that took

    @property
    def name(self) -> str:
        return self.spec.name

    def eval(self, ts: int, storage: Any, limit: int, subquery_step_ms: int) -> list[tuple[Labels, float]]:
        raise NotImplementedError
