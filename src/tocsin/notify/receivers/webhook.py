"""Webhook: Alertmanager's webhook payload, version 4, POSTed as JSON."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, SecretStr, model_validator

from ...fields import SecretFromFile
from ..notification import Notification
from .base import Receiver, ReceiverOptions


class WebhookConfig(ReceiverOptions):
    url: SecretStr | None = None
    url_file: SecretFromFile | None = None
    max_alerts: int = Field(default=0, ge=0)   # 0 = all
    headers: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _url_given(self) -> "WebhookConfig":
        if self.url is None and self.url_file is None:
            raise ValueError("give url or url_file")
        return self


class WebhookReceiver(Receiver):
    kind = "webhook"
    config_model: ClassVar = WebhookConfig
    send_resolved_default = True
    config: WebhookConfig

    @property
    def url(self) -> str:
        return self.config.secret("url") or ""

    def payload(self, n: Notification) -> dict[str, Any]:
        alerts = [a.to_dict() for a in n.alerts]
        truncated = 0
        if self.config.max_alerts and len(alerts) > self.config.max_alerts:
            truncated = len(alerts) - self.config.max_alerts
            alerts = alerts[:self.config.max_alerts]
        return {"version": "4", "groupKey": n.group_key, "truncatedAlerts": truncated, "status": n.status,
                "receiver": n.receiver, "groupLabels": dict(n.group_labels), "commonLabels": n.common_labels(),
                "commonAnnotations": n.common_annotations(), "externalURL": n.external_url,
                "notification_reason": n.reason, "alerts": alerts}

    def deliver(self, n: Notification) -> None:
        self.post_json(self.url, self.payload(n), n, self.config.headers)
