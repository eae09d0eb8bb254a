"""Which alerts go to the notifier, and when: Prometheus's sending rule, in one place.

A pending alert is never sent. A firing alert is sent when it starts firing and again every
`RESEND_DELAY_MS` while it fires; a resolution is sent at once, and again at the same pace
for as long as the resolved alert is kept (15 minutes). Each sent alert carries ValidUntil
(now + 4 × max(resend delay, evaluation interval)) as its endsAt, so a receiver that stops
hearing about a firing alert lets it expire by itself, exactly as Alertmanager does with
Prometheus.

What is sent is a `tocsin.notify.alert.Alert`, built here once from the rule's alert: labels (external labels added where the
alert has no such label), annotations, startsAt = when it fired, endsAt = when it resolved
or ValidUntil, the generator URL and the status.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from ..notify.alert import Alert as NotifyAlert
from .alerting import INACTIVE, PENDING, Alert, AlertingRule

RESEND_DELAY_MS = 60 * 1000


def _due(alert: Alert, ts: int) -> bool:
    if alert.state == PENDING:
        return False
    if alert.resolved_at > alert.last_sent_at or alert.last_sent_at == 0:  # 0: never sent
        return True
    return alert.last_sent_at + RESEND_DELAY_MS < ts


def alerts_due(rule: AlertingRule, ts: int, interval_ms: int) -> list[Alert]:
    """The rule's alerts to send after its evaluation at `ts`, as copies; marks them sent."""
    out = []
    for a in rule.active.values():
        if _due(a, ts):
            a.last_sent_at = ts
            a.valid_until = ts + 4 * max(RESEND_DELAY_MS, interval_ms)
            out.append(replace(a))
    return out


def _datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, timezone.utc)


def to_notify_alert(rule: AlertingRule, alert: Alert, external_labels: dict[str, str]) -> NotifyAlert:
    """What the notifier receives for `alert`: Prometheus's startsAt/endsAt (ValidUntil while firing)."""
    labels = dict(alert.labels)
    for k, v in external_labels.items():
        labels.setdefault(k, v)
    ends = alert.resolved_at or alert.valid_until
    return NotifyAlert(
        labels=labels,
        annotations=dict(alert.annotations),
        starts_at=_datetime(alert.fired_at) if alert.fired_at else datetime.now(timezone.utc),  # 0: never fired
        ends_at=_datetime(ends) if ends else None,
        generator_url=rule.generator_url,
        status="resolved" if alert.state == INACTIVE else "firing",
    )

