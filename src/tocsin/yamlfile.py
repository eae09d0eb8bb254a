"""Reading the YAML files operators write (configuration, rule files, rule tests): bounded, with positions.

One loader for every file, so each error names the file and line the same way, and so a
hostile file costs at most a bounded amount of time and memory before it is refused:

- the file must be UTF-8 and at most `MAX_BYTES`;
- collections nest at most `MAX_DEPTH` deep (deeper would exhaust the interpreter's stack
  in every recursive walk that follows);
- a document holds at most `MAX_NODES` nodes, counted through aliases, and aliases may
  add at most `ALIAS_FACTOR` times the nodes the file itself holds (plus `ALIAS_ALLOWANCE`):
  every later step (`${ENV}` expansion, validation) walks the tree as if the aliases were
  written out, so 500 bytes of nested aliases ("billion laughs") would otherwise be a
  billion nodes. Go's yaml package refuses the same files with "excessive aliasing";
- an alias inside its own anchor (a recursive document) is refused.

Composition is done here, over the parser's events, so the counts are checked before the
tree is built rather than after. Mappings come back as `PosDict` and sequences as
`PosList`, which remember where each key and item was written; `pos_of` finds the line
and column of a key path such as `('targets', 3, 'interval')`. Duplicate keys are refused (a silently
shadowed key is a lost setting); merge keys (`<<: *defaults`) work as in Go's yaml.
"""

from __future__ import annotations

import collections.abc
import re
from pathlib import Path
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import ConfigError
from .yamlpos import Pos, PosDict, PosList, _KeyMarks, _Mark, line_of, pos_of

__all__ = ["Pos", "PosDict", "PosList", "line_of", "load", "loads", "pos_of", "read_text"]

MAX_BYTES = 64 * 2**20
MAX_DEPTH = 100
MAX_NODES = 1_000_000
ALIAS_FACTOR = 10
ALIAS_ALLOWANCE = 10_000

# libyaml's parser when PyYAML has it (the events of a 10 000-target file in 0.2 s); same results.
_SafeLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Limit(yaml.MarkedYAMLError):
    """A bound of this module exceeded: reported like a syntax error, at the event that crossed it."""


