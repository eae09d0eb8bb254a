"""The `alerting:` section: Alertmanager's routing tree, inhibit rules, receivers, delivery.

Keys are Alertmanager's where the meaning is the same (route, group_by, matchers, continue,
group_wait, group_interval, repeat_interval, inhibit_rules, send_resolved); a receiver has
exactly one kind, given as the key (`webhook: {...}`). `delivery` tunes the durable outbox.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from ..fields import Duration, Model, PositiveDuration
from .matchers import check_matchers
from .receivers.alertmanager import AlertmanagerConfig
from .receivers.email import EmailConfig
from .receivers.log import LogConfig
from .receivers.pagerduty import PagerDutyConfig
from .receivers.slack import SlackConfig
from .receivers.webhook import WebhookConfig

_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
Matchers = Annotated[list[str], AfterValidator(check_matchers)]


def _group_by(names: list[str]) -> list[str]:
    for name in names:
        if name != "..." and not _LABEL.match(name):
            raise ValueError(f"invalid label name {name!r} (or '...' for all labels)")
    if "..." in names and len(names) > 1:
        raise ValueError("'...' groups by all labels and cannot be combined with names")
    if len(set(names)) != len(names):
        raise ValueError("duplicate label name")
    return names


class RouteConfig(Model):
    model_config = ConfigDict(**Model.model_config, populate_by_name=True)

    receiver: str | None = None
    matchers: Matchers = Field(default_factory=list)
    continue_: bool = Field(default=False, alias="continue")
    group_by: Annotated[list[str], AfterValidator(_group_by)] | None = None
    group_wait: Duration | None = None
    group_interval: PositiveDuration | None = None
    repeat_interval: PositiveDuration | None = None
    routes: list["RouteConfig"] = Field(default_factory=list)


class InhibitRule(Model):
    name: str | None = None
    source_matchers: Matchers = Field(min_length=1)
    target_matchers: Matchers = Field(min_length=1)
    equal: list[str] = Field(default_factory=list)


class ReceiverConfig(Model):
    name: Annotated[str, Field(min_length=1)]
    log: LogConfig | None = None
    webhook: WebhookConfig | None = None
    slack: SlackConfig | None = None
    pagerduty: PagerDutyConfig | None = None
    email: EmailConfig | None = None
    alertmanager: AlertmanagerConfig | None = None

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
    resolve_timeout: PositiveDuration = 300.0    # a firing alert not re-submitted this long is resolved
    external_url: str | None = None
    delivery: DeliveryConfig = DeliveryConfig()

    @model_validator(mode="after")
    def _references(self) -> "AlertingConfig":
        names = [r.name for r in self.receivers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"receivers: duplicate receiver name {dupes[0]!r}")
        if self.route.receiver is None:
            raise ValueError("route.receiver: the root route needs a receiver")
        if self.route.matchers:
            raise ValueError("route.matchers: the root route must not have matchers")
        known = set(names)

        def walk(route: RouteConfig, path: str) -> None:
            if route.receiver is not None and route.receiver not in known:
                raise ValueError(f"{path}.receiver: undefined receiver {route.receiver!r}")
            for index, child in enumerate(route.routes):
                walk(child, f"{path}.routes[{index}]")

        walk(self.route, "route")
        return self

    def receiver(self, name: str) -> ReceiverConfig | None:
        return next((r for r in self.receivers if r.name == name), None)
