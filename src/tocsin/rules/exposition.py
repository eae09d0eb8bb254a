"""What the rules show the outside: the /metrics text (tocsin_rule_*, ALERTS,
ALERTS_FOR_STATE) and each active alert as /api/v1/alerts lists it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from ..gofmt import escape_label_value, rfc3339_nano
from ..gofmt import format_float as go_float
from ..metrics.exposition import family_header, format_labels, format_value
from .alerting import INACTIVE, Alert, AlertingRule
from .group import Group, GroupStats

_GROUP_METRICS = (
    ("tocsin_rule_group_last_duration_seconds", "gauge", "How long the last evaluation of the group took."),
    ("tocsin_rule_group_last_evaluation_timestamp_seconds", "gauge", "When the group was last evaluated (unix time)."),
    ("tocsin_rule_group_interval_seconds", "gauge", "The group's evaluation interval."),
    ("tocsin_rule_group_rules", "gauge", "Rules in the group."),
    ("tocsin_rule_evaluations_total", "counter", "Rule evaluations."),
    ("tocsin_rule_evaluation_failures_total", "counter", "Rule evaluations that failed."),
    ("tocsin_rule_group_iterations_total", "counter", "Scheduled group evaluations, run or missed."),
    ("tocsin_rule_group_iterations_missed_total", "counter", "Group evaluations missed because one overran."),
)

_ALERT_SERIES = (("ALERTS", "Pending and firing alerts, by alertname and alertstate."),
                 ("ALERTS_FOR_STATE", "When each active alert became active (unix time)."))


def _group_value(name: str, group: Group, s: GroupStats) -> float:
    return float({
        "tocsin_rule_group_last_duration_seconds": s.last_duration_s,
        "tocsin_rule_group_last_evaluation_timestamp_seconds": s.last_eval_ms / 1000,
        "tocsin_rule_group_interval_seconds": group.interval_ms / 1000,
        "tocsin_rule_group_rules": len(group.rules),
        "tocsin_rule_evaluations_total": s.evaluations,
        "tocsin_rule_evaluation_failures_total": s.failures,
        "tocsin_rule_group_iterations_total": s.iterations,
        "tocsin_rule_group_iterations_missed_total": s.missed,
    }[name])


def render_metrics(groups: list[Group], store_stats: dict[str, int]) -> str:
    """Per-group counters, the sample store's size, and the ALERTS series of the last evaluations."""
    out: list[str] = []
    for name, kind, help_text in _GROUP_METRICS:
        out.append(family_header(name, kind, help_text))
        for g in groups:
            value = _group_value(name, g, g.stats)
            out.append(f'{name}{{rule_group="{escape_label_value(g.key)}"}} {format_value(value)}\n')
    out.append(family_header("tocsin_rule_store_series", "gauge", "Series held by the rule sample store.")
               + f"tocsin_rule_store_series {store_stats['series']}\n")
    out.append(family_header("tocsin_rule_store_samples", "gauge", "Samples held by the rule sample store.")
               + f"tocsin_rule_store_samples {store_stats['samples']}\n")
    alerts: dict[str, list[str]] = {"ALERTS": [], "ALERTS_FOR_STATE": []}
    for g in groups:
        for rule in g.rules:
            if isinstance(rule, AlertingRule):
                for labels, value in rule.output:
                    name = dict(labels)["__name__"]
                    rest = tuple(p for p in labels if p[0] != "__name__")
                    alerts[name].append(f"{name}{format_labels(rest)} {format_value(value)}\n")
    for name, help_text in _ALERT_SERIES:
        if alerts[name]:
            out.append(family_header(name, "gauge", help_text))
            out += alerts[name]
    return "".join(out)


def active_alerts(groups: Iterable[Group]) -> list[dict[str, Any]]:
    """/api/v1/alerts: every pending or firing alert, with its group."""
    out = []
    for group in groups:
        for rule in group.rules:
            if isinstance(rule, AlertingRule):
                for a in list(rule.active.values()):
                    if a.state != INACTIVE:
                        out.append(_alert_view(group.key, rule, a))
    return out


def _alert_view(group_key: str, rule: AlertingRule, alert: Alert) -> dict[str, Any]:
    """One alert for the API, in Prometheus's terms: startsAt, endsAt (ValidUntil while firing), activeAt."""
    resolved = alert.state == INACTIVE
    ends = alert.resolved_at if alert.resolved_at else alert.valid_until
    return {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "state": alert.state.value,
        "startsAt": _rfc3339(alert.fired_at) if alert.fired_at else None,  # a pending alert has not started
        "endsAt": _rfc3339(ends) if ends else None,
        "activeAt": _rfc3339(alert.active_at),
        "value": go_float(alert.value),
        "generatorURL": rule.generator_url,
        "resolved": resolved,
        "status": "resolved" if resolved else alert.state.value,  # pending or firing
        "group": group_key,
    }


def _rfc3339(ms: int) -> str:
    """A rule's time (ms since the epoch, 0 for never) as Prometheus's API prints it."""
    return rfc3339_nano(datetime.fromtimestamp(ms / 1000, timezone.utc) if ms else None)
