"""Alertmanager: POST /api/v2/alerts to every URL, the way Prometheus does.

No grouping here (Alertmanager groups) and no timers: the rule engine already decides what
Prometheus would send to an Alertmanager and when (firing alerts every resend delay with
endsAt = their valid-until, so Alertmanager resolves them by itself if tocsin dies;
resolved ones with their endsAt, repeated for a while), and this receiver forwards each
submitted batch as it is. Each URL is an independent peer with its own outbox entries and
circuit breaker.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

from pydantic import Field, field_validator

from ...gofmt import rfc3339_millis
from ...redaction import display_url
from ..notification import Notification
from .base import Receiver, ReceiverOptions

# endsAt for a firing alert submitted without one (a test notification, or one stored by an
# older version): Prometheus's valid-until, 4 x its default resend delay of 1 min.
DEFAULT_VALIDITY = timedelta(minutes=4)


class AlertmanagerConfig(ReceiverOptions):
    urls: list[str] = Field(min_length=1)

    @field_validator("urls")
    @classmethod
    def _http(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"expected an http:// or https:// URL, got {display_url(url)!r}")
        return [url.rstrip("/") for url in urls]


class AlertmanagerReceiver(Receiver):
    kind = "alertmanager"
    config_model: ClassVar = AlertmanagerConfig
    send_resolved_default = True
    grouped = False
    config: AlertmanagerConfig

    def targets(self) -> int:
        return len(self.config.urls)

    def payload(self, n: Notification) -> list[dict[str, Any]]:
        sent_at = datetime.fromtimestamp(n.created_at or datetime.now(timezone.utc).timestamp(), timezone.utc)
        out = []
        for alert in n.alerts:
            d = alert.to_dict()
            ends = d["endsAt"] if not alert.firing else rfc3339_millis(alert.ends_at or sent_at + DEFAULT_VALIDITY)
            item = {"labels": d["labels"], "annotations": d["annotations"], "startsAt": d["startsAt"],
                    "endsAt": ends}
            if alert.generator_url:
                item["generatorURL"] = alert.generator_url
            out.append(item)
        return out

    def deliver(self, n: Notification) -> None:
        url = self.config.urls[n.target % len(self.config.urls)]
        self.post_json(f"{url}/api/v2/alerts", self.payload(n), n)