class _Loader(_SafeLoader):
    """The safe loader with a bounded, non-recursive composer and position-keeping constructors."""

    def compose_bounded(self) -> Node | None:
        """The single document of the stream as a node graph, within the module's bounds."""
        self.get_event()  # StreamStartEvent
        if self.check_event(StreamEndEvent):
            return None
        self.get_event()  # DocumentStartEvent
        node = self._compose_document()
        self.get_event()  # DocumentEndEvent
        if not self.check_event(StreamEndEvent):
            event = self.get_event()
            raise yaml.composer.ComposerError("expected a single document in the stream", node.start_mark,
                                              "but found another document", event.start_mark)
        self.get_event()
        return node

    def _compose_document(self) -> Node:
        """PyYAML's composer without recursion, counting nodes as they come.

        `expanded` counts every node once per place it appears (an alias adds its anchor's
        whole size), so a collection's size through aliases is the count at its end minus
        the count at its start. The collection being filled is kept in locals (`values`,
        `in_sequence`, `key`): this loop runs once per event, 200 000 times for 10 000 targets.
        """
        anchors: dict[str, tuple[Node, int]] = {}  # anchor -> (node, size through aliases); size -1 while open
        stack: list[tuple[Node, str | None, int, Node | None]] = []  # enclosing collections: node, anchor, start, key
        composed = expanded = 0
        collection: Node | None = None  # the collection being filled, None at the top
        values: list[Any] = []
        in_sequence = False
        key: Node | None = None
        anchor: str | None = None
        start = 0
        node: Node
        get_event, resolve = self.get_event, self.resolve
        while True:
            event = get_event()
            kind = type(event)
            if kind is ScalarEvent:  # most events: first, and with the fewest steps
                composed += 1
                expanded += 1
                tag = event.tag
                if tag is None or tag == "!":
                    tag = resolve(ScalarNode, event.value, event.implicit)
                node = ScalarNode(tag, event.value, event.start_mark, event.start_mark, style=event.style)
                if event.anchor is not None:
                    anchors[event.anchor] = (node, 1)
            elif kind is SequenceStartEvent or kind is MappingStartEvent:
                if len(stack) >= MAX_DEPTH:
                    raise _Limit(None, None, f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
                node_kind = SequenceNode if kind is SequenceStartEvent else MappingNode
                tag = event.tag
                if tag is None or tag == "!":
                    tag = resolve(node_kind, None, event.implicit)
                node = node_kind(tag, [], event.start_mark, event.start_mark, flow_style=event.flow_style)
                if event.anchor is not None:
                    anchors[event.anchor] = (node, -1)
                stack.append((collection, anchor, start, key))  # type: ignore[arg-type]  # None at the top
                collection, anchor, start, key = node, event.anchor, expanded, None
                values, in_sequence = node.value, kind is SequenceStartEvent
                composed += 1
                expanded += 1
                continue
            elif kind is SequenceEndEvent or kind is MappingEndEvent:
                node = collection  # type: ignore[assignment]  # an end event always closes a collection
                if anchor is not None and anchors.get(anchor, (None,))[0] is node:
                    anchors[anchor] = (node, expanded - start)
                collection, anchor, start, key = stack.pop()
                if collection is not None:
                    values, in_sequence = collection.value, type(collection) is SequenceNode
            elif kind is AliasEvent:
                node, size = self._alias(anchors, event)
                expanded += size
                if expanded - composed > ALIAS_FACTOR * composed + ALIAS_ALLOWANCE:
                    raise _Limit(None, None, "excessive aliasing: the aliases repeat more than "
                                 f"{ALIAS_FACTOR} times what the file holds", event.start_mark)
            else:  # the parser guarantees nothing else comes inside a document
                raise yaml.composer.ComposerError(None, None, f"unexpected {event}", event.start_mark)
            if expanded > MAX_NODES:
                raise _Limit(None, None, f"more than {MAX_NODES} nodes (counted through aliases)", event.start_mark)
            if collection is None:
                return node
            if in_sequence:
                values.append(node)
            elif key is None:
                key = node
            else:
                values.append((key, node))
                key = None

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        """PyYAML's, except that scalars are not remembered (they are immutable: an alias to
        one may build it again) and a collection lets go of its nodes once built: the node
        graph then shrinks as the tree grows, instead of both being held whole at once."""
        if type(node) is ScalarNode:
            constructor = self.yaml_constructors.get(node.tag) or self.yaml_constructors[None]
            return constructor(self, node)
        return super().construct_object(node, deep)

    @staticmethod
    def _alias(anchors: dict[str, tuple[Node, int]], event: Any) -> tuple[Node, int]:
        if event.anchor not in anchors:
            raise yaml.composer.ComposerError(None, None, f"found undefined alias {event.anchor!r}", event.start_mark)
        node, size = anchors[event.anchor]
        if size < 0:
            raise _Limit(None, None, f"alias *{event.anchor} is inside its own anchor (a recursive document)",
                         event.start_mark)
        return node, size


def _reported_where_written(constructor: Any) -> Any:
    """PyYAML's constructor of ints or timestamps, with a bad value (a 5000-digit int, February
    30th) reported where it is written instead of as a Python traceback."""
    def construct(loader: _Loader, node: ScalarNode) -> Any:
        try:
            return constructor(loader, node)
        except (ValueError, OverflowError) as exc:
            shown = repr(node.value if len(node.value) <= 40 else node.value[:40] + "...")
            reason = str(exc).split(";")[0]  # Python's advice on its own limits is not the operator's
            raise yaml.constructor.ConstructorError(None, None, f"cannot read {shown} as "
                                                    f"{node.tag.rsplit(':', 1)[-1]}: {reason}", node.start_mark) from None
    return construct


def _construct_mapping(loader: _Loader, node: MappingNode) -> PosDict:
    out = PosDict()
    out._mark = _Mark.of(node.start_mark)
    out._marks = marks = {}
    merged: list[PosDict] = []
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE_TAG:
            merged += _merge_sources(loader, node, value_node)
            continue
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, collections.abc.Hashable):
            raise yaml.constructor.ConstructorError(None, None, "a mapping key must be a scalar, not a collection",
                                                    key_node.start_mark)
        if key in out:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
        marks[key] = _KeyMarks.of(key_node.start_mark, value_node.start_mark)
    for source in merged:  # the mapping's own keys win, then the first merged mapping, as in Go's yaml
        for key, value in source.items():
            if key not in out:
                out[key] = value
                marks[key] = source._marks[key]
    node.value = []  # built (and remembered, for aliases): its nodes are no longer needed
    return out


