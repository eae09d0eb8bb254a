"""`tocsin test rules`: promtool's rule unit-test format, run on tocsin's own engine.

The verdicts (and exit codes) are meant to be those of `promtool test rules` 2.42, including
its less obvious habits: floats are compared exactly; the series are loaded step by step
and only up to the last evaluation tick reached, so a `promql_expr_test` at an eval_time
between ticks does not see later samples; alerts are compared as they were at the last
evaluation at or before `eval_time`; only firing alerts count; evaluation stops at the first
rule error.
"""

from __future__ import annotations

import glob
import logging
import math
import os
import sys
from dataclasses import dataclass
from typing import Any, TextIO

from .. import promql, yamlfile
from ..errors import ConfigError
from ..gofmt import format_float_exponent, format_label_set, quote
from ..promql.labels import Labels
from ..promql.testfile import TestFileError, parse_metric, parse_series_line
from ..units import parse_duration
from .alerting import FIRING, AlertingRule
from .files import GroupSpec, RuleFileError, load_rule_file
from .group import Group
from .rule import query_vector

_FILE_KEYS = {"rule_files", "evaluation_interval", "group_eval_order", "tests"}
_TEST_KEYS = {"interval", "input_series", "alert_rule_test", "promql_expr_test", "external_labels", "external_url",
              "name"}
_SERIES_KEYS = {"series", "values"}
_ALERT_TEST_KEYS = {"eval_time", "alertname", "exp_alerts"}
_EXP_ALERT_KEYS = {"exp_labels", "exp_annotations"}
_EXPR_TEST_KEYS = {"expr", "eval_time", "exp_samples"}
_SAMPLE_KEYS = {"labels", "value"}


class _Fail(Exception):
    pass


def _ms(value: Any) -> int:
    if value is None:
        return 0
    try:
        return int(round(parse_duration(str(value)) * 1000))
    except ValueError:
        raise _Fail(f'not a valid duration string: "{value}"') from None


