"""Label matchers with RE2 regexes.

RE2 (not Python's `re`) because Prometheus uses Go's RE2-syntax engine: same syntax,
same linear-time guarantee on user-supplied patterns, and no backtracking blow-ups on a
rule someone copied from the internet. Patterns are fully anchored like Prometheus's.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import re2

from .errors import PromQLParseError

EQ = "="
NE = "!="
RE = "=~"
NRE = "!~"


_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # errors are raised to the caller, not printed by the C++ library


@functools.lru_cache(maxsize=4096)
def compile_anchored(pattern: str) -> Any:
    """Compile `pattern` anchored at both ends; cached because rules re-run every interval."""
    try:
        return re2.compile("^(?:" + pattern + ")$", _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise PromQLParseError(f"invalid regular expression {pattern!r}: {reason}") from None


_HITS: dict[tuple[str, str], bool] = {}
_HITS_MAX = 200_000


def _regex_hit(pattern: str, value: str) -> bool:
    """Memoised regex test: label values repeat across series and evaluations, and a
    dict lookup is far cheaper than a call into the RE2 binding."""
    key = (pattern, value)
    hit = _HITS.get(key)
    if hit is None:
        hit = compile_anchored(pattern).search(value) is not None
        if len(_HITS) >= _HITS_MAX:
            _HITS.clear()
        _HITS[key] = hit
    return hit


@dataclass(frozen=True, slots=True)
class Matcher:
    name: str
    op: str
    value: str
    _regex: Any = field(default=None, compare=False, hash=False, repr=False)

    @staticmethod
    def make(name: str, op: str, value: str) -> "Matcher":
        if op not in (EQ, NE, RE, NRE):
            raise PromQLParseError(f"unknown match operator {op!r}")
        regex = compile_anchored(value) if op in (RE, NRE) else None
        return Matcher(name, op, value, regex)

    def matches(self, value: str) -> bool:
        """Match a label value; an absent label is the empty string, as in Prometheus."""
        op = self.op
        if op == EQ:
            return value == self.value
        if op == NE:
            return value != self.value
        return _regex_hit(self.value, value) == (op == RE)

    def matches_empty(self) -> bool:
        return self.matches("")

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'
