"""Rule files in the Prometheus format: loading and validation.

Errors read like promtool's (`FILE: LINE:COL: group "g", rule 2, "Name": reason`), so an
operator who knows Prometheus recognises them. Every expression is parsed and every
template compiled at load time: a rule file either loads completely or is reported.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import promql
from ..errors import ConfigError
from ..promql import nodes as N
from ..templates import Template, TemplateError
from ..units import parse_duration
from ..yamlfile import PosDict, loads, read_text

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_GROUP_KEYS = {"name", "interval", "limit", "labels", "query_offset", "rules"}
_RULE_KEYS = {"record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"}


@dataclass(eq=False)
class RuleSpec:
    """One validated rule. `reload_key` decides whether a reload keeps its alert state."""

    kind: str  # "alert" or "record"
    name: str
    expr_text: str
    expr: Any
    index: int  # 1-based position in its group, as promtool counts
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    label_templates: dict[str, Template] = field(default_factory=dict)
    annotation_templates: dict[str, Template] = field(default_factory=dict)

    @property
    def reload_key(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """Name and labels: what a reload matches a rule by, within its group, as Prometheus does.

        Editing a rule's expression, `for`, `keep_firing_for` or annotations keeps its
        alerts (firing stays firing, with its original activeAt); renaming it or changing
        its labels makes it another rule.
        """
        return (self.name, tuple(sorted(self.labels.items())))


@dataclass(eq=False)
class GroupSpec:
    file: str
    name: str
    interval_s: float
    rules: list[RuleSpec]
    limit: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    query_offset_s: float = 0.0

    @property
    def key(self) -> str:
        """`file;name`: the rule_group label value, as Prometheus's GroupKey."""
        return f"{self.file};{self.name}"


