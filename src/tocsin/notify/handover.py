"""What a reload owes the receivers: the resolution of alerts it stops routing to them.

A receiver that was told an alert is firing keeps its page open until it is told otherwise.
When a reload removes the `alerting` section, a receiver, or a route, or changes grouping,
nothing will ever again send that group's resolution to that receiver: the new routing tree
does not lead there. Waiting for resolve_timeout does not help either (the new notifier does
not know the group). So the old notifier, before it stops, resolves at each receiver every
alert it notified as firing that the new tree does not route to the same receiver and group,
and commits those notifications to its outbox at once: a kill right after the reload loses
none of them. Alerts already resolved but not yet notified are sent too: nobody else will.

Alertmanager peers are told the same way: the alerts forwarded to a peer that the new tree
does not route to it are forwarded once more, resolved.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone

from .alert import Alert
from .config import AlertingConfig
from .dispatcher import Dispatcher
from .notification import Notification
from .outbox import LogEntry
from .router import build

log = logging.getLogger("tocsin.notify")

Routes = Callable[[dict[str, str]], set[tuple[str, str]]]


def routes_of(successor: AlertingConfig | None) -> Routes:
    """labels -> the (receiver, group key) pairs the successor's routing tree sends them to."""
    if successor is None:
        return lambda _labels: set()
    root, _ = build(successor)
    return lambda labels: {(r.receiver, r.group_key(r.group_labels(labels))) for r in root.match(labels)}


def resolve_unrouted(dispatcher: Dispatcher, successor: AlertingConfig | None) -> list[Notification]:
    """Commit the resolutions the successor configuration would never send; return them."""
    routed = routes_of(successor)
    now = time.time()
    at = datetime.now(timezone.utc)
    out: list[Notification] = []
    log_updates: dict[tuple[str, str], LogEntry] = {}
    for name, key, group_labels, alerts, entry in dispatcher.notified_groups():
        receiver = dispatcher.receivers.get(name)
        if receiver is None:
            continue
        stays = [a for a in alerts if a.firing and (name, key) in routed(a.labels)]
        staying = {a.fingerprint for a in stays}
        gone = [_resolved(a, at) for a in alerts if a.fingerprint in entry.firing and a.fingerprint not in staying]
        if not gone:
            continue
        send = stays + (gone if receiver.send_resolved else [])
        if send:
            out.append(Notification(key=str(uuid.uuid4()), receiver=name, group_key=key,
                                    status="firing" if stays else "resolved", alerts=send,
                                    group_labels=group_labels, external_url=dispatcher.external_url,
                                    reason="reload", created_at=now))
        log_updates[(name, key)] = LogEntry(frozenset(a.fingerprint for a in stays),
                                            entry.resolved | {a.fingerprint for a in gone}, now)
        log.info("resolving at the receiver the alerts the new configuration no longer routes there",
                 extra={"fields": {"receiver": name, "group_key": key, "alerts": len(gone)}})
    out += _forward_resolved(dispatcher, routed, at, now)
    if out or log_updates:
        dispatcher.outbox.commit(out, log_updates)
    return out


def _forward_resolved(dispatcher: Dispatcher, routed: Routes, at: datetime, now: float) -> list[Notification]:
    batches: dict[str, list[Alert]] = {}
    for alert, _, receivers in dispatcher.tracked():
        names = {name for name, _ in routed(alert.labels)}
        for name in receivers - names:
            receiver = dispatcher.receivers.get(name)
            if receiver is not None and not receiver.grouped and alert.firing:
                batches.setdefault(name, []).append(_resolved(alert, at))
    out = []
    for name, alerts in batches.items():
        receiver = dispatcher.receivers[name]
        assert receiver is not None
        for target in range(receiver.targets()):
            out.append(Notification(key=str(uuid.uuid4()), receiver=name, group_key="{}", status="resolved",
                                    alerts=alerts, external_url=dispatcher.external_url, reason="reload",
                                    target=target, created_at=now))
    return out


def _resolved(alert: Alert, at: datetime) -> Alert:
    return alert.resolved(at) if alert.firing else alert
