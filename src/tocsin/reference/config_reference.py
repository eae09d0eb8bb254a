"""docs/configuration.md, generated from the validation models so it cannot drift from them.

The reference walks `Config`'s fields and every model they lead to (a target's probe kinds
come from the registry, receivers from `notify/config.py`), so a key added to any model
appears here at the next `make docs` — and a test fails until the committed file is
regenerated. One section per model: a model used at several places (TLS options, retry) is
described once and linked from the others; a recursive one (routes) links to itself.

A key's description is, in order: its `Field(description=...)`; a "`key`: text" paragraph
of its model's docstring; the comment at the end of its line in the model's source; the
table in `config_descriptions.py` (for models that say nothing of their keys).
"""

from __future__ import annotations

import enum
import inspect
import re
import textwrap
import types
import typing
from dataclasses import dataclass, field
from typing import Any

import annotated_types
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from .. import fields as field_types
from .. import timeintervals
from ..units import format_duration
from .config_descriptions import DESCRIPTIONS, EXAMPLES, INTRO

# The validators that name a field type of `fields.py`, and how the reference calls it.
_VALIDATOR_NAMES: dict[Any, str] = {
    field_types._positive: "duration > 0",
    field_types._duration: "duration",
    field_types._size: "size",
    field_types._listen_address: "host:port",
    field_types._host_port: "host:port",
    field_types._regexp: "regexp (RE2)",
    field_types._readable_file: "file path",
    field_types._read_secret_file: "file path (secret read from it)",
    field_types._check_labels: "labels (name: value)",
}
# Alertmanager's time-interval ranges: a string (or a single number) the validator turns into a pair.
_RANGES: dict[Any, str] = {
    timeintervals._weekdays: "range (`monday:friday`, `sunday`)",
    timeintervals._days_of_month: "range (`1:5`, `-1`)",
    timeintervals._months: "range (`january:march`, `12`)",
    timeintervals._years: "range (`2026:2027`)",
}
_VALIDATOR_NAMES.update(_RANGES)
RANGE_TYPES = tuple(_RANGES.values())
_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean", SecretStr: "secret string"}


@dataclass
class Key:
    name: str
    type: str
    default: str
    description: str


@dataclass
class Section:
    path: str
    model: type[BaseModel]
    intro: str
    keys: list[Key] = field(default_factory=list)
    also_at: list[str] = field(default_factory=list)


def anchor(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "top-level"


def validator_names(metadata: list[Any]) -> list[str]:
    """The names of the field types among `metadata`'s validators, most specific first."""
    funcs = {getattr(item, "func", None) for item in metadata}
    return [name for func, name in _VALIDATOR_NAMES.items() if func in funcs]


def _constraints(metadata: list[Any]) -> str:
    parts = []
    # `Annotated[int, Field(ge=1)]` inside a list keeps a FieldInfo, whose own metadata holds the bounds.
    for item in (m for meta in metadata for m in (meta.metadata if isinstance(meta, FieldInfo) else [meta])):
        for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            if isinstance(item, getattr(annotated_types, attr.capitalize())):
                parts.append(f"{sign} {getattr(item, attr)}")
        if isinstance(item, annotated_types.MinLen) and item.min_length:
            parts.append(f"at least {item.min_length}")
        if isinstance(item, annotated_types.MaxLen):
            parts.append(f"at most {item.max_length}")
    return f" ({', '.join(parts)})" if parts else ""


class _Walker:
    """Turns models into sections, each model once, in the order the file would name them."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self.by_model: dict[type[BaseModel], Section] = {}

    def model_link(self, model: type[BaseModel], path: str) -> str:
        section = self.by_model.get(model)
        if section is None:
            section = self.walk(model, path)
        elif path != section.path and path not in section.also_at:
            section.also_at.append(path)
        return f"[mapping](#{anchor(section.path)})"

    def describe(self, kind: Any, path: str, metadata: list[Any] | None = None) -> tuple[str, str]:
        """The type in words, and its unit ("duration", "size" or "") to show its default in."""
        metadata = list(metadata or [])
        origin, args = typing.get_origin(kind), typing.get_args(kind)
        if origin is typing.Annotated:
            return self.describe(args[0], path, [*metadata, *kind.__metadata__])
        named = validator_names(metadata)
        if named:
            return named[0] + _constraints(metadata), named[0].split()[0]
        if origin is typing.Union or origin is types.UnionType:
            members = [a for a in args if a is not type(None)]
            texts = [self.describe(m, path, metadata) for m in members]
            return " or ".join(t for t, _ in texts), next((u for _, u in texts if u), "")
        if origin is typing.Literal:
            return "one of " + ", ".join(f"`{a}`" for a in args), ""
        if origin in (list, tuple, set, frozenset) and args:
            inner, _ = self.describe(args[0], path + "[]")
            return f"list of {inner}" + _constraints(metadata), ""
        if origin is dict and len(args) == 2:
            key, _ = self.describe(args[0], path)
            value, _ = self.describe(args[1], path + ".*")
            return f"map of {key} to {value}", ""
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            return self.model_link(kind, path), ""
        if isinstance(kind, type) and issubclass(kind, enum.Enum):
            return "one of " + ", ".join(f"`{member.value}`" for member in kind), ""
        return _SCALARS.get(kind, getattr(kind, "__name__", str(kind))) + _constraints(metadata), ""

    def walk(self, model: type[BaseModel], path: str) -> Section:
        section = Section(path, model, _intro(model))
        self.by_model[model] = section
        self.sections.append(section)
        for name, info in model.model_fields.items():
            key = info.alias or name
            child = f"{path}.{key}" if path else key
            type_text, unit = self.describe(info.annotation, child, list(info.metadata))
            section.keys.append(Key(key, type_text, default_text(info, name, unit),
                                    key_description(model, name, key)))
        return section


def _intro(model: type[BaseModel]) -> str:
    """The model's docstring without its "`key`: ..." paragraphs (those go to the keys)."""
    doc = model.__dict__.get("__doc__") or ""
    if not doc or doc.startswith(f"{model.__name__}("):  # pydantic's generated signature, not prose
        return ""
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs if not re.match(r"`\w+`:", p))


