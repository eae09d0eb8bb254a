"""Where each key, value and list item of a YAML file was written, kept in the tree read from it.

Every error about a configuration or rule file names its line and column, so the tree
`yamlfile` builds remembers a position for each node: packed in one int per key or item
(the parser's own Mark objects and tuples were most of what a large file's tree cost
beyond its data), and turned into a `Pos` only when an error asks.
"""

from __future__ import annotations

from typing import Any


class Pos:
    """A 1-based line and column in the file."""

    __slots__ = ("line", "col")

    def __init__(self, line: int, col: int) -> None:
        self.line, self.col = line, col

    def __repr__(self) -> str:
        return f"{self.line}:{self.col}"


def _pos(mark: Any) -> Pos:
    return Pos(mark.line + 1, mark.column + 1)


class _Mark(int):
    """Where a node starts: the parser mark's 0-based line and column packed in one int.

    The tree keeps a mark for every key, value and list item; the parser's own Mark objects
    (80 bytes each, plus a tuple per key) were most of what a large file's tree costs
    beyond its data. This reads like one (`.line`, `.column`) at a fraction of the size.
    """

    __slots__ = ()

    @classmethod
    def of(cls, mark: Any) -> _Mark:
        return cls(mark.line << 32 | mark.column)

    @property
    def line(self) -> int:
        return self >> 32

    @property
    def column(self) -> int:
        return self & 0xFFFF_FFFF


class _KeyMarks(int):
    """Where a key and its value start, packed in one int: [0] is the key's _Mark, [1] the value's."""

    __slots__ = ()

    @classmethod
    def of(cls, key_mark: Any, value_mark: Any) -> _KeyMarks:
        return cls((key_mark.line << 32 | key_mark.column) << 64 | value_mark.line << 32 | value_mark.column)

    def __getitem__(self, index: int) -> _Mark:
        return _Mark(self >> 64 if index == 0 else self & 0xFFFF_FFFF_FFFF_FFFF)


class PosDict(dict):
    """A mapping that remembers where it, each key and each value started.

    The parser's marks are kept as they are and turned into `Pos` only when asked for: a
    file of 10 000 targets has 200 000 of them, and an error needs one.
    """

    _mark: _Mark
    _marks: dict[Any, _KeyMarks]

    @property
    def pos(self) -> Pos:
        return _pos(self._mark)

    def key_pos(self, key: Any) -> Pos | None:
        marks = self._marks.get(key)
        return _pos(marks[0]) if marks else None

    def val_pos(self, key: Any) -> Pos | None:
        marks = self._marks.get(key)
        return _pos(marks[1]) if marks else None


class PosList(list):
    """A sequence that remembers where it and each item started."""

    _mark: _Mark
    _marks: list[_Mark]

    @property
    def pos(self) -> Pos:
        return _pos(self._mark)

    def item_pos(self, index: int) -> Pos:
        return _pos(self._marks[index])


def line_of(tree: Any, loc: tuple[Any, ...]) -> int | None:
    """The line where the key path `loc` (or the deepest part of it that exists) is written."""
    pos = pos_of(tree, loc)
    return pos.line if pos else None


def pos_of(tree: Any, loc: tuple[Any, ...]) -> Pos | None:
    """Where the key path `loc` (or the deepest part of it that exists) is written: the key's
    line and column, or the list item's.

    Parts that are not keys of the tree (pydantic's union and validator names) are skipped.
    """
    mark = tree._mark if isinstance(tree, (PosDict, PosList)) else None
    node = tree
    for part in loc:
        if isinstance(node, PosDict) and not isinstance(part, (int, list, dict)) and part in node:
            mark = node._marks[part][0]
            node = node[part]
        elif isinstance(node, PosList) and isinstance(part, int) and 0 <= part < len(node):
            mark = node._marks[part]
            node = node[part]
    return _pos(mark) if mark is not None else None
