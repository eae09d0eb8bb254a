"""Prometheus's read API over tocsin's rules: /api/v1/rules, /api/v1/alerts, /api/v1/query.

Grafana, promtool, Karma and the scripts people already have read Prometheus, so these
answer in Prometheus 2.42's shapes (`{"status":"success","data":…}`, errors as
`{"status":"error","errorType":…,"error":…}` with 400 or 422). Queries run over the rule
sample store: the series some rule selects, the recording rules' results and ALERTS,
for the last few minutes — not a TSDB. tocsin's own alert view, which `/api/v1/alerts`
used to serve (grouped, with startsAt and endsAt), is at `/api/tocsin/alerts`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any, Protocol
from urllib.parse import parse_qs

from .. import promql
from ..gofmt import format_float_exponent, format_float_fixed, rfc3339_nano
from ..promql.printing import expression_text
from ..redaction import redact, redact_json
from ..rules.alerting import FIRING, PENDING, AlertingRule
from ..rules.alerting import Alert as RuleAlert
from ..rules.frame import TimeFrame
from ..rules.group import Group
from ..rules.store import SampleStore
from .routes import Request, Response

JSON = "application/json"
ALERTS_PATH = "/api/tocsin/alerts"


class RuleSource(Protocol):
    """What the read API needs of the rule manager (`rules.manager.RuleManager`)."""

    groups: dict[str, Group]
    store: SampleStore
    frame: TimeFrame

    def active_alerts(self) -> list[dict[str, Any]]: ...


def _success(data: Any) -> Response:
    return Response(200, json.dumps({"status": "success", "data": redact_json(data)}).encode(), JSON)


def _error(status: int, kind: str, message: str) -> Response:
    return Response(status, json.dumps({"status": "error", "errorType": kind, "error": redact(message)}).encode(), JSON)


def _time(ms: int) -> str:
    return rfc3339_nano(datetime.fromtimestamp(ms / 1000, timezone.utc) if ms else None)


def _seconds(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def sample_value(v: float) -> str:
    """A sample's value as Prometheus's JSON has it: strconv.FormatFloat(v, 'f', -1, 64)."""
    return format_float_fixed(v)


def alert_value(v: float) -> str:
    """An alert's value in the rules and alerts APIs: strconv.FormatFloat(v, 'e', -1, 64)."""
    return format_float_exponent(v).replace("E", "e")


class PrometheusAPI:
    """The listener's handler for Prometheus's read endpoints (and tocsin's moved alert view)."""

    def __init__(self, rules: RuleSource) -> None:
        self.rules = rules

    def handle(self, request: Request) -> Response | None:
        path = request.path
        if path not in ("/api/v1/rules", "/api/v1/alerts", "/api/v1/query", ALERTS_PATH):
            return None
        allowed = ("GET", "HEAD", "POST") if path == "/api/v1/query" else ("GET", "HEAD")
        if request.method not in allowed:
            return Response(405, b"", JSON, [("Allow", ", ".join(allowed))])
        params = parse_qs(request.target.partition("?")[2], keep_blank_values=True)
        if request.method == "POST" and request.headers.get("content-type", "").startswith(
                "application/x-www-form-urlencoded"):
            for key, values in parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True).items():
                params.setdefault(key, []).extend(values)
        if path == "/api/v1/query":
            return self.query(params)
        if path == "/api/v1/alerts":
            return _success({"alerts": [alert_json(a) for _, rule in self._alerting_rules()
                                        for a in rule.active_alerts()]})
        if path == ALERTS_PATH:
            return _success(self.rules.active_alerts())
        return self.rules_view(params)

    def _groups(self) -> list[Group]:
        return sorted(self.rules.groups.values(), key=lambda g: (g.spec.file, g.spec.name))

    def _alerting_rules(self) -> Iterable[tuple[Group, AlertingRule]]:
        for group in self._groups():
            for rule in group.rules:
                if isinstance(rule, AlertingRule):
                    yield group, rule

    # ------------------------------------------------------------------ /api/v1/rules

    def rules_view(self, params: dict[str, list[str]]) -> Response:
        kind = (params.get("type") or [""])[-1].lower()
        if kind not in ("", "alert", "record"):
            return _error(400, "bad_data", f"invalid parameter \"type\": unsupported type {kind}")
        names, groups, files = (set(params.get(k, [])) for k in ("rule_name[]", "rule_group[]", "file[]"))
        out = []
        for group in self._groups():
            if (groups and group.spec.name not in groups) or (files and group.spec.file not in files):
                continue
            rules = []
            for rule in group.rules:
                alerting = isinstance(rule, AlertingRule)
                if (kind == "alert" and not alerting) or (kind == "record" and alerting) or \
                        (names and rule.name not in names):
                    continue
                rules.append(rule_json(rule))
            if rules or not names:  # 2.42 lists every group, even when `type` leaves it empty
                out.append({"name": group.spec.name, "file": group.spec.file, "rules": rules,
                            "interval": _seconds(group.spec.interval_s), "limit": group.spec.limit,
                            "evaluationTime": group.stats.last_duration_s,
                            "lastEvaluation": _time(group.stats.last_eval_ms)})
        return _success({"groups": out})

    # ------------------------------------------------------------------ /api/v1/query

    def query(self, params: dict[str, list[str]]) -> Response:
        text = (params.get("query") or [""])[-1]
        try:
            t_ms = _parse_time((params.get("time") or [""])[-1])
        except ValueError as exc:
            return _error(400, "bad_data", f"invalid parameter \"time\": {exc}")
        try:
            expr = promql.parse(text)
        except promql.PromQLError as exc:
            return _error(400, "bad_data", f"invalid parameter \"query\": {exc}")
        try:
            with self.rules.frame.evaluation(t_ms, None) as ts:
                result = promql.instant_query(expr, self.rules.store, ts)
        except (promql.PromQLError, RecursionError, ValueError, ZeroDivisionError, OverflowError) as exc:
            return _error(422, "execution", str(exc))
        return _success(result_json(result, t_ms / 1000))


