"""Log: one line per alert in the log (and so in the journal), readable as it stands.

An operator reads `journalctl -u tocsin`: each alert of a notification is one line saying
what changed — `alert firing: TargetDown on api: Target api is down` — not a dump of the
notification. The structure (labels, annotations, group) goes to the JSON log only, as the
record's `json_fields`, where a log collector wants it.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Literal

from ...gofmt import rfc3339_millis
from ...logs import log_context
from ..alert import Alert
from ..notification import Notification
from .base import Receiver, ReceiverOptions

log = logging.getLogger("tocsin.notify.log")

MAX_LINES = 50  # a group of thousands of alerts is a few lines and a count, not a flood


class LogConfig(ReceiverOptions):
    level: Literal["info", "warning", "error"] = "warning"  # the level of a firing alert's line; resolved: info


def alert_line(alert: Alert) -> str:
    """`alert firing: NAME on TARGET: SUMMARY`, the parts an alert has."""
    text = f"alert {alert.status}: {alert.labels.get('alertname', '(no alertname)')}"
    if alert.labels.get("target"):
        text += f" on {alert.labels['target']}"
    summary = alert.annotations.get("summary") or alert.annotations.get("description")
    if summary:
        text += f": {' '.join(summary.split())}"
    return text


class LogReceiver(Receiver):
    kind = "log"
    config_model: ClassVar = LogConfig
    send_resolved_default = True
    config: LogConfig

    def payload(self, n: Notification) -> dict[str, Any]:
        return {"notification": n.key, "status": n.status, "group_key": n.group_key,
                "group_labels": n.group_labels, "firing": len(n.firing), "resolved": len(n.resolved),
                "alerts": [self._alert_fields(a) for a in n.alerts]}

    @staticmethod
    def _alert_fields(alert: Alert) -> dict[str, Any]:
        return {"status": alert.status, "labels": alert.labels, "annotations": alert.annotations,
                "startsAt": rfc3339_millis(alert.starts_at)}

    def deliver(self, n: Notification) -> None:
        firing_level = getattr(logging, self.config.level.upper())
        with log_context(receiver=self.name):
            for alert in n.alerts[:MAX_LINES]:
                level = logging.INFO if alert.status == "resolved" else firing_level
                log.log(level, "%s", alert_line(alert), extra={"receiver": self.name, "json_fields": {
                    "notification": n.key, "group_key": n.group_key, **self._alert_fields(alert)}})
            if len(n.alerts) > MAX_LINES:
                log.log(firing_level if n.firing else logging.INFO, "%d more alerts in notification %s (%s)",
                        len(n.alerts) - MAX_LINES, n.key, n.title(),
                        extra={"receiver": self.name, "json_fields": {"notification": n.key, "group_key": n.group_key}})
