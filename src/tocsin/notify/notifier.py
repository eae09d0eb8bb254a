"""The Notifier: alerts in, notifications out, through groups and a durable outbox.

Threads: `submit()` only updates in-memory state under a lock and wakes the dispatcher; the
dispatcher thread flushes due groups (Alertmanager's timers and dedup rules) into the
outbox; one worker thread per receiver channel delivers in order, paced by its circuit
breaker. Rule evaluation therefore never waits for a receiver, nor for SQLite.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..errors import NotificationError
from ..logs import log_context
from .alert import Alert, rfc3339
from .breaker import CircuitBreaker
from .config import AlertingConfig
from .metrics import NotifyMetrics
from .notification import Notification
from .outbox import LogEntry, Outbox, channel_of
from .receivers import KINDS, Receiver
from .router import Route, build

log = logging.getLogger("tocsin.notify")
RESOLVED_RETENTION = 900.0       # how long a resolved alert stays in the active view
# The longest the dispatcher and an idle delivery lane sleep without being woken: a safety
# net only. Each wakes when there is work (submit(), a committed notification) or when the
# next flush, resend or expiry is due; an idle daemon does not wake them every second.
IDLE_WAIT = 60.0
RETRY_AFTER_ERROR = 1.0
NFLOG_RETENTION = 5 * 86400.0    # Alertmanager keeps its notification log 5 days


def build_receivers(config: AlertingConfig) -> dict[str, Receiver | None]:
    """name -> receiver instance (None for a receiver without a kind, which drops alerts)."""
    return {r.name: (KINDS[r.kind](r.name, r.options) if r.kind else None) for r in config.receivers}


@dataclass
class _Tracked:
    alert: Alert
    seen: float
    version: int
    receivers: set[str] = field(default_factory=set)


@dataclass
class _Group:
    id: str
    key: str
    route: Route
    labels: dict[str, str]
    next_flush: float
    alerts: dict[str, tuple[Alert, int]] = field(default_factory=dict)
    flushed: bool = False


class _Channel:
    """One delivery lane: a receiver (or one URL of it), in-order, with its own breaker."""

    def __init__(self, key: str, receiver: str, breaker: CircuitBreaker) -> None:
        self.key = key
        self.receiver = receiver
        self.breaker = breaker
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None


class Notifier:
    """Route, group, persist and deliver alert notifications.

    `submit()` is called by the rule engine after every evaluation with the alerts firing
    now and those that just resolved. Call `start()` once (it replays the outbox) and
    `stop()` on shutdown; build a new Notifier on reload (pass the same `metrics`).
    """

    def __init__(self, config: AlertingConfig, *, state_dir: str, external_labels: dict[str, str] | None = None,
                 metrics: NotifyMetrics | None = None, registry: Any = None, external_url: str | None = None,
                 max_sleep: float = IDLE_WAIT) -> None:
        self.config = config
        self.external_labels = dict(external_labels or {})
        self.external_url = config.external_url or external_url or ""
        self.metrics = metrics or NotifyMetrics(registry)
        self.root, self.inhibitor = build(config)
        self.receivers = build_receivers(config)
        self.outbox = Outbox(state_dir)
        self._max_sleep = max_sleep
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._alerts: dict[str, _Tracked] = {}
        self._groups: dict[str, _Group] = {}
        self._to_forward: list[Notification] = []  # batches for Alertmanager peers, not yet committed
        self._submitted = False                     # set by submit(), cleared by the dispatcher
        self._nflog: dict[tuple[str, str], LogEntry] = {}
        self._version = 0
        self._threads: list[threading.Thread] = []
        d = config.delivery
        self._channels: dict[str, _Channel] = {}
        for name, receiver in self.receivers.items():
            if receiver is None:
                continue
            for target in range(receiver.targets()):
                key = channel_of(name, target)
                self._channels[key] = _Channel(key, name, CircuitBreaker(
                    d.breaker_failures, d.breaker_cooldown, d.initial_backoff, d.max_backoff))
            self.metrics.circuit_open.labels(name).set(0)
            self.metrics.sent.labels(name)
            self.metrics.failed.labels(name)
            self.metrics.expired.labels(name)
        self.metrics.outbox_length.set_function(self._safe(self.outbox.length))
        self.metrics.outbox_oldest.set_function(self._safe(self.outbox.oldest_age))

    @staticmethod
    def _safe(fn):
        def call() -> float:
            try:
                return float(fn())
            except Exception:  # noqa: BLE001 - a closed database after stop() reads as 0
                return 0.0
        return call

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Load the notification log, replay the outbox, start the dispatcher and the workers."""
        self._nflog = self.outbox.load_log()
        self.outbox.prune_log(time.time() - NFLOG_RETENTION)
        pending = self.outbox.channels()
        for key, count in pending.items():
            if key not in self._channels:
                self._drop_channel(key, count)
        if pending:
            log.info("replaying the notification outbox", extra={"fields": {"pending": sum(pending.values())}})
        self._spawn(self._dispatch_loop, "tocsin-notify-dispatch")
        for channel in self._channels.values():
            channel.thread = self._spawn(lambda c=channel: self._deliver_loop(c), f"tocsin-notify-{channel.key}")

    def _spawn(self, target, name: str) -> threading.Thread:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)
        return thread

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the threads; undelivered notifications stay in the outbox for the next start."""
        self._stopping.set()
        with self._cv:
            self._cv.notify_all()
        for channel in self._channels.values():
            channel.wake.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if not any(t.is_alive() for t in self._threads):
            self.outbox.close()

    # ------------------------------------------------------------------ input

    def submit(self, alerts: list[Alert]) -> None:
        """Take the current firing alerts and the just-resolved ones; never blocks on delivery."""
        now = time.time()
        with self._cv:
            batches: dict[str, dict[str, Alert]] = {}
            for alert in alerts:
                alert = alert.with_labels(self.external_labels)
                if not alert.firing and alert.ends_at is None:
                    alert = alert.resolved(datetime.now(timezone.utc))
                for peer in self._ingest(alert, now):
                    batches.setdefault(peer, {})[alert.fingerprint] = alert
            for name, batch in batches.items():
                self._forward(name, list(batch.values()), now)
            self._submitted = True
            self._cv.notify_all()

    def _ingest(self, alert: Alert, now: float) -> list[str]:
        """Track the alert and put it in the groups of its routes; return the routed receivers
        that do not group (Alertmanager peers), which get the alert as submitted instead."""
        fp = alert.fingerprint
        self._version += 1
        tracked = self._alerts.get(fp)
        if tracked is None:
            tracked = self._alerts[fp] = _Tracked(alert, now, self._version)
        else:
            if tracked.alert.firing and alert.firing and tracked.alert.starts_at < alert.starts_at:
                alert = Alert(alert.labels, alert.annotations, tracked.alert.starts_at, None,
                              alert.generator_url, "firing")
            tracked.alert, tracked.seen, tracked.version = alert, now, self._version
        peers = []
        for route in self.root.match(alert.labels):
            receiver = self.receivers.get(route.receiver)
            tracked.receivers.add(route.receiver)
            if receiver is None:
                continue
            if not receiver.grouped:
                peers.append(route.receiver)
                continue
            labels = route.group_labels(alert.labels)
            key = route.group_key(labels)
            gid = f"{route.id}:{key}"
            group = self._groups.get(gid)
            if group is None:
                group = self._groups[gid] = _Group(gid, key, route, labels, now + route.group_wait)
            if not group.flushed and alert.starts_at.timestamp() + route.group_wait < now:
                group.next_flush = min(group.next_flush, now)  # an old alert (restart): no need to wait
            group.alerts[fp] = (alert, self._version)
        return peers

    def _forward(self, name: str, alerts: list[Alert], now: float) -> None:
        """One batch per submit for each URL of an Alertmanager peer: what the rule engine sent."""
        receiver = self.receivers[name]
        assert receiver is not None
        status = "firing" if any(a.firing for a in alerts) else "resolved"
        for target in range(receiver.targets()):
            self._to_forward.append(Notification(
                key=str(uuid.uuid4()), receiver=name, group_key="{}", status=status, alerts=alerts,
                external_url=self.external_url, reason="forward", target=target, created_at=now))

    # ------------------------------------------------------------------ dispatch

    def _dispatch_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                wait = self._dispatch_once()
            except Exception:  # noqa: BLE001 - the dispatcher must outlive any single bug
                log.exception("notification dispatch failed; retrying")
                wait = RETRY_AFTER_ERROR
            with self._cv:
                if not self._stopping.is_set() and not self._submitted:
                    self._cv.wait(max(0.005, wait))

    def _dispatch_once(self) -> float:
        now = time.time()
        log_updates: dict[tuple[str, str], LogEntry] = {}
        cleanup: list[tuple[_Group, list[tuple[str, int]]]] = []
        with self._lock:
            self._submitted = False
            notifications, self._to_forward = self._to_forward, []
            self._expire_alerts(now)
            due = [g for g in self._groups.values() if g.next_flush <= now]
            if due:
                muted = self.inhibitor.muter([t.alert.labels for t in self._alerts.values() if t.alert.firing])
                for group in due:
                    cleanup.append((group, self._flush(group, now, muted, notifications, log_updates)))
            next_due = self._next_due()
        if notifications or log_updates:
            self.outbox.commit(notifications, log_updates)  # outside the lock: submit() never waits on disk
        with self._lock:
            self._nflog.update(log_updates)
            for group, resolved in cleanup:
                for fp, version in resolved:
                    current = group.alerts.get(fp)
                    if current is not None and current[1] == version:
                        del group.alerts[fp]
                if not group.alerts:
                    self._groups.pop(group.id, None)
        for n in notifications:
            channel = self._channels.get(channel_of(n.receiver, n.target))
            if channel is not None:
                channel.wake.set()
        return min(self._max_sleep, max(0.0, next_due - time.time()))

    def _next_due(self) -> float:
        """When the dispatcher has work without being told: the next group flush, or alert to
        expire or forget (Unix time; inf if none)."""
        times = [g.next_flush for g in self._groups.values()]
        for tracked in self._alerts.values():
            times.append(tracked.seen + (self.config.resolve_timeout if tracked.alert.firing else RESOLVED_RETENTION))
        return min(times, default=float("inf"))

    def _expire_alerts(self, now: float) -> None:
        """Resolve firing alerts nobody re-submitted for resolve_timeout; forget old resolved ones.

        Alertmanager peers are not told: they get only what is submitted, and the valid-until
        they were sent resolves the alert there by itself."""
        for fp, tracked in list(self._alerts.items()):
            if tracked.alert.firing and now - tracked.seen > self.config.resolve_timeout:
                log.warning("alert not re-submitted within resolve_timeout; resolving it",
                            extra={"fields": {"alertname": tracked.alert.labels.get("alertname", ""), "fingerprint": fp}})
                self._ingest(tracked.alert.resolved(datetime.now(timezone.utc)), now)
            elif not tracked.alert.firing and now - tracked.seen > RESOLVED_RETENTION:
                del self._alerts[fp]

    def _flush(self, group: _Group, now: float, muted, out: list[Notification],
               log_updates: dict[tuple[str, str], LogEntry]) -> list[tuple[str, int]]:
        """Alertmanager's flush + dedup stage for one group; returns resolved alerts to forget."""
        route = group.route
        receiver = self.receivers[route.receiver]
        assert receiver is not None
        group.next_flush = now + route.group_interval
        group.flushed = True
        alerts = sorted((a for a, _ in group.alerts.values() if not (a.firing and muted(a.labels))),
                        key=lambda a: (a.starts_at, a.fingerprint))
        firing = frozenset(a.fingerprint for a in alerts if a.firing)
        resolved = frozenset(a.fingerprint for a in alerts if not a.firing)
        log_key = (route.receiver, group.key)
        entry = self._nflog.get(log_key)
        reason = _needs_update(entry, firing, resolved, receiver.send_resolved, route.repeat_interval, now)
        if reason:
            send = alerts if receiver.send_resolved else [a for a in alerts if a.firing]
            if send:
                out.append(Notification(key=str(uuid.uuid4()), receiver=route.receiver, group_key=group.key,
                                        status="firing" if firing else "resolved", alerts=send,
                                        group_labels=dict(group.labels), external_url=self.external_url,
                                        reason=reason, created_at=now))
            log_updates[log_key] = LogEntry(firing, resolved, now)
        return [(fp, v) for fp, (a, v) in group.alerts.items() if not a.firing]

    # ------------------------------------------------------------------ delivery

    def _drop_channel(self, key: str, count: int) -> None:
        receiver = key.rpartition("#")[0]
        while (pending := self.outbox.head(key)) is not None:
            self.outbox.delete(pending.id)
            self.metrics.expired.labels(receiver).inc()
        log.error("dropped undelivered notifications: their receiver is no longer configured",
                  extra={"fields": {"receiver": receiver, "count": count}})

    def _deliver_loop(self, channel: _Channel) -> None:
        expire_after = self.config.delivery.expire_after
        receiver = self.receivers[channel.receiver]
        assert receiver is not None
        while not self._stopping.is_set():
            channel.wake.clear()
            try:
                pending = self.outbox.head(channel.key)
            except Exception:  # noqa: BLE001 - e.g. the database closed under us at stop()
                if self._stopping.is_set():
                    return
                log.exception("cannot read the outbox")
                channel.wake.wait(RETRY_AFTER_ERROR)
                continue
            if pending is None:
                channel.wake.wait(self._max_sleep)
                continue
            n = pending.notification
            age = time.time() - n.created_at
            if age > expire_after:
                self.outbox.delete(pending.id)
                self.metrics.expired.labels(channel.receiver).inc()
                with log_context(receiver=channel.receiver):
                    log.error("notification expired undelivered and was dropped",
                              extra={"fields": {"notification": n.key, "group_key": n.group_key, "status": n.status,
                                                "age_seconds": round(age, 1), "attempts": pending.attempts}})
                continue
            wait = channel.breaker.wait_time()
            if wait > 0:
                channel.wake.wait(min(wait, self._max_sleep))
                continue
            self._attempt(channel, receiver, pending.id, n)

    def _attempt(self, channel: _Channel, receiver: Receiver, row_id: int, n: Notification) -> None:
        name = channel.receiver
        channel.breaker.begin()
        trial = channel.breaker.state == "half_open"
        started = time.monotonic()
        error: str | None = None
        with log_context(receiver=name):
            try:
                receiver.deliver(n)
            except NotificationError as exc:
                error = exc.message
            except Exception as exc:  # noqa: BLE001 - a receiver bug must not kill the lane
                error = receiver.redact(f"{type(exc).__name__}: {exc}")
            elapsed = time.monotonic() - started
            self.metrics.sent.labels(name).inc()
            self.metrics.latency.labels(name).observe(elapsed)
            fields = {"notification": n.key, "group_key": n.group_key, "status": n.status, "channel": channel.key}
            if error is None:
                self.outbox.delete(row_id)
                if channel.breaker.success():
                    log.info("receiver is back; circuit closed", extra={"fields": fields})
                self._update_circuit_metric(name)
                log.debug("notification delivered", extra={"fields": {**fields, "seconds": round(elapsed, 3)}})
                return
            self.metrics.failed.labels(name).inc()
            self.outbox.record_failure(row_id, error)
            opened = channel.breaker.failure()
            self._update_circuit_metric(name)
            fields["error"] = error
            if opened:
                log.error("receiver failing; circuit open, deliveries paused for the cool-down",
                          extra={"fields": {**fields, "failures": channel.breaker.consecutive}})
            elif trial:
                log.warning("trial delivery failed; circuit stays open", extra={"fields": fields})
            elif channel.breaker.state == "closed":
                log.warning("notification delivery failed; will retry", extra={"fields": fields})

    def _update_circuit_metric(self, receiver: str) -> None:
        is_open = any(c.breaker.is_open for c in self._channels.values() if c.receiver == receiver)
        self.metrics.circuit_open.labels(receiver).set(1 if is_open else 0)

    # ------------------------------------------------------------------ operator views

    def active_alerts(self) -> list[dict[str, Any]]:
        """What GET /api/v1/alerts serves: every alert known now, its state and since when."""
        with self._lock:
            tracked = list(self._alerts.values())
        muted = self.inhibitor.muter([t.alert.labels for t in tracked if t.alert.firing])
        out = []
        for t in sorted(tracked, key=lambda t: (t.alert.labels.get("alertname", ""), t.alert.fingerprint)):
            a = t.alert
            state = "resolved" if not a.firing else "suppressed" if muted(a.labels) else "firing"
            out.append({"fingerprint": a.fingerprint, "labels": dict(a.labels), "annotations": dict(a.annotations),
                        "state": state, "activeAt": rfc3339(a.starts_at),
                        "resolvedAt": rfc3339(a.ends_at) if not a.firing else None,
                        "lastSubmittedAt": rfc3339(datetime.fromtimestamp(t.seen, timezone.utc)),
                        "generatorURL": a.generator_url, "receivers": sorted(t.receivers)})
        return out

    def receiver_status(self) -> list[dict[str, Any]]:
        pending = self.outbox.channels()
        return [{"receiver": c.receiver, "channel": c.key, "circuit": c.breaker.state,
                 "consecutive_failures": c.breaker.consecutive, "pending": pending.get(c.key, 0)}
                for c in self._channels.values()]

    def test_receiver(self, name: str) -> None:
        """Send one test notification through the real receiver now (bypassing the outbox)."""
        if name not in self.receivers:
            raise NotificationError(f"no receiver named {name!r}", {"receivers": sorted(self.receivers)})
        receiver = self.receivers[name]
        if receiver is None:
            raise NotificationError(f"receiver {name!r} has no kind configured; it drops every alert")
        send_test(receiver, self.external_labels, self.external_url)


