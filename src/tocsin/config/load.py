"""Reading a configuration file: YAML in, `${ENV}` expanded, every error as `FILE:LINE:COL: key.path: reason`.

Operators edit the file by hand and apply it with SIGHUP, so a mistake must be reported
with the file, the line and column, the key path and what was expected, in words rather than
pydantic's codes, and a mistyped key with the key it resembles. The YAML is read by
`tocsin.yamlfile` (the loader rule files use too), which bounds what a hostile file can
cost and remembers where each key was written. Nothing here knows the schema;
`schema.py` validates what this reads.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .. import yamlfile

_ENV_REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Matchers are pasted from Alertmanager, which expands nothing: `cost$$` there is literal.
_NOT_EXPANDED = frozenset({"matchers", "source_matchers", "target_matchers", "match", "match_re", "source_match",
                           "source_match_re", "target_match", "target_match_re"})

Loc = tuple[Any, ...]
Problem = tuple[Loc, str]  # where in the file (a key path) and what is wrong there


def load_yaml(path: Path) -> Any:
    """Parse a YAML file within bounds (size, depth, aliases); errors are ConfigError with file and line."""
    return yamlfile.load(path)


def expand_env(node: Any, loc: Loc = ()) -> tuple[Any, list[Problem]]:
    """Replace `${NAME}` in every string by the environment variable; `$$` is a literal `$`."""
    errors: list[Problem] = []
    if isinstance(node, str):
        def substitute(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name = match.group(1)
            if name not in os.environ:
                errors.append((loc, f"environment variable {name} is not set"))
                return ""
            return os.environ[name]
        return (_ENV_REF.sub(substitute, node) if "$" in node else node), errors
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in _NOT_EXPANDED and "alerting" in loc[:1]:
                out[key] = value
                continue
            out[key], errs = expand_env(value, (*loc, key))
            errors += errs
        return out, errors
    if isinstance(node, list):
        items = []
        for index, value in enumerate(node):
            item, errs = expand_env(value, (*loc, index))
            items.append(item)
            errors += errs
        return items, errors
    return node, errors


def format_loc(loc: tuple[Any, ...]) -> str:
    """`('targets', 2, 'http', 'x')` -> `targets[2].http.x` (pydantic's union/tag parts dropped)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and not part.startswith(("function-", "constrained-")) and "[" not in part:
            part = part if len(part) <= 60 else part[:60] + "..."  # a mistyped key, not a megabyte of one
            out += f".{part}" if out else part
    return out or "(top level)"


_FRIENDLY = {
    "extra_forbidden": "unknown key",
    "missing": "required key is missing",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "string_type": "expected a string",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "list_type": "expected a list",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
}


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind in _FRIENDLY:
        return _FRIENDLY[kind]
    if kind == "literal_error":
        return "expected " + error["msg"].removeprefix("Input should be ")
    message = error["msg"]
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def error_problems(exc: ValidationError, model: type[BaseModel], prefix: Loc = (), offset: int = 0) -> list[Problem]:
    """Every problem pydantic found, with its key path; an unknown key says which known one it resembles.

    `prefix` and `offset`: `exc` is about items from `offset` on of the list at `prefix`.
    """
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = tuple(error["loc"])
        if prefix:
            loc = (*prefix, offset + int(loc[0]), *loc[1:])
        message = _message(error)
        if error["type"] == "extra_forbidden":
            message += _did_you_mean(model, loc)
        problems.append((loc, message))
    return problems


MAX_REPORTED = 100  # a file of 100 000 broken list items is one mistake repeated, not 100 000 log lines


def format_problems(problems: list[Problem], source: str, tree: Any = None, unlisted: int = 0,
                    unchecked: int = 0) -> list[str]:
    """`FILE:LINE:COL: key.path: reason` for each problem (`FILE: key.path: reason` where no line is known).

    `tree` is the file as the YAML loader returned it, which remembers where each key was written;
    `unlisted` counts problems found but not kept, `unchecked` list items not validated once
    enough problems were found (see long_lists.py).
    """
    lines = []
    for loc, message in problems[:MAX_REPORTED]:
        pos = yamlfile.pos_of(tree, loc) if tree is not None else None
        lines.append(f"{source}{f':{pos.line}:{pos.col}' if pos else ''}: {format_loc(loc)}: {message}")
    more = len(problems) - len(lines) + unlisted
    if more > 0:
        lines.append(f"{source}: … and {more} more problems not shown")
    if unchecked:
        lines.append(f"{source}: … and {unchecked} more list items not checked")
    return lines


def _did_you_mean(model: type[BaseModel], loc: Loc) -> str:
    unknown = loc[-1]
    if not isinstance(unknown, str):
        return ""
    known = _keys_at(model, loc[:-1])
    close = difflib.get_close_matches(unknown, known, n=1, cutoff=0.6) or \
        difflib.get_close_matches(unknown.lower(), known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def item_type(model: type[BaseModel], loc: Loc) -> Any:
    """The type of the items of the list at `loc`, read from the models' field types (None
    unless there is exactly one)."""
    kinds: list[Any] = []
    for kind in (member for t in _types_at(model, loc) for member in _members(t)):
        if typing.get_origin(kind) is list and typing.get_args(kind) and typing.get_args(kind)[0] not in kinds:
            kinds.append(typing.get_args(kind)[0])
    return kinds[0] if len(kinds) == 1 else None


def _keys_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """The keys a mapping at `loc` may have, read from the models' field types (and the other
    spellings a model accepts, such as Alertmanager's names of a receiver's keys)."""
    models = [kind for t in _types_at(model, loc) for kind in _members(t)
              if isinstance(kind, type) and issubclass(kind, BaseModel)]
    return [*(f.alias or name for kind in models for name, f in kind.model_fields.items()),
            *(other for kind in models for other in getattr(kind, "alertmanager_names", {}))]


def _types_at(model: type[BaseModel], loc: Loc) -> list[Any]:
    """The types the value at `loc` may have, read from the models' field types."""
    current: list[Any] = [model]
    for part in loc:
        following: list[Any] = []
        for kind in (member for t in current for member in _members(t)):
            origin, args = typing.get_origin(kind), typing.get_args(kind)
            if isinstance(part, int) and origin in (list, tuple, set, frozenset) and args:
                following.append(args[0])
            elif isinstance(part, str) and isinstance(kind, type) and issubclass(kind, BaseModel):
                following += [f.annotation for name, f in kind.model_fields.items() if part in (name, f.alias)]
            elif isinstance(part, str) and origin is dict and len(args) == 2:
                following.append(args[1])
        current = following
    return current


def _members(kind: Any) -> list[Any]:
    """`Annotated[X, ...]` -> [X]; `X | Y | None` -> [X, Y]; anything else -> [itself]."""
    origin = typing.get_origin(kind)
    if origin is typing.Annotated:
        return _members(typing.get_args(kind)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [m for arg in typing.get_args(kind) if arg is not type(None) for m in _members(arg)]
    return [kind]
