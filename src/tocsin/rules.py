"""Rule groups and the alert state machine (Prometheus rules/alerting.go semantics).

States are named as users see them: an alert is `pending` while its expression holds for
less than `for`, `firing` after, and `inactive` once the expression stops returning it
(and `keep_firing_for`, if set, has run out). A resolved alert is kept for 15 minutes so
its resolution keeps being sent, exactly as Prometheus does. Everything here is pure and
clocked by the evaluation timestamp it is given (ms), so the same code runs the daemon,
`tocsin test rules` and the unit tests.
"""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Protocol

from . import promql
from .promql import STALE_NAN
from .promql.labels import METRIC_NAME, Labels
from .rulefiles import GroupSpec, RuleSpec
from .templates import QuerySample, TemplateData, TemplateError

log = logging.getLogger("tocsin.rules")

INACTIVE, PENDING, FIRING = "inactive", "pending", "firing"
RESOLVED_RETENTION_MS = 15 * 60 * 1000
RESEND_DELAY_MS = 60 * 1000
OUTAGE_TOLERANCE_MS = 60 * 60 * 1000
FOR_GRACE_PERIOD_MS = 10 * 60 * 1000
LOOKBACK_MS = 300_000


class Appender(Protocol):
    def add(self, labels: Labels, t_ms: int, value: float) -> None: ...


@dataclass
class Alert:
    """One alert instance of a rule. Times are ms since the epoch; 0 means "never"."""

    labels: Labels  # sorted pairs without __name__, alertname included
    annotations: dict[str, str]
    state: str
    active_at: int
    value: float
    fired_at: int = 0
    resolved_at: int = 0
    last_sent_at: int = 0
    valid_until: int = 0
    keep_firing_since: int = 0

    def needs_sending(self, ts: int, resend_delay_ms: int) -> bool:
        if self.state == PENDING:
            return False
        if self.resolved_at > self.last_sent_at or self.last_sent_at == 0:  # 0: never sent
            return True
        return self.last_sent_at + resend_delay_ms < ts


def _query(expr: Any, storage: Any, ts: int, subquery_step_ms: int) -> list[promql.Sample]:
    """What a rule sees: a vector (a scalar becomes one sample without labels)."""
    result = promql.instant_query(expr, storage, ts, LOOKBACK_MS, subquery_step_ms)
    if isinstance(result, promql.Vector):
        return result
    if isinstance(result, promql.Scalar):
        return [promql.Sample((), result.value)]
    raise promql.PromQLEvalError("rule result is not a vector or scalar")


# Template words that make an expansion depend on more than the sample's labels and value.
_CONTEXT_WORDS = re.compile(r"query|now|call")


def _same_float(a: float, b: float) -> bool:
    """Equal as a template would print them: -0 differs from 0, NaN equals NaN."""
    if a == b:
        return a != 0.0 or math.copysign(1.0, a) == math.copysign(1.0, b)
    return a != a and b != b


class Rule:
    spec: RuleSpec
    health: str = "unknown"
    last_error: str | None = None
    last_eval_ms: int = 0
    last_duration_s: float = 0.0

    @property
    def name(self) -> str:
        return self.spec.name


class RecordingRule(Rule):
    def __init__(self, spec: RuleSpec) -> None:
        self.spec = spec
        self._labels = spec.labels

    def eval(self, ts: int, storage: Any, limit: int, subquery_step_ms: int) -> list[tuple[Labels, float]]:
        vector = _query(self.spec.expr, storage, ts, subquery_step_ms)
        out: list[tuple[Labels, float]] = []
        seen: set[Labels] = set()
        name = self.spec.name
        extra = self._labels
        for s in vector:
            d = dict(s.labels)
            d[METRIC_NAME] = name
            for k, v in extra.items():
                if v == "":
                    d.pop(k, None)
                else:
                    d[k] = v
            labels = tuple(sorted(d.items()))
            if labels in seen:
                raise promql.PromQLEvalError("vector contains metrics with the same labelset after applying rule labels")
            seen.add(labels)
            out.append((labels, s.value))
        if limit > 0 and len(out) > limit:
            raise promql.PromQLEvalError(f"exceeded limit {limit} with {len(out)} series")
        return out


