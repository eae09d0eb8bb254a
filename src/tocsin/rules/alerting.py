"""The alert state machine of an alerting rule (Prometheus rules/alerting.go semantics).

States are named as users see them: an alert is `pending` while its expression holds for
less than `for`, `firing` after, and `inactive` once the expression stops returning it
(and `keep_firing_for`, if set, has run out). A resolved alert is kept for 15 minutes so
its resolution keeps being sent, exactly as Prometheus does. Everything here is pure and
clocked by the evaluation timestamp it is given (ms), so the same code runs the daemon,
`tocsin test rules` and the unit tests. Which of these alerts are sent when is sending.py's
business.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote_plus

from .. import promql
from ..promql.labels import METRIC_NAME, Labels
from ..templates import QuerySample, TemplateData, TemplateError
from .files import RuleSpec
from .rule import Rule, query_vector

log = logging.getLogger("tocsin.rules")

RESOLVED_RETENTION_MS = 15 * 60 * 1000
OUTAGE_TOLERANCE_MS = 60 * 60 * 1000
FOR_GRACE_PERIOD_MS = 10 * 60 * 1000


class AlertState(StrEnum):
    """An alert's state; the values are what users see (ALERTS{alertstate}, the API, the state file)."""

    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"


# The members under plain module names: the state machine compares them for every alert at
# every evaluation, and reading a member off its enum class costs several times a global.
INACTIVE, PENDING, FIRING = AlertState.INACTIVE, AlertState.PENDING, AlertState.FIRING


@dataclass
class Alert:
    """One alert instance of a rule. Times are ms since the epoch; 0 means "never"."""

    labels: Labels  # sorted pairs without __name__, alertname included
    annotations: dict[str, str]
    state: AlertState
    active_at: int
    value: float
    fired_at: int = 0
    resolved_at: int = 0
    last_sent_at: int = 0
    valid_until: int = 0
    keep_firing_since: int = 0


# Template words that make an expansion depend on more than the sample's labels and value.
_CONTEXT_WORDS = re.compile(r"query|now|call")


def _same_float(a: float, b: float) -> bool:
    """Equal as a template would print them: -0 differs from 0, NaN equals NaN."""
    if a == b:
        return a != 0.0 or math.copysign(1.0, a) == math.copysign(1.0, b)
    return a != a and b != b


class AlertingRule(Rule):
    """One alerting rule and its alerts (`active`, by label set), advanced by each `eval`.

    `eval` returns the ALERTS and ALERTS_FOR_STATE series of the pending and firing alerts
    (kept in `output` for /metrics). After a start, the first evaluation brings back what
    was persisted (`to_restore`, `restore_down_at`: see `_restore`).
    """

    def __init__(self, spec: RuleSpec, external_labels: dict[str, str] | None = None, external_url: str = "") -> None:
        self.spec = spec
        self.hold_ms = int(round(spec.for_s * 1000))
        self.keep_firing_ms = int(round(spec.keep_firing_for_s * 1000))
        self.external_labels = dict(external_labels or {})
        self.external_url = external_url
        # Where a notification links back to: Prometheus's graph page for the expression.
        self.generator_url = f"{external_url}/graph?g0.expr={quote_plus(spec.expr_text)}&g0.tab=1"
        self.active: dict[Labels, Alert] = {}
        self.restored = False
        # Alerts read back from disk, consumed by the first evaluation (see _restore()).
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
            return [QuerySample({k: v for k, v in s.labels}, s.value) for s in query_vector(expr, storage, ts, step)]

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
        # Templates see the sample's full labels, __name__ included (Prometheus passes them so);
        # the alert's own labels drop the name.
        seen = dict(sample_labels)
        d = {k: v for k, v in sample_labels if k != METRIC_NAME}
        for k, v in self._expand(spec.label_templates, seen, value, ts, storage, step).items():
            if v == "":
                d.pop(k, None)
            else:
                d[k] = v
        d["alertname"] = spec.name
        annotations = self._expand(spec.annotation_templates, seen, value, ts, storage, step)
        return tuple(sorted(d.items())), annotations

    def eval(self, ts: int, storage: Any, limit: int, subquery_step_ms: int) -> list[tuple[Labels, float]]:
        vector = query_vector(self.spec.expr, storage, ts, subquery_step_ms)
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
                    tuple(sorted(labels + (("__name__", "ALERTS"), ("alertstate", a.state.value)))),
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

    def active_alerts(self) -> list[Alert]:
        """Pending and firing alerts (resolved ones are kept only to send their resolution)."""
        return [a for a in self.active.values() if a.state != INACTIVE]