def _merge_sources(loader: _Loader, node: MappingNode, value_node: Node) -> list[PosDict]:
    sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
    out = []
    for source in sources:
        value = loader.construct_object(source, deep=True) if isinstance(source, MappingNode) else None
        if not isinstance(value, PosDict):
            raise yaml.constructor.ConstructorError("while constructing a mapping", node.start_mark,
                                                    "<< merges a mapping or a list of mappings", source.start_mark)
        out.append(value)
    return out


def _construct_sequence(loader: _Loader, node: SequenceNode) -> PosList:
    out = PosList(loader.construct_object(item, deep=True) for item in node.value)
    out._mark = _Mark.of(node.start_mark)
    out._marks = [_Mark.of(item.start_mark) for item in node.value]
    node.value = []  # as for mappings
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)
for _tag in ("int", "timestamp"):
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}",
                            _reported_where_written(_Loader.yaml_constructors[f"tag:yaml.org,2002:{_tag}"]))


def _describe(exc: yaml.YAMLError, name: str, source: str) -> str:
    """PyYAML's error as `FILE:LINE:COL: problem (context)`, without its `"<unicode string>"` marks."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        text = exc.problem or "invalid YAML"
        if exc.context:
            where = exc.context_mark
            text += f" ({exc.context}" + (f" at line {where.line + 1}" if where and where.line != mark.line else "") + ")"
        return f"{name}:{mark.line + 1}:{mark.column + 1}: {text}"
    if isinstance(exc, yaml.reader.ReaderError):
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        if isinstance(exc.character, int):  # libyaml counts bytes of UTF-8, PyYAML characters
            source = source.encode("utf-8")[:exc.position].decode("utf-8", "ignore")
            exc.position = len(source)
        line = source.count("\n", 0, exc.position) + 1
        col = exc.position - (source.rfind("\n", 0, exc.position) + 1) + 1
        return f"{name}:{line}:{col}: character U+{code:04X} is not allowed in YAML"
    return f"{name}: {exc}".replace("\n", " ")


def loads(text: str, name: str) -> Any:
    """Parse one YAML document (`None` if there is none); raise ConfigError naming `name` and the line."""
    loader = _Loader(text)
    try:
        node = loader.compose_bounded()
        return None if node is None else loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ConfigError(_describe(exc, name, text)) from None
    except RecursionError:  # only without libyaml, whose parser stops at 1000 levels by itself
        raise ConfigError(f"{name}: nested more than {MAX_DEPTH} levels deep") from None
    finally:
        loader.dispose()


def decode(data: bytes, name: str) -> str:
    """The file's text; a file that is not UTF-8 is an error naming the line of the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(f"{name}:{line}:{col}: not valid UTF-8 (byte 0x{data[exc.start]:02x}); "
                          "save the file as UTF-8") from None


def read_text(path: str | Path) -> str:
    """A YAML file's text, at most MAX_BYTES of UTF-8; ConfigError otherwise."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_BYTES // 2**20} MiB; not a file tocsin reads")
    return decode(data, str(path))


def load(path: str | Path) -> Any:
    """Read and parse a YAML file within this module's bounds; raise ConfigError naming file and line."""
    return loads(read_text(path), str(path))


def _without_sexagesimal(tag: str, pattern: re.Pattern[str]) -> re.Pattern[str]:
    """YAML 1.1's base-60 numbers (`17:00` is 1020, `1:5` is 65) are strings to Go's yaml
    packages, which Prometheus and Alertmanager read their files with; operators copy
    `start_time: 17:00` and `days_of_month: [1:5]` from those files."""
    if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float"):
        return pattern
    alternatives = re.split(r"\n\s*\|", pattern.pattern.removeprefix("^(?:").removesuffix(")$"))
    kept = [a.strip() for a in alternatives if "(?::[0-5]?[0-9])+" not in a]
    return re.compile("^(?:" + "|".join(kept) + ")$", pattern.flags)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, _without_sexagesimal(tag, pattern)) for tag, pattern in resolvers]
    for first, resolvers in _Loader.yaml_implicit_resolvers.items()}
