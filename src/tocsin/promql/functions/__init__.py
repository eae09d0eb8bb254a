"""PromQL functions, with Prometheus 2.42 semantics, and the table the parser resolves.

    definition   FunctionDef (shape, implementation, load-time check) and Window
    rates        rate, increase, delta, irate, idelta (and `extrapolate`, for the fast path)
    over_time    *_over_time, deriv, predict_linear, changes, resets, holt_winters
    quantiles    quantile() and histogram_quantile (histogram_count... on float series: empty)
    elementwise  abs, ceil, ln, sin... and clamp
    dates        time() and minute, hour, day_of_week...
    vectors      vector, scalar, absent, sort, sort_desc
    relabel      label_replace, label_join

FUNCTIONS, below, is the one place that says which names exist and with what shape.
"""

from __future__ import annotations

from typing import Any

from . import over_time as O
from . import rates as R
from . import vectors as V
from .dates import DATES, s_time
from .definition import FunctionDef, Window
from .elementwise import MATH, s_clamp, s_pi
from .quantiles import quantile, s_histogram_quantile, s_native_histogram_only
from .rates import extrapolate
from .relabel import check_label_join, check_label_replace, s_label_join, s_label_replace
from .vectors import absent_labels


def _driven_by_engine(*_args: Any) -> None:
    raise AssertionError("evaluated by the engine itself")


_TABLE = [
    FunctionDef("rate", "range", R.f_rate),
    FunctionDef("increase", "range", R.f_increase),
    FunctionDef("delta", "range", R.f_delta),
    FunctionDef("irate", "range", R.f_irate),
    FunctionDef("idelta", "range", R.f_idelta),
    FunctionDef("deriv", "range", O.f_deriv),
    FunctionDef("predict_linear", "range", O.f_predict_linear),
    FunctionDef("avg_over_time", "range", O.f_avg_over_time),
    FunctionDef("sum_over_time", "range", O.f_sum_over_time),
    FunctionDef("count_over_time", "range", O.f_count_over_time),
    FunctionDef("min_over_time", "range", O.f_min_over_time),
    FunctionDef("max_over_time", "range", O.f_max_over_time),
    FunctionDef("stddev_over_time", "range", O.f_stddev_over_time),
    FunctionDef("stdvar_over_time", "range", O.f_stdvar_over_time),
    FunctionDef("present_over_time", "range", O.f_present_over_time),
    FunctionDef("changes", "range", O.f_changes),
    FunctionDef("resets", "range", O.f_resets),
    FunctionDef("last_over_time", "range", O.f_last_over_time, keep_name=True),
    FunctionDef("quantile_over_time", "range", O.f_quantile_over_time, matrix_arg=1),
    FunctionDef("holt_winters", "range", O.f_holt_winters),
    FunctionDef("absent_over_time", "absent_over_time", _driven_by_engine),
    *(FunctionDef(name, "elementwise", fn) for name, fn in MATH.items()),
    *(FunctionDef(name, "elementwise", fn) for name, fn in DATES.items()),
    FunctionDef("time", "special", s_time),
    FunctionDef("pi", "special", s_pi),
    FunctionDef("vector", "special", V.s_vector),
    FunctionDef("scalar", "special", V.s_scalar),
    FunctionDef("absent", "special", V.s_absent),
    FunctionDef("sort", "special", V.s_sort),
    FunctionDef("sort_desc", "special", V.s_sort_desc),
    FunctionDef("clamp", "special", s_clamp),
    FunctionDef("histogram_quantile", "special", s_histogram_quantile),
    FunctionDef("histogram_count", "special", s_native_histogram_only),
    FunctionDef("histogram_sum", "special", s_native_histogram_only),
    FunctionDef("histogram_fraction", "special", s_native_histogram_only),
    FunctionDef("label_replace", "special", s_label_replace, check=check_label_replace),
    FunctionDef("label_join", "special", s_label_join, check=check_label_join),
    FunctionDef("timestamp", "timestamp", _driven_by_engine),
]

FUNCTIONS: dict[str, FunctionDef] = {fd.name: fd for fd in _TABLE}
# The parser library knows holt_winters by its Prometheus 3 name only; spelling.py renames
# the 2.42 name on the way in (and refuses the 3.x one).
FUNCTIONS["double_exponential_smoothing"] = FUNCTIONS["holt_winters"]

__all__ = ["FUNCTIONS", "FunctionDef", "Window", "absent_labels", "extrapolate", "quantile"]