def _parse_time(text: str) -> int:
    """Prometheus's parseTime: unix seconds (with a fraction) or RFC 3339; empty is now (ms)."""
    if not text:
        return int(time.time() * 1000)
    try:
        seconds = float(text)
    except ValueError:
        try:
            return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
        except ValueError:
            raise ValueError(f"Invalid time value for 'time': cannot parse \"{text}\" to a valid timestamp") from None
    if not math.isfinite(seconds):
        raise ValueError(f"Invalid time value for 'time': cannot parse \"{text}\" to a valid timestamp")
    return int(round(seconds * 1000))


def result_json(result: promql.Value, t: float) -> dict[str, Any]:
    if isinstance(result, promql.Scalar):
        return {"resultType": "scalar", "result": [t, sample_value(result.value)]}
    if isinstance(result, promql.String):
        return {"resultType": "string", "result": [t, result.value]}
    if isinstance(result, promql.Matrix):
        return {"resultType": "matrix", "result": [
            {"metric": dict(s.labels), "values": [[ts / 1000, sample_value(v)] for ts, v in s.points()]}
            for s in result]}
    return {"resultType": "vector", "result": [{"metric": dict(s.labels), "value": [t, sample_value(s.value)]}
                                               for s in result]}


def alert_json(a: RuleAlert) -> dict[str, Any]:
    return {"labels": dict(a.labels), "annotations": dict(a.annotations), "state": a.state.value,
            "activeAt": _time(a.active_at), "value": alert_value(a.value)}


def rule_json(rule: Any) -> dict[str, Any]:
    spec = rule.spec
    last_ms = getattr(rule, "last_eval_ms", 0)
    health = "err" if rule.last_error else "ok" if last_ms else "unknown"
    common: dict[str, Any] = {"health": health, "evaluationTime": getattr(rule, "last_duration_s", 0.0),
                              "lastEvaluation": _time(last_ms)}
    if rule.last_error:
        common["lastError"] = rule.last_error
    if isinstance(rule, AlertingRule):
        alerts = rule.active_alerts()
        states = {a.state for a in alerts}
        state = "firing" if FIRING in states else "pending" if PENDING in states else "inactive"
        return {"state": state, "name": spec.name, "query": expression_text(spec.expr_text), "duration": _seconds(spec.for_s),
                "keepFiringFor": _seconds(spec.keep_firing_for_s), "labels": dict(spec.labels),
                "annotations": dict(spec.annotations), "alerts": [alert_json(a) for a in alerts],
                **common, "type": "alerting"}
    out: dict[str, Any] = {"name": spec.name, "query": expression_text(spec.expr_text)}
    if spec.labels:
        out["labels"] = dict(spec.labels)
    return {**out, **common, "type": "recording"}

