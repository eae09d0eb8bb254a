"""Long lists in a configuration, validated a chunk at a time with a bounded error report.

pydantic validates a list whole and builds one error object per broken item: a file of
900 000 broken targets took 1.5 GB and 23 s to say so, though only the first hundred
problems are ever shown. So every list longer than `LONG` is validated here first, in
chunks of `CHUNK` items: no more than one chunk's errors exist at a time, and once `limit`
problems are found the rest is not validated (only counted: "… and N more items not
checked"). Only when every long list is valid does the caller validate the whole file
(then the memory is the configuration's own).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from .load import Loc, Problem, error_problems, item_type

LONG = 10_000  # lists up to this long are validated whole, as before (a reload of 10 000 targets)
CHUNK = 1_000


def long_lists(raw: Any) -> Iterator[tuple[Loc, list[Any]]]:
    """Every list in `raw` longer than LONG, with its key path (not looking inside them)."""
    stack: list[tuple[Loc, Any]] = [((), raw)]
    while stack:
        loc, node = stack.pop()
        if isinstance(node, dict):
            stack.extend(((*loc, key), value) for key, value in node.items())
        elif isinstance(node, list):
            if len(node) > LONG:
                yield loc, node
            else:
                stack.extend(((*loc, index), value) for index, value in enumerate(node))


@functools.lru_cache(maxsize=64)
def _adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(list[kind])


class Report:
    """Problems found in long lists: the first `limit` kept, the rest of their chunk counted,
    and the items after that chunk not checked at all (the file is refused either way)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.problems: list[Problem] = []
        self.unlisted = 0  # problems found but not kept
        self.unchecked = 0  # items not validated once `limit` problems were found
        self.locs: list[Loc] = []  # the long lists with problems

    @property
    def full(self) -> bool:
        return len(self.problems) >= self.limit


def check(raw: Any, model: type[BaseModel], limit: int) -> Report:
    """Validate each list longer than LONG in `raw` (the file as `model` reads it) in chunks."""
    report = Report(limit)
    for loc, items in long_lists(raw):
        kind = item_type(model, loc)
        if kind is None:  # not a list the model knows: the whole validation will say so
            continue
        if report.full:
            report.unchecked += len(items)
            report.locs.append(loc)
            continue
        adapter = _adapter(kind)
        for start in range(0, len(items), CHUNK):
            if report.full:
                report.unchecked += len(items) - start
                break
            try:
                adapter.validate_python(items[start:start + CHUNK])
            except ValidationError as exc:
                found = error_problems(exc, model, prefix=loc, offset=start)
                room = report.limit - len(report.problems)
                report.problems += found[:room]
                report.unlisted += len(found[room:])
                if loc not in report.locs:
                    report.locs.append(loc)
    return report


def emptied(raw: Any, locs: list[Loc]) -> Any:
    """`raw` with the lists at `locs` emptied (copied along their paths, not in place), so the
    rest of the file can be validated for its own problems."""
    for loc in locs:
        raw = _emptied(raw, loc)
    return raw


def _emptied(node: Any, loc: Loc) -> Any:
    if not loc:
        return []
    head, rest = loc[0], loc[1:]
    copy: Any = dict(node) if isinstance(node, dict) else list(node)
    copy[head] = _emptied(node[head], rest)
    return copy


__all__ = ["CHUNK", "LONG", "Report", "check", "emptied", "long_lists"]