class AlertingRule(Rule):
    def __init__(self, spec: RuleSpec, external_labels: dict[str, str] | None = None, external_url: str = "") -> None:
        self.spec = spec
        self.hold_ms = int(round(spec.for_s * 1000))
        self.keep_firing_ms = int(round(spec.keep_firing_for_s * 1000))
        self.external_labels = dict(external_labels or {})
        self.external_url = external_url
        self.active: dict[Labels, Alert] = {}
        self.restored = False
        # Alerts read back from disk, consumed by the first evaluation (see restore()).
        self.to_restore: dict[Labels, Alert] = {}
        self.restore_down_at = 0
        self.output: list[tuple[Labels, float]] = []
        templates = list(spec.label_templates.values()) + list(spec.annotation_templates.values())
        self._cacheable = not any(_CONTEXT_WORDS.search(getattr(t, "text", "query")) for t in templates)
        self._expanded: dict[Labels, tuple[float, Labels, dict[str, str]]] = {}
        self._series_labels: dict[tuple[Labels, str], tuple[Labels, Labels]] = {}

    # -------------------------------------------------------------- templates
    def _expand(self, templates: dict[str, Any], labels: dict[str, str], value: float, ts: int,
                storage: Any, step: int) -> dict[str, str]:
        if not templates:
            return {}
        data = TemplateData(labels, self.external_labels, self.external_url, value)

        def query(q: str) -> list[QuerySample]:
            expr = promql.parse(q)
            return [QuerySample({k: v for k, v in s.labels}, s.value) for s in _query(expr, storage, ts, step)]

        out = {}
        for k, tmpl in templates.items():
            try:
                out[k] = tmpl.execute(data, query=query, now=ts / 1000, external_url=self.external_url)
            except (TemplateError, promql.PromQLError, RecursionError) as exc:
                out[k] = f"<error expanding template: {exc}>"
                log.warning("expanding alert template failed: %s", exc, extra={"fields": {"rule": self.name}})
        return out

    # -------------------------------------------------------------- evaluation
    def _labels_and_annotations(self, sample_labels: Labels, value: float, ts: int, storage: Any,
                                step: int) -> tuple[Labels, dict[str, str]]:
        spec = self.spec
        base = {k: v for k, v in sample_labels if k != METRIC_NAME}
        d = dict(base)
        for k, v in self._expand(spec.label_templates, base, value, ts, storage, step).items():
            if v == "":
                d.pop(k, None)
            else:
                d[k] = v
        d["alertname"] = spec.name
        annotations = self._expand(spec.annotation_templates, base, value, ts, storage, step)
        return tuple(sorted(d.items())), annotations

    def eval(self, ts: int, storage: Any, limit: int, subquery_step_ms: int) -> list[tuple[Labels, float]]:
        vector = _query(self.spec.expr, storage, ts, subquery_step_ms)
        # Templates are expanded again only when a sample's labels or value changed, unless
        # they can see more than labels and value (query, now).
        cache = self._expanded if self._cacheable else None
        expanded: dict[Labels, tuple[float, Labels, dict[str, str]]] = {}
        found: dict[Labels, tuple[float, dict[str, str]]] = {}
        for sample_labels, value in vector:
            hit = cache.get(sample_labels) if cache is not None else None
            if hit is not None and _same_float(hit[0], value):
                labels, annotations = hit[1], hit[2]
            else:
                labels, annotations = self._labels_and_annotations(sample_labels, value, ts, storage,
                                                                   subquery_step_ms)
            expanded[sample_labels] = (value, labels, annotations)
            if labels in found:
                raise promql.PromQLEvalError(
                    "vector contains metrics with the same labelset after applying alert labels")
            found[labels] = (value, annotations)
        self._expanded = expanded if cache is not None else {}

        active = self.active
        if not self.restored:
            alerts = {lbl: Alert(lbl, ann, PENDING, ts, v) for lbl, (v, ann) in found.items()}
            self._restore(alerts, ts)
            for labels, a in alerts.items():
                current = active.get(labels)
                if current is not None and current.state != INACTIVE:
                    current.value = a.value
                    current.annotations = a.annotations
                    continue
                active[labels] = a
        else:
            for labels, (value, annotations) in found.items():
                current = active.get(labels)
                if current is not None and current.state != INACTIVE:
                    current.value = value
                    current.annotations = annotations
                    continue
                active[labels] = Alert(labels, annotations, PENDING, ts, value)

        out: list[tuple[Labels, float]] = []
        series_labels = self._series_labels
        if len(series_labels) > 4 * len(active) + 1024:
            series_labels.clear()
        active_pending = 0
        for labels in list(active):
            a = active[labels]
            if labels not in found:
                keep_firing = False
                if a.state == FIRING and self.keep_firing_ms > 0:
                    if a.keep_firing_since == 0:
                        a.keep_firing_since = ts
                    if ts - a.keep_firing_since < self.keep_firing_ms:
                        keep_firing = True
                if a.state == PENDING or (a.resolved_at and ts - a.resolved_at > RESOLVED_RETENTION_MS):
                    del active[labels]
                if a.state != INACTIVE and not keep_firing:
                    a.state = INACTIVE
                    a.resolved_at = ts
                if not keep_firing:
                    continue
            else:
                a.keep_firing_since = 0
            active_pending += 1
            if a.state == PENDING and ts - a.active_at >= self.hold_ms:
                a.state = FIRING
                a.fired_at = ts
            names = series_labels.get((labels, a.state))
            if names is None:
                names = series_labels[(labels, a.state)] = (
                    tuple(sorted(labels + (("__name__", "ALERTS"), ("alertstate", a.state)))),
                    tuple(sorted(labels + (("__name__", "ALERTS_FOR_STATE"),))))
            out.append((names[0], 1.0))
            out.append((names[1], float(a.active_at // 1000)))
        if limit > 0 and active_pending > limit:
            self.active = {}
            self.output = []
            raise promql.PromQLEvalError(f"exceeded limit of {limit} with {active_pending} alerts")
        self.output = out
        return out

    def _restore(self, found: dict[Labels, Alert], ts: int) -> None:
        """First evaluation after a start: bring back what was persisted (Prometheus-like).

        Alerts still returned by the expression get their `for` timer back if the outage
        was shorter than the tolerance (pending time before the outage counts, the outage
        itself does not, and at least the grace period is left when `for` is long); alerts
        that fired before and are no longer returned are put back as firing, so this very
        evaluation resolves them and their resolution is sent.
        """
        self.restored = True
        saved, self.to_restore = self.to_restore, {}
        if not saved:
            return
        down_at = self.restore_down_at or ts
        short_outage = ts - down_at < OUTAGE_TOLERANCE_MS
        for labels, old in saved.items():
            new = found.get(labels)
            if new is None:
                if old.state == FIRING or (old.state == INACTIVE and old.resolved_at
                                           and ts - old.resolved_at <= RESOLVED_RETENTION_MS):
                    self.active[labels] = old
                continue
            if not short_outage:
                continue
            remaining = self.hold_ms - (down_at - old.active_at)
            if remaining <= 0 and old.state == FIRING:
                # Was firing and still is: keep its identity (startsAt) for receivers.
                old.value, old.annotations = new.value, new.annotations
                found[labels] = old
                self.active[labels] = old
                continue
            if remaining <= 0:
                active_at = old.active_at
            elif remaining < FOR_GRACE_PERIOD_MS <= self.hold_ms:
                active_at = ts + FOR_GRACE_PERIOD_MS - self.hold_ms
            else:
                active_at = old.active_at + (ts - down_at)
            new.active_at = min(active_at, ts)

    # -------------------------------------------------------------- sending
    def alerts_to_send(self, ts: int, resend_delay_ms: int, interval_ms: int) -> list[Alert]:
        out = []
        for a in self.active.values():
            if a.needs_sending(ts, resend_delay_ms):
                a.last_sent_at = ts
                a.valid_until = ts + 4 * max(resend_delay_ms, interval_ms)
                out.append(replace(a))
        return out

    def active_alerts(self) -> list[Alert]:
        return [a for a in self.active.values() if a.state != INACTIVE]


def make_rule(spec: RuleSpec, external_labels: dict[str, str] | None = None, external_url: str = "") -> Rule:
    if spec.kind == "alert":
        return AlertingRule(spec, external_labels, external_url)
    return RecordingRule(spec)


@dataclass
class GroupStats:
    evaluations: int = 0
    failures: int = 0
    iterations: int = 0
    missed: int = 0
    last_duration_s: float = 0.0
    last_eval_ms: int = 0
    rule_evaluations: dict[str, int] = field(default_factory=dict)


class Group:
    """A rule group: rules run in file order, each seeing what earlier ones wrote."""

    def __init__(self, spec: GroupSpec, external_labels: dict[str, str] | None = None, external_url: str = "",
                 resend_delay_ms: int = RESEND_DELAY_MS) -> None:
        self.spec = spec
        self.rules: list[Rule] = [make_rule(r, external_labels, external_url) for r in spec.rules]
        self.interval_ms = int(round(spec.interval_s * 1000))
        self.resend_delay_ms = resend_delay_ms
        self.stats = GroupStats()
        self._returned: list[set[Labels]] = [set() for _ in self.rules]

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def name(self) -> str:
        return self.spec.name

    def eval(self, ts: int, storage: Any, appender: Appender | None = None,
             subquery_step_ms: int | None = None) -> list[tuple[AlertingRule, list[Alert]]]:
        """Evaluate every rule at `ts`; write results (and stale markers) through `appender`.

        Returns, per alerting rule, the alerts to hand to the notification pipeline.
        """
        appender = appender if appender is not None else storage
        step = subquery_step_ms or self.interval_ms
        offset = int(self.spec.query_offset_s * 1000)
        started = time.perf_counter()
        to_send: list[tuple[AlertingRule, list[Alert]]] = []
        for i, rule in enumerate(self.rules):
            rule_started = time.perf_counter()
            self.stats.evaluations += 1
            try:
                vector = rule.eval(ts - offset, storage, self.spec.limit, step)
            except (promql.PromQLError, RecursionError, ValueError, ZeroDivisionError, OverflowError) as exc:
                rule.health, rule.last_error = "err", str(exc)
                self.stats.failures += 1
                log.warning("evaluating rule failed: %s", exc, extra={"fields": {"rule": rule.name, "group": self.name}})
                continue
            finally:
                rule.last_eval_ms = ts
                rule.last_duration_s = time.perf_counter() - rule_started
            rule.health, rule.last_error = "ok", None
            if isinstance(rule, AlertingRule):
                alerts = rule.alerts_to_send(ts, self.resend_delay_ms, self.interval_ms)
                if alerts:
                    to_send.append((rule, alerts))
            current: set[Labels] = set()
            for labels, value in vector:
                appender.add(labels, ts, value)
                current.add(labels)
            for labels in self._returned[i] - current:
                appender.add(labels, ts, STALE_NAN)
            self._returned[i] = current
        self.stats.iterations += 1
        self.stats.last_duration_s = time.perf_counter() - started
        self.stats.last_eval_ms = ts
        return to_send

    def stale_all(self, ts: int, appender: Appender) -> None:
        """The group is gone (reload): end every series it wrote."""
        for returned in self._returned:
            for labels in returned:
                appender.add(labels, ts, STALE_NAN)
            returned.clear()

    def copy_state_from(self, old: "Group") -> None:
        """Keep alert state (and series tracking) of rules that did not change across a reload."""
        by_identity: dict[tuple, list[int]] = {}
        for j, r in enumerate(old.rules):
            by_identity.setdefault(r.spec.identity, []).append(j)
        for i, rule in enumerate(self.rules):
            matches = by_identity.get(rule.spec.identity)
            if not matches:
                continue
            j = matches.pop(0)
            prev = old.rules[j]
            self._returned[i] = old._returned[j]
            old._returned[j] = set()
            rule.health, rule.last_error = prev.health, prev.last_error
            rule.last_eval_ms, rule.last_duration_s = prev.last_eval_ms, prev.last_duration_s
            if isinstance(rule, AlertingRule) and isinstance(prev, AlertingRule):
                rule.active = prev.active
                rule.restored = prev.restored
                rule.to_restore, rule.restore_down_at = prev.to_restore, prev.restore_down_at
                rule.output = prev.output
        self.stats = old.stats


def alert_to_dict(rule: AlertingRule, alert: Alert, external_labels: dict[str, str] | None = None) -> dict[str, Any]:
    """The notification shape: Prometheus's startsAt/endsAt (ValidUntil while firing)."""
    labels = dict(alert.labels)
    for k, v in (external_labels or {}).items():
        labels.setdefault(k, v)
    ends = alert.resolved_at if alert.resolved_at else alert.valid_until
    return {
        "labels": labels,
        "annotations": dict(alert.annotations),
        "state": alert.state,
        "startsAt": _rfc3339(alert.fired_at),
        "endsAt": _rfc3339(ends) if ends else None,
        "activeAt": _rfc3339(alert.active_at),
        "value": _fmt_value(alert.value),
        "generatorURL": rule.external_url + "/graph?g0.expr=" + _quote(rule.spec.expr_text) + "&g0.tab=1",
        "resolved": alert.state == INACTIVE,
        "status": "resolved" if alert.state == INACTIVE else "firing",
    }


def _fmt_value(v: float) -> str:
    from .gofmt import format_float as go_float

    return go_float(v) if not math.isnan(v) else "NaN"


def _quote(text: str) -> str:
    from urllib.parse import quote_plus

    return quote_plus(text)


def _rfc3339(ms: int) -> str:
    from datetime import datetime, timezone

    if not ms:
        return "0001-01-01T00:00:00Z"
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat().replace("+00:00", "Z")


def group_alerts(groups: Iterable[Group]) -> Iterable[tuple[Group, AlertingRule, Alert]]:
    for g in groups:
        for r in g.rules:
            if isinstance(r, AlertingRule):
                for a in r.active_alerts():
                    yield g, r, a


__all__ = ["Alert", "AlertingRule", "RecordingRule", "Group", "GroupStats", "alert_to_dict", "group_alerts",
           "INACTIVE", "PENDING", "FIRING", "Callable"]
