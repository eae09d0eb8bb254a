"""docs/tocsin.schema.json: a JSON Schema of the configuration file, for editors' YAML completion.

pydantic's own schema describes the values *after* validation (a duration as a number of
seconds), so an editor using it would flag every `30s`. This one describes the file as it
is written — durations and sizes as their strings, secrets and files as strings — walking
the same models as the reference (`config_reference`), with the same descriptions, so a key
added to a model appears here too. It is a guide for editors, not the validator:
`tocsin check config` still decides (cross-key rules, files that exist, regexps that
compile). A `${ENV}` reference is accepted where a duration or size is expected.
"""

from __future__ import annotations

import enum
import json
import types
import typing
from typing import Any

import annotated_types
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from .config_reference import RANGE_TYPES, default_text, key_description, validator_names

_ENV = r".*\$\{[A-Za-z_][A-Za-z0-9_]*\}.*"
_DURATION = {"type": "string",
             "pattern": rf"^((\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?|{_ENV})$",
             "examples": ["30s", "5m", "1h30m"]}
_SIZE = {"anyOf": [{"type": "integer", "minimum": 0},
                   {"type": "string", "pattern": rf"^(\d+(\.\d+)?\s*([kKmMgGtT][iI]?[bB]|[bB])?|{_ENV})$"}]}
_LABEL_NAME = "^[a-zA-Z_][a-zA-Z0-9_]*$"
_BY_VALIDATOR: dict[str, dict[str, Any]] = {
    "duration > 0": _DURATION, "duration": _DURATION, "size": _SIZE,
    "host:port": {"type": "string", "pattern": r"^.+:\d{1,5}$"},
    "regexp (RE2)": {"type": "string"}, "file path": {"type": "string"},
    "file path (secret read from it)": {"type": "string"},
    "labels (name: value)": {"type": "object", "propertyNames": {"pattern": _LABEL_NAME},
                             "additionalProperties": {"type": "string"}},
}
# Alertmanager's ranges (`monday:friday`, `1:5`, `-1`), written as strings or single numbers.
_BY_VALIDATOR.update({name: {"type": ["string", "integer"]} for name in RANGE_TYPES})
_SCALARS: dict[Any, dict[str, Any]] = {str: {"type": "string"}, int: {"type": "integer"}, float: {"type": "number"},
                                       bool: {"type": "boolean"}, SecretStr: {"type": "string"}}


# Spellings a model's own `mode="before"` validator accepts, invisible in its fields:
# (model, key) -> the key whose schema it also takes.
_EXTRA_KEYS = {("HTTPConfig", "tls_config"): "tls"}  # blackbox_exporter's name for HTTP's TLS options
_ALSO_LIKE = {("TCPConfig", "tls"): "tls_config"}  # `tls: {…}`: TLS on, with these options
_ALSO_A_STRING = {("EmailConfig", "to")}  # Alertmanager's one comma-separated string
_OTHER_KEYS: dict[tuple[str, str], dict[str, Any]] = {  # read by a `mode="before"` validator
    ("EmailConfig", "tls_config"): {"type": "object", "additionalProperties": False,
                                    "description": "Alertmanager's form of `ca_file` and `insecure_skip_verify`.",
                                    "properties": {"ca_file": {"type": "string"},
                                                   "insecure_skip_verify": {"type": "boolean"}}},
}


def _bounds(metadata: list[Any], schema: dict[str, Any]) -> dict[str, Any]:
    schema = dict(schema)
    items = [m for meta in metadata for m in (meta.metadata if isinstance(meta, FieldInfo) else [meta])]
    for item in items:
        if isinstance(item, annotated_types.Ge):
            schema["minimum"] = item.ge
        elif isinstance(item, annotated_types.Gt):
            schema["exclusiveMinimum"] = item.gt
        elif isinstance(item, annotated_types.Le):
            schema["maximum"] = item.le
        elif isinstance(item, annotated_types.Lt):
            schema["exclusiveMaximum"] = item.lt
        elif isinstance(item, annotated_types.MinLen) and item.min_length:
            schema["minItems" if schema.get("type") == "array" else "minLength"] = item.min_length
        elif isinstance(item, annotated_types.MaxLen):
            schema["maxItems" if schema.get("type") == "array" else "maxLength"] = item.max_length
    return schema