def go_duration(ms: int) -> str:
    """model.Duration.String(): 1h30m, 5m, 0s."""
    if ms == 0:
        return "0s"
    out = ""
    for unit, size in (("y", 31_536_000_000), ("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000),
                       ("m", 60_000), ("s", 1000), ("ms", 1)):
        n, ms = divmod(ms, size)
        if n:
            out += f"{n}{unit}"
    return out


def go_time_duration(ms: int) -> str:
    """time.Duration.String(), which promtool uses for a rule's evaluation error: 1m0s, 1h0m30s, 500ms."""
    if ms == 0:
        return "0s"
    sign, ms = ("-", -ms) if ms < 0 else ("", ms)
    if ms < 1000:
        return f"{sign}{ms}ms"
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, frac = divmod(rest, 1000)
    sec = f"{s}" + (f".{frac:03d}".rstrip("0") if frac else "") + "s"
    if h:
        return f"{sign}{h}h{m}m{sec}"
    return f"{sign}{m}m{sec}" if m else sign + sec


def _check_keys(node: Any, allowed: set[str], type_name: str) -> None:
    if node is None:
        return
    if not isinstance(node, dict):
        raise _Fail(f"yaml: unmarshal errors: cannot unmarshal into {type_name}")
    for key in node:
        if key not in allowed:
            raise _Fail(f"yaml: unmarshal errors:\n  field {key} not found in type {type_name}")


def _labels_str(labels: Labels | dict[str, str]) -> str:
    return format_label_set(sorted(labels.items()) if isinstance(labels, dict) else labels)


def _indent(text: str, indent: str) -> str:
    lines = text.split("\n")
    return lines[0] + "".join("\n" + indent + line for line in lines[1:])


def _alerts_str(alerts: list[tuple[dict[str, str], dict[str, str]]]) -> str:
    if not alerts:
        return "[]"
    parts = []
    for i, (labels, annots) in enumerate(alerts):
        body = "\nLabels:" + _labels_str(labels) + "\nAnnotations:" + _labels_str(annots)
        parts.append(f"{i}:" + _indent(body, "  "))
    return "[\n" + ",\n".join(parts) + "\n]"


def _float_list_equal(a: list[tuple[Any, float]], b: list[tuple[Any, float]]) -> bool:
    if len(a) != len(b):
        return False
    return all(x[0] == y[0] and x[1] == y[1] for x, y in zip(a, b, strict=True))  # NaN never equals: like reflect.DeepEqual


class _Store(promql.MemoryStorage):
    """MemoryStorage fed step by step, as promtool's lazy loader does."""

    def __init__(self, series: list[tuple[Labels, list[tuple[int, float]]]]) -> None:
        super().__init__()
        self._pending = series
        self._pos = [0] * len(series)

    def load_till(self, ts: int) -> None:
        for i, (labels, samples) in enumerate(self._pending):
            j = self._pos[i]
            while j < len(samples) and samples[j][0] <= ts:
                self.add(labels, *samples[j])
                j += 1
            self._pos[i] = j


@dataclass
class _TestContext:
    eval_interval: int
    order: dict[str, int]
    rule_files: list[str]


def _run_group(tg: dict[str, Any], ctx: _TestContext) -> list[str]:
    _check_keys(tg, _TEST_KEYS, "main.testGroup")
    interval = _ms(tg.get("interval")) or ctx.eval_interval
    name = tg.get("name") or ""
    external_labels = {str(k): str(v) for k, v in (tg.get("external_labels") or {}).items()}
    external_url = str(tg.get("external_url") or "")
    # Input series
    series: list[tuple[Labels, list[tuple[int, float]]]] = []
    for item in tg.get("input_series") or []:
        _check_keys(item, _SERIES_KEYS, "main.series")
        try:
            labels, values = parse_series_line(f"{item.get('series', '')} {item.get('values', '')}")
        except (TestFileError, ValueError) as exc:
            return [str(exc)]
        samples = [(k * interval, v) for k, v in enumerate(values) if v is not None]
        series.append((labels, samples))
    store = _Store(series)
    # Rule groups
    groups: list[Group] = []
    errors: list[str] = []
    specs: list[GroupSpec] = []
    for path in ctx.rule_files:
        try:
            specs += load_rule_file(path, interval / 1000)
        except RuleFileError as exc:
            errors += exc.errors
    if errors:
        return errors
    for spec in specs:
        g = Group(spec, external_labels, external_url)
        for r in g.rules:
            if isinstance(r, AlertingRule):
                r.restored = True
        groups.append(g)
    groups.sort(key=lambda g: ctx.order.get(g.name, 0))

    alert_tests: dict[int, list[dict[str, Any]]] = {}
    for case in tg.get("alert_rule_test") or []:
        _check_keys(case, _ALERT_TEST_KEYS, "main.alertTestCase")
        if not case.get("alertname"):
            suffix = f" (in TestGroup {name})" if name else ""
            return [f"an item under alert_rule_test misses required attribute alertname at eval_time "
                    f"{go_duration(_ms(case.get('eval_time')))}{suffix}"]
        alert_tests.setdefault(_ms(case.get("eval_time")), []).append(case)
    expr_tests = tg.get("promql_expr_test") or []
    for case in expr_tests:
        _check_keys(case, _EXPR_TEST_KEYS, "main.promqlTestCase")
    max_t = max([*alert_tests, *(_ms(c.get("eval_time")) for c in expr_tests), 0])
    times = sorted(alert_tests)
    cur = 0
    errs: list[str] = []
    ts = 0
    step = ctx.eval_interval
    while ts <= max_t:
        store.load_till(ts)
        eval_errs = []
        for g in groups:
            g.eval(ts, store, subquery_step_ms=step)
            for r in g.rules:
                if r.last_error is not None:
                    eval_errs.append(f"    rule: {r.name}, time: {go_time_duration(ts)}, err: {r.last_error}")
        errs += eval_errs
        if eval_errs:
            return errs
        while cur < len(times) and ts <= times[cur] < ts + step:
            t = times[cur]
            wanted = {c["alertname"] for c in alert_tests[t]}
            got: dict[str, list[tuple[dict[str, str], dict[str, str]]]] = {}
            for g in groups:
                for r in g.rules:
                    if isinstance(r, AlertingRule) and r.name in wanted:
                        got.setdefault(r.name, []).extend(
                            (dict(a.labels), dict(a.annotations)) for a in r.active.values() if a.state == FIRING)
            for case in alert_tests[t]:
                got_alerts = sorted(got.get(case["alertname"], []), key=_alert_key)
                exp_alerts: list[tuple[dict[str, str], dict[str, str]]] = []
                for exp in case.get("exp_alerts") or []:
                    _check_keys(exp, _EXP_ALERT_KEYS, "main.alert")
                    exp_labels = {str(k): str(v) for k, v in (exp.get("exp_labels") or {}).items()}
                    exp_labels["alertname"] = case["alertname"]
                    annotations = {str(k): str(v) for k, v in (exp.get("exp_annotations") or {}).items()}
                    exp_alerts.append((exp_labels, annotations))
                exp_alerts.sort(key=_alert_key)
                if exp_alerts != got_alerts:
                    prefix = f"    name: {name},\n" if name else ""
                    errs.append(f"{prefix}    alertname: {case['alertname']}, time: {go_duration(t)}, \n"
                                f"        exp:{_indent(_alerts_str(exp_alerts), '            ')}, \n"
                                f"        got:{_indent(_alerts_str(got_alerts), '            ')}")
            cur += 1
        ts += step

    for case in expr_tests:
        expr_text = str(case.get("expr", ""))
        t = _ms(case.get("eval_time"))
        where = f"    expr: {quote(expr_text)}, time: {go_duration(t)}"
        try:
            got_vec = query_vector(promql.parse(expr_text), store, t, step)
        except promql.PromQLError as exc:
            errs.append(f"{where}, err: {exc}")
            continue
        got_samples = sorted(((s.labels, s.value) for s in got_vec), key=lambda p: p[0])
        exp_samples = []
        bad = False
        for s in case.get("exp_samples") or []:
            _check_keys(s, _SAMPLE_KEYS, "main.sample")
            text = str(s.get("labels") or "")
            try:
                labels, rest = parse_metric(text)
                if rest.strip():
                    raise TestFileError(f"unexpected {rest.strip()!r}")
            except TestFileError as exc:
                errs.append(f"{where}, err: labels {quote(text)}: {exc}")
                bad = True
                break
            value = s.get("value")
            exp_samples.append((labels, _yaml_float(value)))
        if bad:
            continue
        exp_samples.sort(key=lambda p: p[0])
        if not _float_list_equal(exp_samples, got_samples):
            errs.append(f"{where},\n        exp: {_samples_str(exp_samples)}\n        got: {_samples_str(got_samples)}")
    return errs


def _yaml_float(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool):
        raise _Fail("yaml: unmarshal errors: cannot unmarshal !!bool into float64")
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    low = text.lower()
    if low in (".nan", "nan"):
        return math.nan
    if low in (".inf", "+.inf", "inf", "+inf"):
        return math.inf
    if low in ("-.inf", "-inf"):
        return -math.inf
    try:
        return float(text)
    except ValueError:
        raise _Fail(f"yaml: unmarshal errors: cannot unmarshal !!str `{text}` into float64") from None


def _samples_str(samples: list[tuple[Labels, float]]) -> str:
    if not samples:
        return "nil"
    return ", ".join(f"{_labels_str(labels)} {format_float_exponent(v)}" for labels, v in samples)


def _alert_key(item: tuple[dict[str, str], dict[str, str]]) -> tuple:
    return (sorted(item[0].items()), sorted(item[1].items()))


def run_file(path: str, out: TextIO | None = None, err: TextIO | None = None) -> bool:
    """Run one unit-test file; print promtool-style output; True if it passed.

    The streams default to sys.stdout/stderr as they are at the call, not at import.
    """
    out, err = out or sys.stdout, err or sys.stderr
    print(f"Unit Testing:  {path}", file=out)
    errors = _run_file(path)
    if errors:
        print("  FAILED:", file=err)
        for e in errors:
            print(e, file=err)
            print(file=out)
        print(file=out)
        return False
    print("  SUCCESS", file=out)
    print(file=out)
    return True


def _run_file(path: str) -> list[str]:
    try:
        with open(path, "rb") as fh:  # promtool's wording for a file that cannot be opened
            fh.read(0)
    except OSError as exc:
        return [f"open {path}: {exc.strerror.lower() if exc.strerror else exc}"]
    try:
        raw = yamlfile.load(path)  # bounded: size, nesting, aliases; the error names the line
    except ConfigError as exc:
        return exc.errors
    try:
        if raw is None:
            raw = {}
        _check_keys(raw, _FILE_KEYS, "main.unitTestFile")
        base = os.path.dirname(path)
        rule_files: list[str] = []
        for pattern in raw.get("rule_files") or []:
            full = pattern if os.path.isabs(pattern) else os.path.join(base, pattern)
            matches = sorted(glob.glob(full))
            if not matches:
                print(f"  WARNING: no file match pattern {full}", file=sys.stderr)
            rule_files += matches
        eval_interval = _ms(raw.get("evaluation_interval")) or 60_000
        order: dict[str, int] = {}
        for i, name in enumerate(raw.get("group_eval_order") or []):
            if name in order:
                return [f"group name repeated in evaluation order: {name}"]
            order[name] = i
        ctx = _TestContext(eval_interval, order, rule_files)
        errors: list[str] = []
        for tg in raw.get("tests") or []:
            errors += _run_group(tg, ctx)
        return errors
    except _Fail as exc:
        return [str(exc)]


def run_files(paths: list[str], out: TextIO | None = None, err: TextIO | None = None) -> int:
    logging.getLogger("tocsin.rules").setLevel(logging.CRITICAL)  # failures are reported as verdicts
    failed = False
    for path in paths:
        if not run_file(path, out, err):
            failed = True
    return 1 if failed else 0
