"""tocsin's PromQL engine: Prometheus 2.42 semantics over a pluggable sample store.

    expr = parse('sum by (job) (rate(http_requests_total[5m]))')   # validated at load
    instant_query(expr, storage, t_ms)     -> Vector | Scalar | String | Matrix
    range_query(expr, storage, start_ms, end_ms, step_ms) -> Matrix

`storage` is anything with `select(matchers, mint_ms, maxt_ms) -> Iterable[Series]`
(see `Storage`); `MemoryStorage` is the reference implementation. A store that rules
read every few seconds also lends its series in place (`RefStorage`, `SeriesRef`).
"""

from __future__ import annotations

from .engine import (
    DEFAULT_LOOKBACK_MS,
    DEFAULT_MAX_SAMPLES,
    DEFAULT_SUBQUERY_STEP_MS,
    DEFAULT_TIMEOUT_S,
    instant_query,
    range_query,
)
from .errors import PromQLError, PromQLEvalError, PromQLParseError
from .labels import Labels, drop_name, from_dict
from .matchers import Matcher
from .nodes import Expr
from .parse import parse
from .storage import MemoryStorage, RefStorage, SeriesRef, Storage
from .values import STALE_NAN, Matrix, Sample, Scalar, Series, String, Value, Vector, is_stale

__all__ = [
    "DEFAULT_LOOKBACK_MS",
    "DEFAULT_MAX_SAMPLES",
    "DEFAULT_SUBQUERY_STEP_MS",
    "DEFAULT_TIMEOUT_S",
    "Expr",
    "Labels",
    "Matcher",
    "Matrix",
    "MemoryStorage",
    "PromQLError",
    "PromQLEvalError",
    "PromQLParseError",
    "STALE_NAN",
    "RefStorage",
    "Sample",
    "Scalar",
    "Series",
    "SeriesRef",
    "Storage",
    "String",
    "Value",
    "Vector",
    "drop_name",
    "from_dict",
    "instant_query",
    "is_stale",
    "parse",
    "range_query",
]
