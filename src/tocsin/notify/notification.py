"""The notification: what the dispatcher commits to the outbox and a receiver delivers.

Receivers depend on this module, never the reverse: the dispatcher and the outbox speak
of notifications without knowing which kinds of receiver exist.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .alert import Alert


@dataclass
class Notification:
    """One alert group (or batch) for one receiver, as stored in the outbox.

    It is receiver-neutral: the receiver turns it into its payload when delivering, so a
    notification written before a restart is delivered by the receiver's current code.
    """

    key: str                      # idempotency key: the same on every retry and after a restart
    receiver: str
    group_key: str
    status: str                   # firing | resolved
    alerts: list[Alert]
    group_labels: dict[str, str] = field(default_factory=dict)
    external_url: str = ""
    reason: str = ""
    target: int = 0               # which URL, for kinds that post to several peers independently
    created_at: float = 0.0

    @property
    def firing(self) -> list[Alert]:
        return [a for a in self.alerts if a.firing]

    @property
    def resolved(self) -> list[Alert]:
        return [a for a in self.alerts if not a.firing]

    def common_labels(self) -> dict[str, str]:
        return _common([a.labels for a in self.alerts])

    def common_annotations(self) -> dict[str, str]:
        return _common([a.annotations for a in self.alerts])

    def title(self) -> str:
        """`[FIRING:3] HighLatency api` - Alertmanager's default subject line."""
        values = " ".join(self.group_labels[k] for k in sorted(self.group_labels))
        count = f":{len(self.firing)}" if self.status == "firing" else ""
        return f"[{self.status.upper()}{count}] {values}".rstrip()

    def to_json(self) -> str:
        return json.dumps({"key": self.key, "receiver": self.receiver, "group_key": self.group_key,
                           "status": self.status, "alerts": [a.to_record() for a in self.alerts],
                           "group_labels": self.group_labels, "external_url": self.external_url,
                           "reason": self.reason, "target": self.target, "created_at": self.created_at},
                          sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Notification":
        d = json.loads(text)
        return cls(key=d["key"], receiver=d["receiver"], group_key=d["group_key"], status=d["status"],
                   alerts=[Alert.from_dict(a) for a in d["alerts"]], group_labels=d.get("group_labels") or {},
                   external_url=d.get("external_url", ""), reason=d.get("reason", ""),
                   target=d.get("target", 0), created_at=d.get("created_at", 0.0))


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    common = dict(maps[0])
    for m in maps[1:]:
        for k in list(common):
            if m.get(k) != common[k]:
                del common[k]
    return common
