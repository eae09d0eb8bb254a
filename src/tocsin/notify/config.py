"""The `alerting:` section: Alertmanager's routing tree, inhibit rules, receivers, delivery.

Keys are Alertmanager's where the meaning is the same (route, group_by, matchers, match,
match_re, continue, group_wait, group_interval, repeat_interval, mute_time_intervals,
active_time_intervals, time_intervals, inhibit_rules, send_resolved), read as strictly as
Alertmanager 0.25 reads them: `continue: 'true'` is a string, not a boolean. A receiver has
exactly one kind, given as the key (`webhook: {...}`). `delivery` tunes the durable outbox.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, StrictBool, model_validator

from ..fields import Duration, Model, PositiveDuration
from ..timeintervals import NamedTimeInterval, TimeInterval
from .matchers import check_matchers, compile_go_regexp, parse_matcher_list
from .receivers.alertmanager import AlertmanagerConfig
from .receivers.email import EmailConfig
from .receivers.log import LogConfig
from .receivers.pagerduty import PagerDutyConfig
from .receivers.slack import SlackConfig
from .receivers.webhook import WebhookConfig

_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
Matchers = Annotated[list[str], AfterValidator(check_matchers)]


def _yaml_string(value: Any) -> Any:
    """A YAML scalar where Alertmanager wants a string: yaml.v2 keeps the text as written.
    What was written is gone here, so `1` and `true` come back as that text (`yes` and `0x10`,
    rare in label values, would not)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int) else value


def _label_names(mapping: dict[str, str]) -> dict[str, str]:
    for name in mapping:
        if not _LABEL.match(name):
            raise ValueError(f"invalid label name {name!r}")
    return mapping


def _regexps(mapping: dict[str, str]) -> dict[str, str]:
    for value in mapping.values():
        compile_go_regexp(value)
    return mapping


LegacyValue = Annotated[str, BeforeValidator(_yaml_string)]
LegacyEqual = Annotated[dict[str, LegacyValue], AfterValidator(_label_names)]
LegacyRegexps = Annotated[dict[str, LegacyValue], AfterValidator(_regexps)]


def _group_by(names: list[str]) -> list[str]:
    """Alertmanager's checks; `[]` is kept as given and means "inherit" (see router.py)."""
    for name in names:
        if name != "..." and not _LABEL.match(name):
            raise ValueError(f"invalid label name {name!r} (or '...' for all labels)")
    labels = [name for name in names if name != "..."]
    if "..." in names and labels:
        raise ValueError("'...' groups by all labels and cannot be combined with names")
    if len(set(labels)) != len(labels):
        raise ValueError("duplicate label name")
    return names


class RouteConfig(Model):
    model_config = ConfigDict(**Model.model_config, populate_by_name=True)

    receiver: str | None = None
    matchers: Matchers = Field(default_factory=list)
    match: LegacyEqual = Field(default_factory=dict)  # Alertmanager's older form: label: value, each must equal
    match_re: LegacyRegexps = Field(default_factory=dict)  # older form: label: regexp, each must match (anchored)
    continue_: StrictBool = Field(default=False, alias="continue")
    group_by: Annotated[list[str], AfterValidator(_group_by)] | None = None
    group_wait: Duration | None = None
    group_interval: PositiveDuration | None = None
    repeat_interval: PositiveDuration | None = None
    mute_time_intervals: list[str] = Field(default_factory=list)  # names in time_intervals: send nothing while in one
    active_time_intervals: list[str] = Field(default_factory=list)  # names in time_intervals: send only while in one
    routes: list["RouteConfig"] = Field(default_factory=list)


class InhibitRule(Model):
    """Alertmanager's inhibit rule; no source (target) matcher at all matches every alert, as there."""

    name: str | None = None
    source_matchers: Matchers = Field(default_factory=list)
    target_matchers: Matchers = Field(default_factory=list)
    source_match: LegacyEqual = Field(default_factory=dict)  # older form of source_matchers (label: value)
    source_match_re: LegacyRegexps = Field(default_factory=dict)  # older form of source_matchers (label: regexp)
    target_match: LegacyEqual = Field(default_factory=dict)  # older form of target_matchers (label: value)
    target_match_re: LegacyRegexps = Field(default_factory=dict)  # older form of target_matchers (label: regexp)
    equal: list[str] = Field(default_factory=list)


# The receiver kinds Alertmanager also has, whose `<kind>_configs` lists tocsin reads.
ALERTMANAGER_LISTS = ("webhook", "slack", "pagerduty", "email")


