"""A rule group: its rules evaluated in file order at one timestamp, and what a reload keeps."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

from .. import promql
from ..promql import STALE_NAN
from ..promql.labels import Labels
from .alerting import Alert, AlertingRule
from .files import GroupSpec, RuleSpec
from .recording import RecordingRule
from .rule import Rule
from .sending import alerts_due

log = logging.getLogger("tocsin.rules")


class Appender(Protocol):
    def add(self, labels: Labels, t_ms: int, value: float) -> None: ...


def make_rule(spec: RuleSpec, external_labels: dict[str, str] | None = None, external_url: str = "") -> Rule:
    if spec.kind == "alert":
        return AlertingRule(spec, external_labels, external_url)
    return RecordingRule(spec)


@dataclass
class GroupStats:
    """What tocsin_rule_group_* and tocsin_rule_evaluation* report; kept across reloads."""

    evaluations: int = 0
    failures: int = 0
    iterations: int = 0
    missed: int = 0
    last_duration_s: float = 0.0
    last_eval_ms: int = 0


class Group:
    """A rule group: rules run in file order, each seeing what earlier ones wrote."""

    def __init__(self, spec: GroupSpec, external_labels: dict[str, str] | None = None,
                 external_url: str = "") -> None:
        self.spec = spec
        self.rules: list[Rule] = [make_rule(r, external_labels, external_url) for r in spec.rules]
        self.interval_ms = int(round(spec.interval_s * 1000))
        self.stats = GroupStats()
        # Per rule, the series it wrote last time: those it stops writing get a stale marker.
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
            self.stats.evaluations += 1
            rule_started = time.perf_counter()
            try:
                vector = rule.eval(ts - offset, storage, self.spec.limit, step)
            except (promql.PromQLError, RecursionError, ValueError, ZeroDivisionError, OverflowError) as exc:
                rule.last_eval_ms, rule.last_duration_s = ts, time.perf_counter() - rule_started
                rule.last_error = str(exc)
                self.stats.failures += 1
                log.warning("evaluating rule failed: %s", exc, extra={"fields": {"rule": rule.name, "group": self.name}})
                continue
            rule.last_error = None
            rule.last_eval_ms, rule.last_duration_s = ts, time.perf_counter() - rule_started
            if isinstance(rule, AlertingRule):
                alerts = alerts_due(rule, ts, self.interval_ms)
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
        """End every series the group still owns: it is gone, or (after `copy_state_from`) those
        of its rules the new version no longer has."""
        for returned in self._returned:
            for labels in returned:
                appender.add(labels, ts, STALE_NAN)
            returned.clear()

    def copy_state_from(self, old: Group) -> None:
        """Take over the alerts and series of the old version's rules, matched as Prometheus does.

        A rule is the same rule if its name and labels are (`RuleSpec.reload_key`); with
        several such rules, the first matches the first, and so on. The old group keeps the
        series of its unmatched rules, for `stale_all`.
        """
        by_key: dict[tuple, list[int]] = {}
        for j, r in enumerate(old.rules):
            by_key.setdefault(r.spec.reload_key, []).append(j)
        for i, rule in enumerate(self.rules):
            matches = by_key.get(rule.spec.reload_key)
            if not matches:
                continue
            j = matches.pop(0)
            prev = old.rules[j]
            self._returned[i] = old._returned[j]
            old._returned[j] = set()
            rule.last_error = prev.last_error
            if isinstance(rule, AlertingRule) and isinstance(prev, AlertingRule):
                rule.active = prev.active
                rule.restored = prev.restored
                rule.to_restore, rule.restore_down_at = prev.to_restore, prev.restore_down_at
                rule.output = prev.output
        self.stats = old.stats