def send_test(receiver: Receiver, external_labels: dict[str, str], external_url: str = "") -> None:
    now = datetime.now(timezone.utc)
    alert = Alert(labels={**external_labels, "alertname": "TocsinTestNotification", "severity": "info"},
                  annotations={"summary": f"Test notification from tocsin to receiver {receiver.name}"},
                  starts_at=now).with_labels(external_labels)
    for target in range(receiver.targets()):
        n = Notification(key=str(uuid.uuid4()), receiver=receiver.name, group_key="{}:{test=\"true\"}",
                         status="firing", alerts=[alert], group_labels={"alertname": "TocsinTestNotification"},
                         external_url=external_url, reason="test", target=target, created_at=time.time())
        receiver.deliver(n)


def _needs_update(entry: LogEntry | None, firing: frozenset[str], resolved: frozenset[str],
                  send_resolved: bool, repeat: float, now: float) -> str:
    """Alertmanager's dedup decision; returns why a notification is due, or '' if none is."""
    if entry is None:
        return "new" if firing else ""          # a group that resolved before group_wait ended: nothing
    if not firing <= entry.firing:
        return "changed"
    if not firing:
        return "resolved" if entry.firing else ""   # all resolved (logged even if not sent)
    if send_resolved and not resolved <= entry.resolved:
        return "changed"
    return "repeat" if entry.sent_at <= now - repeat else ""