class RuleFileError(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


# ---------------------------------------------------------------------------- validation


def _duration(value: Any, what: str) -> float:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{what}: not a valid duration string: {value!r}")
    try:
        return parse_duration(str(value))
    except ValueError:
        raise ValueError(f'not a valid duration string: "{value}"') from None


def _str_map(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{what}: expected a mapping")
    out = {}
    for k, v in value.items():
        if isinstance(v, (dict, list)):
            raise ValueError(f"{what}: value of {k!r} must be a string")
        out[str(k)] = "" if v is None else (str(v).lower() if isinstance(v, bool) else str(v))
    return out


def _validate_rule(raw: Any, index: int, file: str, group: str, default_labels: dict[str, str]) -> tuple[RuleSpec | None, list[str]]:
    pos = getattr(raw, "pos", None)
    name = ""
    if isinstance(raw, dict):
        name = str(raw.get("alert") or raw.get("record") or "")
    where = (f"{pos.line}:{pos.col}: " if pos else "") + f'group "{group}", rule {index}, "{name}"'
    errs: list[str] = []

    def err(msg: str) -> None:
        errs.append(f"{file}: {where}: {msg}")

    if not isinstance(raw, PosDict):  # the loader makes every mapping a PosDict
        err("expected a mapping")
        return None, errs
    for key in raw:
        if key not in _RULE_KEYS:
            p = raw.key_pos(key)
            errs.append(f"{file}: {p.line if p else '?'}:{p.col if p else '?'}: group \"{group}\", rule {index}, "
                        f"\"{name}\": field {key} not found in type rulefmt.RuleNode")
    record, alert = raw.get("record"), raw.get("alert")
    if record is not None and alert is not None:
        err("only one of 'record' and 'alert' must be set")
    elif record is None and alert is None:
        err("one of 'record' or 'alert' must be set")
    raw_expr = raw.get("expr")
    expr_text = "" if raw_expr is None else str(raw_expr)
    expr = None
    if expr_text.strip() == "":
        err("field 'expr' must be set in rule")
    else:
        try:
            expr = promql.parse(expr_text)
        except promql.PromQLParseError as exc:
            p = raw.val_pos("expr")
            where_expr = (f"{p.line}:{p.col}: " if p else "") + f'group "{group}", rule {index}, "{name}"'
            errs.append(f"{file}: {where_expr}: could not parse expression: {exc}")
    try:
        labels = _str_map(raw.get("labels"), "labels")
        annotations = _str_map(raw.get("annotations"), "annotations")
    except ValueError as exc:
        err(str(exc))
        return None, errs
    for k in labels:
        if not _LABEL_NAME.match(k) or k == "__name__":
            err(f"invalid label name: {k}")
    for k in annotations:
        if not _LABEL_NAME.match(k):
            err(f"invalid annotation name: {k}")
    for_s = keep_s = 0.0
    for key in ("for", "keep_firing_for"):
        if raw.get(key) is not None:
            try:
                value = _duration(raw.get(key), key)
            except ValueError as exc:
                err(str(exc))
                continue
            if key == "for":
                for_s = value
            else:
                keep_s = value
    label_tmpl: dict[str, Template] = {}
    annot_tmpl: dict[str, Template] = {}
    if record is not None:
        record = str(record)
        if raw.get("annotations") is not None:
            err("invalid field 'annotations' in recording rule")
        if raw.get("for") is not None:
            err("invalid field 'for' in recording rule")
        if raw.get("keep_firing_for") is not None:
            err("invalid field 'keep_firing_for' in recording rule")
        if not _METRIC_NAME.match(record):
            err(f"invalid recording rule name: {record}")
    elif alert is not None:
        alert = str(alert)
        if not alert.strip():
            err("alert name must not be empty")
        for source, target in (({**default_labels, **labels}, label_tmpl), (annotations, annot_tmpl)):
            for k, text in source.items():
                try:
                    target[k] = Template(text, f"__alert_{alert}")
                except TemplateError as exc:
                    err(str(exc))
    if errs:
        return None, errs
    merged = {**default_labels, **labels}
    if record is not None:
        return RuleSpec("record", record, expr_text, expr, index, labels=merged), []
    return RuleSpec("alert", str(alert), expr_text, expr, index, for_s, keep_s, merged, annotations,
                    label_tmpl, annot_tmpl), []


def parse_rule_text(text: str, file: str, default_interval_s: float = 60.0) -> list[GroupSpec]:
    """Validate one rule file's text. Raises RuleFileError listing every problem."""
    try:
        raw = loads(text, file)  # bounded: size, nesting, aliases; positions kept for the messages
    except ConfigError as exc:
        raise RuleFileError(exc.errors) from None
    if raw is None:
        return []
    if not isinstance(raw, PosDict):
        raise RuleFileError([f"{file}: yaml: expected a mapping with the key 'groups'"])
    errors: list[str] = []
    for key in raw:
        if key != "groups":
            p = raw.key_pos(key)
            errors.append(f"{file}: yaml: line {p.line if p else '?'}: field {key} not found in type rulefmt.RuleGroups")
    groups_raw = raw.get("groups") or []
    if not isinstance(groups_raw, list):
        raise RuleFileError(errors + [f"{file}: yaml: 'groups' must be a list"])
    groups: list[GroupSpec] = []
    seen: set[str] = set()
    for gi, g in enumerate(groups_raw):
        if not isinstance(g, PosDict):
            errors.append(f"{file}: groups[{gi}]: expected a mapping")
            continue
        for key in g:
            if key not in _GROUP_KEYS:
                p = g.key_pos(key)
                errors.append(f"{file}: yaml: line {p.line if p else '?'}: field {key} not found in type rulefmt.RuleGroup")
        name = g.get("name")
        if name is None or str(name).strip() == "":
            errors.append(f"{file}: Groupname must not be empty")
            continue
        name = str(name)
        if name in seen:
            errors.append(f'{file}: {g.pos.line}:{g.pos.col}: groupname: "{name}" is repeated in the same file')
        seen.add(name)
        try:
            interval = _duration(g["interval"], "interval") if g.get("interval") is not None else default_interval_s
            offset = _duration(g["query_offset"], "query_offset") if g.get("query_offset") is not None else 0.0
            if interval <= 0:
                raise ValueError("interval must be greater than 0")
        except ValueError as exc:
            errors.append(f'{file}: group "{name}": {exc}')
            continue
        limit = g.get("limit") or 0
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            errors.append(f'{file}: group "{name}": limit must be a non-negative integer')
            limit = 0
        try:
            glabels = _str_map(g.get("labels"), "labels")
        except ValueError as exc:
            errors.append(f'{file}: group "{name}": {exc}')
            glabels = {}
        rules_raw = g.get("rules") or []
        if not isinstance(rules_raw, list):
            errors.append(f'{file}: group "{name}": rules must be a list')
            continue
        rules: list[RuleSpec] = []
        for ri, r in enumerate(rules_raw, start=1):
            spec, errs = _validate_rule(r, ri, file, name, glabels)
            errors += errs
            if spec is not None:
                rules.append(spec)
        groups.append(GroupSpec(file, name, interval, rules, limit, glabels, offset))
    if errors:
        raise RuleFileError(errors)
    return groups


def load_rule_file(path: str | os.PathLike[str], default_interval_s: float = 60.0) -> list[GroupSpec]:
    path = str(path)
    try:
        text = read_text(path)  # at most 64 MiB of UTF-8
    except ConfigError as exc:
        raise RuleFileError(exc.errors) from None
    return parse_rule_text(text, path, default_interval_s)


def resolve_rule_files(config_path: str | os.PathLike[str], patterns: list[str]) -> tuple[list[str], list[str]]:
    """Expand `rule_files` globs relative to the config file's directory. Returns (files, warnings)."""
    base = Path(config_path).resolve().parent
    files: list[str] = []
    warnings: list[str] = []
    for pattern in patterns:
        full = pattern if os.path.isabs(pattern) else str(base / pattern)
        matches = sorted(glob.glob(full))
        if not matches and not glob.has_magic(full):
            warnings.append(f"rule file {pattern!r} does not exist")
        for m in matches:
            if m not in files:
                files.append(m)
    return files, warnings


def names_file(config_path: str | os.PathLike[str], patterns: list[str], path: str) -> bool:
    """Whether `rule_files` (relative to the config file) names `path`, literally or by a glob."""
    base = Path(config_path).resolve().parent
    for pattern in patterns:
        full = pattern if os.path.isabs(pattern) else str(base / pattern)
        if full == path or (glob.has_magic(full) and fnmatch.fnmatchcase(path, full)):
            return True
    return False


def selectors(expr: Any) -> list[tuple[Any, int]]:
    """Every vector selector in `expr` with the history (ms) it reads before the evaluation time.

    A range selector reads its range, a subquery its range plus what its inner selectors
    need, and an offset shifts everything back; an instant selector's 5-minute lookback is
    added by the caller.
    """
    out: list[tuple[Any, int]] = []
    stack = [(expr, 0)]  # explicit: a 50 000-term chain is as deep as it is long
    while stack:
        node, extra = stack.pop()
        if isinstance(node, N.VectorSelector):
            out.append((node, extra + max(node.offset_ms, 0)))
        elif isinstance(node, N.MatrixSelector):
            sel = node.selector
            out.append((sel, extra + node.range_ms + max(sel.offset_ms, 0)))
        elif isinstance(node, N.Subquery):
            stack.append((node.expr, extra + node.range_ms + max(node.offset_ms, 0)))
        else:
            stack.extend((child, extra) for child in reversed(N.children(node)))
    return out


def count_rules(groups: list[GroupSpec]) -> int:
    return sum(len(g.rules) for g in groups)


def check_rules_cli(paths: list[str], out: Any = None, err: Any = None) -> int:
    """`tocsin check rules FILE...`: promtool's output and exit code (0 all good, 1 otherwise)."""
    out = out or sys.stdout
    err = err or sys.stderr
    failed = False
    for path in paths:
        print(f"Checking {path}", file=out)
        try:
            groups = load_rule_file(path)
        except RuleFileError as exc:
            print("  FAILED:", file=err)
            for line in exc.errors:
                print(line, file=err)
            print(file=out)
            failed = True
            continue
        print(f"  SUCCESS: {count_rules(groups)} rules found", file=out)
        print(file=out)
    return 1 if failed else 0
