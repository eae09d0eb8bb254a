"""The alert as the rule engine hands it over, Prometheus-style.

Identity is the label set: two alerts with the same labels are the same alert, whatever
their annotations say, so the fingerprint hashes the sorted labels and nothing else.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Literal

from ..gofmt import rfc3339_millis

Status = Literal["firing", "resolved"]


def fingerprint(labels: dict[str, str]) -> str:
    """A stable 16-hex-digit hash of a label set (order-independent)."""
    h = hashlib.sha256()
    for name in sorted(labels):
        h.update(name.encode())
        h.update(b"\xff")
        h.update(str(labels[name]).encode())
        h.update(b"\xff")
    return h.hexdigest()[:16]


def parse_rfc3339(text: str | None) -> datetime | None:
    if not text or text.startswith("0001-01-01"):
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Alert:
    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    starts_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    ends_at: datetime | None = None
    generator_url: str = ""
    status: Status = "firing"

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)

    @property
    def firing(self) -> bool:
        return self.status == "firing"

    def with_labels(self, extra: dict[str, str]) -> "Alert":
        """Add labels the alert does not already have (external labels never override)."""
        if not extra or all(k in self.labels for k in extra):
            return self
        return replace(self, labels={**extra, **self.labels})

    def resolved(self, at: datetime) -> "Alert":
        return replace(self, status="resolved", ends_at=self.ends_at or at)

    def to_dict(self) -> dict[str, Any]:
        """The alert as Alertmanager's webhook payload shows it."""
        return {"status": self.status, "labels": dict(self.labels), "annotations": dict(self.annotations),
                "startsAt": rfc3339_millis(self.starts_at), "endsAt": rfc3339_millis(self.ends_at if not self.firing else None),
                "generatorURL": self.generator_url, "fingerprint": self.fingerprint}

    def to_record(self) -> dict[str, Any]:
        """The alert as the outbox stores it: `to_dict()`, with a firing alert's endsAt too.

        A firing alert's endsAt is the valid-until the rule engine gave it: the webhook
        payload hides it (as Alertmanager's does), an Alertmanager peer is sent it, so it
        must survive a restart. `from_dict()` reads both forms."""
        return {**self.to_dict(), "endsAt": rfc3339_millis(self.ends_at)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Alert":
        return cls(labels=dict(data["labels"]), annotations=dict(data.get("annotations") or {}),
                   starts_at=parse_rfc3339(data.get("startsAt")) or datetime.now(timezone.utc),
                   ends_at=parse_rfc3339(data.get("endsAt")), generator_url=data.get("generatorURL", ""),
                   status=data.get("status", "firing"))
