"""What the engine knows about a function: its shape, implementation and load-time check.

Three shapes cover every function: *range* functions see one series' samples inside the
window at a time; *elementwise* functions map each sample value; *special* functions
need the whole vector or the call node (absent, label_replace, sort...). `timestamp`
and `absent_over_time` are evaluated by the engine itself (they need the selector).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from .. import nodes as N


class Window(NamedTuple):
    """What a range function knows about its window besides the samples."""

    mint: int  # window start, ms, inclusive
    maxt: int  # window end, ms, inclusive
    range_ms: int
    ts: int  # evaluation time of the step, ms


@dataclass(frozen=True)
class FunctionDef:
    """One entry of the function table, resolved into the call node at parse time."""

    name: str
    kind: str  # "range", "elementwise", "special", or "timestamp"/"absent_over_time" (the engine's own)
    fn: Callable[..., Any]
    matrix_arg: int = 0  # which argument is the range vector (range functions)
    keep_name: bool = False  # the result keeps the metric name (last_over_time)
    check: Callable[[N.Call], None] | None = None  # raises PromQLParseError at load

    def validate(self, node: N.Call) -> None:
        if self.check is not None:
            self.check(node)
