"""PagerDuty: Events API v2, trigger while the group fires, resolve when it resolves.

The dedup_key is Alertmanager's: the SHA-256 of the group key, so every notification of one
group (first, changes, repeats, resolution) updates the same PagerDuty incident, and an
incident Alertmanager opened is the one tocsin updates after a switch (same tree, same key).
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

from pydantic import ConfigDict, Field, SecretStr, model_validator

from ... import __version__
from ...fields import Model, SecretFromFile
from ...gofmt import rfc3339_millis
from ..notification import Notification
from .base import Receiver, ReceiverOptions

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
SEVERITIES = ("critical", "error", "warning", "info")


class PagerDutyConfig(ReceiverOptions):
    model_config = ConfigDict(**Model.model_config, populate_by_name=True)

    routing_key: SecretStr | None = None
    routing_key_file: SecretFromFile | None = None
    url: str = EVENTS_URL
    source: str = "tocsin"
    severity: str | None = None     # default: the alerts' `severity` label if valid, else "error"
    client: str = "tocsin"
    client_url: str | None = None
    component: str | None = None
    group: str | None = None
    class_: str | None = Field(default=None, alias="class")

    @model_validator(mode="before")
    @classmethod
    def _no_events_v1_key(cls, data: Any) -> Any:
        for key in ("service_key", "service_key_file"):
            if isinstance(data, dict) and key in data:
                raise ValueError(f"{key} is a key of PagerDuty's Events API v1; tocsin sends Events API v2 events: "
                                 "give the integration's routing_key (or routing_key_file)")
        return data

    @model_validator(mode="after")
    def _key_given(self) -> "PagerDutyConfig":
        if self.routing_key is None and self.routing_key_file is None:
            raise ValueError("give routing_key or routing_key_file")
        if self.severity is not None and self.severity not in SEVERITIES:
            raise ValueError(f"severity: expected one of {', '.join(SEVERITIES)}")
        return self


def dedup_key(group_key: str) -> str:
    return hashlib.sha256(group_key.encode()).hexdigest()


class PagerDutyReceiver(Receiver):
    kind = "pagerduty"
    config_model: ClassVar = PagerDutyConfig
    send_resolved_default = True
    config: PagerDutyConfig

    def _severity(self, n: Notification) -> str:
        if self.config.severity:
            return self.config.severity
        found = {a.labels.get("severity", "").lower() for a in n.firing}
        for severity in SEVERITIES:
            if severity in found:
                return severity
        return "error"

    def payload(self, n: Notification) -> dict[str, Any]:
        body: dict[str, Any] = {"routing_key": self.config.secret("routing_key"),
                                "event_action": "trigger" if n.status == "firing" else "resolve",
                                "dedup_key": dedup_key(n.group_key),
                                "client": self.config.client}
        if self.config.client_url or n.external_url:
            body["client_url"] = self.config.client_url or n.external_url
        if n.status == "firing":
            summary = n.title()
            common = n.common_annotations().get("summary")
            if common:
                summary += f": {common}"
            details = {"firing": len(n.firing), "resolved": len(n.resolved), "group_labels": n.group_labels,
                       "alerts": [{"labels": a.labels, "annotations": a.annotations, "status": a.status}
                                  for a in n.alerts[:20]]}
            payload = {"summary": summary[:1024], "source": self.config.source, "severity": self._severity(n),
                       "timestamp": rfc3339_millis(n.alerts[0].starts_at) if n.alerts else None,
                       "custom_details": details}
            for key, name in (("component", "component"), ("group", "group"), ("class", "class_")):
                value = getattr(self.config, name)
                if value:
                    payload[key] = value
            body["payload"] = {k: v for k, v in payload.items() if v is not None}
            links = [{"href": a.generator_url, "text": "source"} for a in n.alerts[:1] if a.generator_url]
            if links:
                body["links"] = links
        return body

    def deliver(self, n: Notification) -> None:
        self.post_json(self.config.url, self.payload(n), n,
                       {"User-Agent": f"tocsin/{__version__}"})