class ReceiverConfig(Model):
    alertmanager_names: ClassVar[dict[str, str]] = {f"{kind}_configs": kind for kind in ALERTMANAGER_LISTS}

    name: Annotated[str, Field(min_length=1)]
    log: LogConfig | None = None
    webhook: WebhookConfig | None = None
    slack: SlackConfig | None = None
    pagerduty: PagerDutyConfig | None = None
    email: EmailConfig | None = None
    alertmanager: AlertmanagerConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _alertmanager_lists(cls, data: Any) -> Any:
        """Alertmanager's `slack_configs: [{...}]` (and webhook_, pagerduty_, email_): one item is
        tocsin's `slack: {...}`; more is several receivers here, each with its own name."""
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for kind in ALERTMANAGER_LISTS:
            items = out.pop(f"{kind}_configs", None)
            if items is None:
                continue
            if not isinstance(items, list) or len(items) != 1:
                raise ValueError(f"{kind}_configs: give one item (a receiver here has one destination; "
                                 "make one receiver per item and list them in a route with continue: true)")
            if kind in out:
                raise ValueError(f"give {kind} or {kind}_configs, not both")
            out[kind] = items[0]
        return out

    @model_validator(mode="after")
    def _one_kind(self) -> "ReceiverConfig":
        if len(self.kinds()) > 1:
            raise ValueError("give one receiver kind (log, webhook, slack, pagerduty, email or alertmanager)")
        return self

    def kinds(self) -> list[str]:
        return [k for k in ("log", "webhook", "slack", "pagerduty", "email", "alertmanager")
                if getattr(self, k) is not None]

    @property
    def kind(self) -> str | None:
        kinds = self.kinds()
        return kinds[0] if kinds else None  # no kind: a "null" receiver that drops everything

    @property
    def options(self) -> Any:
        return getattr(self, self.kind) if self.kind else None


class DeliveryConfig(Model):
    """Retry and circuit-breaker tuning of the outbox; the defaults suit a production pager."""

    initial_backoff: PositiveDuration = 1.0
    max_backoff: PositiveDuration = 300.0
    breaker_failures: int = Field(default=5, ge=1)
    breaker_cooldown: PositiveDuration = 60.0
    expire_after: PositiveDuration = 86400.0


class AlertingConfig(Model):
    route: RouteConfig
    receivers: list[ReceiverConfig] = Field(min_length=1)
    inhibit_rules: list[InhibitRule] = Field(default_factory=list)
    time_intervals: list[NamedTimeInterval] = Field(default_factory=list)  # named intervals routes refer to
    mute_time_intervals: list[NamedTimeInterval] = Field(default_factory=list)  # Alertmanager's older name
    resolve_timeout: PositiveDuration = 300.0    # a firing alert not re-submitted this long is resolved
    external_url: str | None = None
    delivery: DeliveryConfig = DeliveryConfig()

    @model_validator(mode="after")
    def _references(self) -> "AlertingConfig":
        names = [r.name for r in self.receivers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"receivers: duplicate receiver name {dupes[0]!r}")
        root = self.route
        if not root.receiver:
            raise ValueError("route.receiver: the root route needs a receiver")
        for key in ("matchers", "match", "match_re", "mute_time_intervals", "active_time_intervals"):
            if parse_matcher_list(root.matchers) if key == "matchers" else getattr(root, key):  # '' is none
                raise ValueError(f"route.{key}: the root route must not have {key.replace('_', ' ')}")
        if root.continue_:
            raise ValueError("route.continue: the root route cannot have continue")
        known = set(names)
        intervals = self.time_interval_table()

        def walk(route: RouteConfig, path: str) -> None:
            if route.receiver and route.receiver not in known:  # '' inherits, as in Alertmanager
                raise ValueError(f"{path}.receiver: undefined receiver {route.receiver!r}")
            for key in ("mute_time_intervals", "active_time_intervals"):
                for name in getattr(route, key):
                    if name not in intervals:
                        raise ValueError(f"{path}.{key}: undefined time interval {name!r}")
            for index, child in enumerate(route.routes):
                walk(child, f"{path}.routes[{index}]")

        walk(root, "route")
        return self

    def time_interval_table(self) -> dict[str, list[TimeInterval]]:
        """Every named time interval (both keys); a name given twice is an error."""
        table: dict[str, list[TimeInterval]] = {}
        for key in ("mute_time_intervals", "time_intervals"):
            for named in getattr(self, key):
                if named.name in table:
                    raise ValueError(f"{key}: time interval {named.name!r} is not unique")
                table[named.name] = named.time_intervals
        return table

    def receiver(self, name: str) -> ReceiverConfig | None:
        return next((r for r in self.receivers if r.name == name), None)