class _Builder:
    def __init__(self) -> None:
        self.defs: dict[str, dict[str, Any]] = {}

    def type_schema(self, kind: Any, metadata: list[Any] | None = None) -> dict[str, Any]:
        metadata = list(metadata or [])
        origin, args = typing.get_origin(kind), typing.get_args(kind)
        if origin is typing.Annotated:
            return self.type_schema(args[0], [*metadata, *kind.__metadata__])
        named = validator_names(metadata)
        if named:
            return _BY_VALIDATOR.get(named[0], {})
        if origin is typing.Union or origin is types.UnionType:
            members = [self.type_schema(a, metadata) for a in args if a is not type(None)]
            if type(None) in args:
                members.append({"type": "null"})
            return members[0] if len(members) == 1 else {"anyOf": members}
        if origin is typing.Literal:
            return {"enum": list(args)}
        if origin in (list, tuple, set, frozenset) and args:
            return _bounds(metadata, {"type": "array", "items": self.type_schema(args[0])})
        if origin is dict and len(args) == 2:
            return {"type": "object", "additionalProperties": self.type_schema(args[1])}
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            return {"$ref": f"#/$defs/{self.model(kind)}"}
        if isinstance(kind, type) and issubclass(kind, enum.Enum):
            return {"enum": [member.value for member in kind]}
        return _bounds(metadata, _SCALARS.get(kind, {}))

    def model(self, model: type[BaseModel]) -> str:
        name = model.__name__.lstrip("_")
        if name in self.defs:
            return name
        definition: dict[str, Any] = {"type": "object", "additionalProperties": False}
        self.defs[name] = definition  # before the fields: a recursive model refers to itself
        if model.__doc__ and not model.__doc__.startswith(f"{model.__name__}("):
            definition["description"] = " ".join(model.__doc__.split("\n\n")[0].split())
        properties: dict[str, Any] = {}
        required = []
        for field_name, info in model.model_fields.items():
            key = info.alias or field_name
            schema = dict(self.type_schema(info.annotation, list(info.metadata)))
            description = key_description(model, field_name, key)
            if description:
                schema["description"] = description
            default = default_text(info, field_name, "duration" if schema.get("pattern") == _DURATION["pattern"] else "")
            if info.is_required():
                required.append(key)
            elif default not in ("none", "its keys' defaults"):
                schema["markdownDescription"] = f"{description} Default: {default}.".strip()
            properties[key] = schema
        for (owner, extra), like in _EXTRA_KEYS.items():
            if owner == model.__name__ and like in properties:
                properties[extra] = properties[like]
        for (owner, key), like in _ALSO_LIKE.items():
            if owner == model.__name__ and key in properties and like in properties:
                first = {k: v for k, v in properties[key].items() if "escription" not in k}
                second = {k: v for k, v in properties[like].items() if "escription" not in k}
                properties[key] = {**{k: v for k, v in properties[key].items() if "escription" in k},
                                   "anyOf": [first, second]}
        for theirs, ours in getattr(model, "alertmanager_names", {}).items():  # Alertmanager's spellings
            if ours in properties and theirs.endswith("_configs"):  # a list of one such mapping
                item = next(m for m in properties[ours].get("anyOf", [properties[ours]]) if "$ref" in m)
                properties[theirs] = {"type": "array", "items": item, "minItems": 1, "maxItems": 1,
                                      "description": f"Alertmanager's form of `{ours}`: a list of one."}
            elif ours in properties:
                plain = {k: v for k, v in properties[ours].items() if "escription" not in k}
                properties[theirs] = {**plain, "description": f"Alertmanager's name for `{ours}`."}
        for (owner, key), schema in _OTHER_KEYS.items():
            if owner == model.__name__:
                properties[key] = schema
        for owner, key in _ALSO_A_STRING:
            if owner == model.__name__ and key in properties:
                described = {k: v for k, v in properties[key].items() if "escription" in k}
                plain = {k: v for k, v in properties[key].items() if "escription" not in k}
                properties[key] = {**described, "anyOf": [plain, {"type": "string"}]}
        definition["properties"] = properties
        if required:
            definition["required"] = required
        return name


def build(root: type[BaseModel] | None = None) -> dict[str, Any]:
    if root is None:
        from ..config.schema import Config

        root = Config
    builder = _Builder()
    top = builder.model(root)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://tocsin.invalid/tocsin.schema.json",
            "title": "tocsin configuration",
            "description": "Generated from tocsin's validation models (make docs); `tocsin check config` decides.",
            "$ref": f"#/$defs/{top}", "$defs": dict(sorted(builder.defs.items()))}


def render(root: type[BaseModel] | None = None) -> str:
    return json.dumps(build(root), indent=2, ensure_ascii=False) + "\n"
