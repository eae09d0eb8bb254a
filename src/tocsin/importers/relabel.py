"""Prometheus's target relabelling, for the static targets of a scrape job being imported.

A blackbox scrape job says what to probe through `relabel_configs`: usually `__address__`
copied to `__param_target`, that copied to `instance`, and `__address__` pointed at the
exporter. Rather than recognising that one spelling, the importer applies the job's rules
as Prometheus would (the actions that make sense for static targets), so variants — a
module taken from a label, a name rewritten, a target dropped — come out right too. An
action that cannot be applied here is reported, never skipped silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import re2

from ..gofmt import expand

SUPPORTED = ("replace", "keep", "drop", "labelmap", "labeldrop", "labelkeep", "lowercase", "uppercase")


class RelabelError(ValueError):
    """A rule this importer cannot apply (an action such as hashmod, or a bad regex)."""


@dataclass(frozen=True)
class Rule:
    action: str
    source_labels: tuple[str, ...]
    separator: str
    regex: Any  # compiled, anchored as Prometheus anchors it
    target_label: str
    replacement: str

    @classmethod
    def parse(cls, raw: Any) -> "Rule":
        if not isinstance(raw, dict):
            raise RelabelError(f"a relabel rule is a mapping, not {raw!r}")
        action = str(raw.get("action", "replace")).lower()
        if action not in SUPPORTED:
            raise RelabelError(f"action {action!r} cannot be applied to static targets by the importer")
        pattern = str(raw.get("regex", "(.*)"))
        try:
            regex = re2.compile(f"^(?:{pattern})$")
        except re2.error as exc:
            raise RelabelError(f"regex {pattern!r}: {exc}") from None
        return cls(action, tuple(str(s) for s in raw.get("source_labels") or ()), str(raw.get("separator", ";")),
                   regex, str(raw.get("target_label", "")), str(raw.get("replacement", "$1")))


def relabel(labels: dict[str, str], rules: list[Rule]) -> dict[str, str] | None:
    """The labels after `rules`, or None when a keep/drop rule drops the target."""
    labels = dict(labels)
    for rule in rules:
        value = rule.separator.join(labels.get(name, "") for name in rule.source_labels)
        if rule.action == "replace":
            match = rule.regex.search(value)
            if match is None:
                continue
            target = expand(rule.target_label, match)
            result = expand(rule.replacement, match)
            if result:
                labels[target] = result
            else:
                labels.pop(target, None)
        elif rule.action in ("lowercase", "uppercase"):
            labels[rule.target_label] = value.lower() if rule.action == "lowercase" else value.upper()
        elif rule.action == "keep":
            if rule.regex.search(value) is None:
                return None
        elif rule.action == "drop":
            if rule.regex.search(value) is not None:
                return None
        elif rule.action == "labelmap":
            for name, label_value in list(labels.items()):
                match = rule.regex.search(name)
                if match is not None:
                    labels[expand(rule.replacement, match)] = label_value
        elif rule.action == "labeldrop":
            labels = {k: v for k, v in labels.items() if rule.regex.search(k) is None}
        elif rule.action == "labelkeep":
            labels = {k: v for k, v in labels.items() if rule.regex.search(k) is not None}
    return labels
