"""Alertmanager: POST /api/v2/alerts to every URL, the way Prometheus does.

No grouping here (Alertmanager groups): every alert routed to this receiver is sent on its
own schedule. A firing alert is re-sent every `resend_delay` with endsAt = now + 4 × that
delay, so Alertmanager resolves it by itself if tocsin dies; a resolved alert is sent with
its endsAt and repeated for `resolved_retention`. Each URL is an independent peer with
its own outbox entries and circuit breaker.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

from pydantic import Field, field_validator

from ...fields import PositiveDuration
from ..notification import Notification
from .base import Receiver, ReceiverOptions


class AlertmanagerConfig(ReceiverOptions):
    urls: list[str] = Field(min_length=1)
    resend_delay: PositiveDuration = 60.0
    resolved_retention: PositiveDuration = 900.0

    @field_validator("urls")
    @classmethod
    def _http(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"expected an http:// or https:// URL, got {url!r}")
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
        valid_until = sent_at + timedelta(seconds=4 * self.config.resend_delay)
        out = []
        for alert in n.alerts:
            d = alert.to_dict()
            ends = d["endsAt"] if not alert.firing else _iso(valid_until)
            item = {"labels": d["labels"], "annotations": d["annotations"], "startsAt": d["startsAt"],
                    "endsAt": ends}
            if alert.generator_url:
                item["generatorURL"] = alert.generator_url
            out.append(item)
        return out

    def deliver(self, n: Notification) -> None:
        url = self.config.urls[n.target % len(self.config.urls)]
        self.post_json(f"{url}/api/v2/alerts", self.payload(n), n)


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