def default_text(info: FieldInfo, name: str, unit: str) -> str:
    if info.is_required():
        return "required"
    factory = info.default_factory
    if factory is not None and "_global" in getattr(getattr(factory, "__code__", None), "co_names", ()):
        return f"`global.{name}`"  # a target inherits it
    try:
        value = info.get_default(call_default_factory=True, validated_data={})
    except Exception:  # noqa: BLE001 - a factory that needs the other keys' values
        return "computed"
    if isinstance(value, enum.Enum):
        value = value.value
    if value is None:
        return "none"
    if isinstance(value, BaseModel):
        return "its keys' defaults"
    if unit == "duration" and isinstance(value, int | float) and not isinstance(value, bool):
        return f"`{format_duration(value)}`"
    if unit == "size" and isinstance(value, int) and not isinstance(value, bool):
        return f"`{_size_text(value)}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`' if value else '`""`'
    if isinstance(value, list | dict) and not value:
        return f"`{'[]' if isinstance(value, list) else '{}'}`"
    return f"`{value}`"


def _size_text(size: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size and size % scale == 0:
            return f"{size // scale}{unit}"
    return str(size)


def key_description(model: type[BaseModel], name: str, key: str) -> str:
    info = model.model_fields[name]
    if info.description:
        return " ".join(info.description.split())
    for owner in model.__mro__:
        if not (isinstance(owner, type) and issubclass(owner, BaseModel)) or name not in owner.__dict__.get(
                "__annotations__", {}):
            continue
        text = _from_docstring(owner, key) or _from_docstring(owner, name) or _from_comment(owner, name)
        if text:
            return text
        if f"{owner.__name__}.{name}" in DESCRIPTIONS:
            return DESCRIPTIONS[f"{owner.__name__}.{name}"]
    return DESCRIPTIONS.get(f"{model.__name__}.{name}", "")


def _from_docstring(model: type, key: str) -> str:
    doc = inspect.cleandoc(model.__dict__.get("__doc__") or "")
    for paragraph in doc.split("\n\n"):
        if paragraph.startswith(f"`{key}`:"):
            return " ".join(paragraph.removeprefix(f"`{key}`:").split())
    return ""


def _from_comment(model: type, name: str) -> str:
    try:
        source = inspect.getsource(model)
    except (OSError, TypeError):
        return ""
    match = re.search(rf"^    {re.escape(name)}\s*:[^#\n]*#\s*(.+)$", source, re.MULTILINE)
    if not match or match.group(1).startswith(("type:", "noqa")):
        return ""
    text = match.group(1).strip()
    return text[0].upper() + text[1:] if text else ""


def sections(root: type[BaseModel] | None = None) -> list[Section]:
    if root is None:
        from ..config.schema import Config

        root = Config
    walker = _Walker()
    walker.walk(root, "")
    return walker.sections


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") or "—"


def render(root: type[BaseModel] | None = None) -> str:
    """The whole reference as Markdown; the same models always give the same bytes."""
    out = [INTRO.strip(), ""]
    out += ["## Examples", ""]
    for title, text in EXAMPLES:
        out += [f"### {title}", "", "```yaml", textwrap.dedent(text).strip(), "```", ""]
    out += ["## Keys", ""]
    for section in sections(root):
        title = section.path or "top level"
        out += [f'<a id="{anchor(section.path)}"></a>', "", f"### `{title}`", ""]
        if section.also_at:
            out += ["Also at: " + ", ".join(f"`{p}`" for p in sorted(section.also_at)) + ".", ""]
        if section.intro:
            out += [section.intro, ""]
        out += ["| key | type | default | description |", "| --- | --- | --- | --- |"]
        for key in section.keys:
            out.append(f"| `{key.name}` | {_cell(key.type)} | {_cell(key.default)} | {_cell(key.description)} |")
        out.append("")
        names = getattr(section.model, "alertmanager_names", {})
        if names:
            out += ["Alertmanager's spellings are accepted too: " + ", ".join(
                f"`{theirs}` for `{ours}`" for theirs, ours in names.items()) + ".", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def undescribed(root: type[BaseModel] | None = None) -> list[str]:
    """Keys with no description anywhere: `make docs` lists them so they get one."""
    return [f"{s.path or '(top level)'}.{k.name}" for s in sections(root) for k in s.keys if not k.description]
