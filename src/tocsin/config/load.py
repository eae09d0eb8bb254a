"""Reading a configuration file: YAML in, `${ENV}` expanded, every error as `FILE: key.path: reason`.

Operators edit the file by hand and apply it with SIGHUP, so a mistake must be reported
with the file, the key path and what was expected, in words rather than pydantic's codes.
Nothing here knows the schema; `schema.py` validates what this reads.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import ConfigError

_ENV_REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

# libyaml's parser when PyYAML has it (10x faster on a file of 10 000 targets); same results.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_SafeLoader):  # type: ignore[misc, valid-type]  # C or Python loader, chosen at import
    """Safe loading that refuses duplicate keys: a silently shadowed key is a lost setting."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path: Path) -> Any:
    """Parse a YAML file safely; syntax errors become ConfigError with file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}".replace("\n", " ")) from None


def expand_env(node: Any, path: str = "") -> tuple[Any, list[str]]:
    """Replace `${NAME}` in every string by the environment variable; `$$` is a literal `$`."""
    errors: list[str] = []
    if isinstance(node, str):
        def substitute(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name = match.group(1)
            if name not in os.environ:
                errors.append(f"{path or '(top level)'}: environment variable {name} is not set")
                return ""
            return os.environ[name]
        return (_ENV_REF.sub(substitute, node) if "$" in node else node), errors
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            out[key], errs = expand_env(value, f"{path}.{key}" if path else str(key))
            errors += errs
        return out, errors
    if isinstance(node, list):
        items = []
        for index, value in enumerate(node):
            item, errs = expand_env(value, f"{path}[{index}]")
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


def error_lines(exc: ValidationError, source: str) -> list[str]:
    """Every problem pydantic found, as `source: key.path: what was expected`."""
    return [f"{source}: {format_loc(e['loc'])}: {_message(e)}" for e in exc.errors()]
