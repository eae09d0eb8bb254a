"""Log: the notification as one structured log record (and so in the journal)."""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Literal

from ...gofmt import rfc3339_millis
from ...logs import log_context
from ..notification import Notification
from .base import Receiver, ReceiverOptions

log = logging.getLogger("tocsin.notify.log")


class LogConfig(ReceiverOptions):
    level: Literal["info", "warning", "error"] = "warning"


class LogReceiver(Receiver):
    kind = "log"
    config_model: ClassVar = LogConfig
    send_resolved_default = True
    config: LogConfig

    def payload(self, n: Notification) -> dict[str, Any]:
        return {"notification": n.key, "status": n.status, "group_key": n.group_key,
                "group_labels": n.group_labels, "firing": len(n.firing), "resolved": len(n.resolved),
                "alerts": [{"status": a.status, "labels": a.labels, "annotations": a.annotations,
                            "startsAt": rfc3339_millis(a.starts_at)} for a in n.alerts]}

    def deliver(self, n: Notification) -> None:
        level = logging.INFO if n.status == "resolved" else getattr(logging, self.config.level.upper())
        with log_context(receiver=self.name):
            log.log(level, "alert notification: %s", n.title(), extra={"receiver": self.name, "fields": self.payload(n)})
