"""Slack: an incoming-webhook message with one attachment, coloured by severity."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import SecretStr, model_validator

from ...fields import SecretFromFile
from ..notification import Notification
from .base import Receiver, ReceiverOptions

COLORS = {"critical": "danger", "error": "danger", "page": "danger", "warning": "warning",
          "info": "#439FE0", "none": "#439FE0"}


class SlackConfig(ReceiverOptions):
    alertmanager_names: ClassVar[dict[str, str]] = {"api_url": "webhook_url", "api_url_file": "webhook_url_file"}

    webhook_url: SecretStr | None = None
    webhook_url_file: SecretFromFile | None = None
    channel: str | None = None
    username: str | None = "tocsin"
    icon_emoji: str | None = None

    @model_validator(mode="after")
    def _url_given(self) -> "SlackConfig":
        if self.webhook_url is None and self.webhook_url_file is None:
            raise ValueError("give webhook_url or webhook_url_file (Alertmanager's api_url or api_url_file)")
        return self


class SlackReceiver(Receiver):
    kind = "slack"
    config_model: ClassVar = SlackConfig
    send_resolved_default = False
    config: SlackConfig

    @property
    def url(self) -> str:
        return self.config.secret("webhook_url") or ""

    @staticmethod
    def color(n: Notification) -> str:
        if n.status == "resolved":
            return "good"
        severities = {a.labels.get("severity", "").lower() for a in n.firing}
        for severity in ("critical", "error", "page", "warning", "info"):
            if severity in severities:
                return COLORS[severity]
        return "danger"

    def payload(self, n: Notification) -> dict[str, Any]:
        lines = []
        for alert in n.alerts:
            summary = alert.annotations.get("summary") or alert.annotations.get("description") or ""
            name = alert.labels.get("alertname", "alert")
            where = alert.labels.get("target") or alert.labels.get("instance") or ""
            lines.append(f"• [{alert.status}] *{name}*{' ' + where if where else ''}{': ' + summary if summary else ''}")
        fields = [{"title": k, "value": v, "short": True} for k, v in sorted(n.common_labels().items())]
        attachment = {"color": self.color(n), "title": n.title(), "text": "\n".join(lines),
                      "fallback": f"{n.title()} ({len(n.alerts)} alerts)", "fields": fields,
                      "mrkdwn_in": ["text"]}
        if n.external_url:
            attachment["title_link"] = n.external_url
        body: dict[str, Any] = {"text": n.title(), "attachments": [attachment]}
        for key in ("channel", "username", "icon_emoji"):
            value = getattr(self.config, key)
            if value:
                body[key] = value
        return body

    def deliver(self, n: Notification) -> None:
        self.post_json(self.url, self.payload(n), n)
