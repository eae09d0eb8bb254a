"""Label sets as immutable sorted tuples.

A tuple of `(name, value)` pairs sorted by name is hashable (usable as a dict key for
grouping and matching), cheap to compare, and needs no per-series object. The metric
name is just the `__name__` pair, which sorts first among the usual label names
(`_` < lowercase letters) but is looked up by name, never by position.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

Labels = tuple[tuple[str, str], ...]

METRIC_NAME = "__name__"
EMPTY: Labels = ()

_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


def is_valid_label_name(name: str) -> bool:
    """Prometheus 2.x legacy label-name rule (UTF-8 names came with 3.0)."""
    return bool(_LABEL_NAME_RE.match(name))


def from_pairs(pairs: Iterable[tuple[str, str]]) -> Labels:
    """Build a label set, dropping empty values as Prometheus does (empty == absent)."""
    return tuple(sorted((n, v) for n, v in pairs if v != ""))


def from_dict(d: Mapping[str, str]) -> Labels:
    return from_pairs(d.items())


def get(labels: Labels, name: str) -> str:
    for n, v in labels:
        if n == name:
            return v
    return ""


def drop_name(labels: Labels) -> Labels:
    if labels and labels[0][0] == METRIC_NAME:
        return labels[1:]
    for i, (n, _) in enumerate(labels):
        if n == METRIC_NAME:
            return labels[:i] + labels[i + 1 :]
    return labels


def without(labels: Labels, names: frozenset[str] | set[str]) -> Labels:
    return tuple(p for p in labels if p[0] not in names)


def keep(labels: Labels, names: frozenset[str] | set[str]) -> Labels:
    return tuple(p for p in labels if p[0] in names)


def set_label(labels: Labels, name: str, value: str) -> Labels:
    """Return `labels` with `name` set; an empty value deletes the label."""
    rest = [p for p in labels if p[0] != name]
    if value != "":
        rest.append((name, value))
        rest.sort()
    return tuple(rest)


def memo_table(tables: dict[Any, dict[Labels, Labels]], key: Any, max_entries: int = 200_000) -> dict[Labels, Labels]:
    """The memo of label sets derived under `key` (a grouping, a match signature), from `tables`.

    Rules derive the same keys from the same label sets every interval, and a dict lookup
    is much cheaper than building one. Bounded: a memo past `max_entries` starts afresh,
    and so do all of them once more than 256 keys were seen.
    """
    table = tables.get(key)
    if table is None or len(table) > max_entries:
        if len(tables) > 256:
            tables.clear()
        table = tables[key] = {}
    return table
