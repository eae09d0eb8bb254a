"""The dispatcher: which alerts are known, which groups they are in, and when a group is due.

`submit()` only updates this in-memory state under a lock and wakes the dispatcher thread;
that thread runs Alertmanager's flush + dedup stage on the groups that are due (with the
inhibit rules applied at flush time), resolves alerts nobody re-submitted within
`resolve_timeout`, and commits the resulting notifications, with the notification-log
entries they imply, to the outbox. Delivery is someone else's job: the dispatcher only says
which notifications it committed.

A commit that fails (a full disk) loses nothing: the forwarded batches go back in the queue,
the flushed groups are due again, and the notification log in memory is left as it was, so
the next try (with backoff) makes the same decisions; meanwhile the dispatcher reports itself
stalled (`problems()`).

Alertmanager peers group alerts themselves, so their alerts skip the groups: each submit
becomes one batch per routed peer URL, carrying the alerts as submitted.

Timers (group_wait, group_interval, resolve_timeout, forgetting resolved alerts) run on the
monotonic clock, so a step of the wall clock neither flushes every group and expires every
alert at once (forward) nor freezes them (backward). repeat_interval is measured against the
persisted notification log (wall time) only for entries written before this start; for
those written since, on the monotonic clock too. An alert's startsAt stays wall time.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..gofmt import rfc3339_millis
from ..statedb import StateWriteError, retry_delay
from ..timeintervals import muted_at
from .alert import Alert
from .config import AlertingConfig
from .muting import Muting
from .notification import Notification
from .outbox import LogEntry, Outbox
from .receivers import Receiver
from .router import Inhibitor, Route

log = logging.getLogger("tocsin.notify")
RESOLVED_RETENTION = 900.0       # how long a resolved alert stays in the active view
NFLOG_RETENTION = 5 * 86400.0    # Alertmanager keeps its notification log 5 days
RETRY_AFTER_BUG = 1.0            # the pause after a dispatch that raised


@dataclass
class _Tracked:
    alert: Alert
    seen: float       # wall time of the last submit, for the operator's view
    seen_mono: float  # the same moment on the monotonic clock, for resolve_timeout
    receivers: set[str] = field(default_factory=set)


@dataclass
class _Group:
    id: str
    key: str
    route: Route
    labels: dict[str, str]
    next_flush: float  # monotonic
    alerts: dict[str, tuple[Alert, int]] = field(default_factory=dict)
    flushed: bool = False


class Dispatcher:
    """Alert tracking, grouping per route, flush and dedup, expiry; one thread (`run()`)."""

    def __init__(self, config: AlertingConfig, root: Route, inhibitor: Inhibitor,
                 receivers: dict[str, Receiver | None], outbox: Outbox, *, external_labels: dict[str, str],
                 external_url: str, max_sleep: float, stopping: threading.Event,
                 committed: Callable[[list[Notification]], None], muting: Muting | None = None) -> None:
        self.config = config
        self.muting = muting  # silences and acknowledgements: muted at flush, like inhibition
        self.root = root
        self.inhibitor = inhibitor
        self.receivers = receivers
        self.outbox = outbox
        self.external_labels = external_labels
        self.external_url = external_url
        self._max_sleep = max_sleep
        self._stopping = stopping
        self._committed = committed
        self._time_intervals = config.time_interval_table()
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._alerts: dict[str, _Tracked] = {}
        self._groups: dict[str, _Group] = {}
        self._to_forward: list[Notification] = []  # batches for Alertmanager peers, not yet committed
        self._submitted = False                     # set by submit(), cleared by the dispatcher
        self._nflog: dict[tuple[str, str], LogEntry] = {}
        self._logged_mono: dict[tuple[str, str], float] = {}  # when this process wrote each entry (monotonic)
        self._version = 0
        self._commit_failures = 0
        self._commit_retry_at = 0.0      # monotonic: no commit before, after a failed one
        self.stalled_since: float | None = None
        self.stall_reason = ""

    def load_log(self) -> None:
        """Read what each receiver was last told (before the thread starts); forget old entries."""
        self._nflog = self.outbox.load_log()
        try:
            self.outbox.prune_log(time.time() - NFLOG_RETENTION)
        except StateWriteError as exc:  # old entries stay until the next start: harmless
            log.warning("cannot prune the notification log: %s", exc.reason)

    def wake(self) -> None:
        with self._cv:
            self._cv.notify_all()

    # ------------------------------------------------------------------ input

    def submit(self, alerts: list[Alert]) -> None:
        """Take the current firing alerts and the just-resolved ones; never blocks on delivery."""
        now, mono = time.time(), time.monotonic()
        with self._cv:
            batches: dict[str, dict[str, Alert]] = {}
            for alert in alerts:
                alert = alert.with_labels(self.external_labels)
                if not alert.firing and alert.ends_at is None:
                    alert = alert.resolved(datetime.now(timezone.utc))
                for peer in self._ingest(alert, now, mono):
                    batches.setdefault(peer, {})[alert.fingerprint] = alert
            for name, batch in batches.items():
                self._forward(name, list(batch.values()), now)
            self._submitted = True
            self._cv.notify_all()

    def _ingest(self, alert: Alert, now: float, mono: float) -> list[str]:
        """Track the alert and put it in the groups of its routes; return the routed receivers
        that do not group (Alertmanager peers), which get the alert as submitted instead."""
        fp = alert.fingerprint
        self._version += 1
        tracked = self._alerts.get(fp)
        if tracked is None:
            tracked = self._alerts[fp] = _Tracked(alert, now, mono)
        else:
            if tracked.alert.firing and alert.firing and tracked.alert.starts_at < alert.starts_at:
                alert = Alert(alert.labels, alert.annotations, tracked.alert.starts_at, None,
                              alert.generator_url, "firing")
            tracked.alert, tracked.seen, tracked.seen_mono = alert, now, mono
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
                group = self._groups[gid] = _Group(gid, key, route, labels, mono + route.group_wait)
            if not group.flushed and alert.starts_at.timestamp() + route.group_wait < now:
                group.next_flush = min(group.next_flush, mono)  # an old alert (restart): no need to wait
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

    # ------------------------------------------------------------------ the thread

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                wait = self._dispatch_once()
            except Exception:  # noqa: BLE001 - the dispatcher must outlive any single bug
                log.exception("notification dispatch failed; retrying")
                wait = RETRY_AFTER_BUG
            with self._cv:
                if not self._stopping.is_set() and not self._submitted:
                    self._cv.wait(max(0.005, wait))

    def _dispatch_once(self) -> float:
        now, mono = time.time(), time.monotonic()
        log_updates: dict[tuple[str, str], LogEntry] = {}
        cleanup: list[tuple[_Group, list[tuple[str, int]]]] = []
        with self._lock:
            self._submitted = False
            backoff = self._commit_retry_at - time.monotonic()
            if backoff > 0:  # the last commit failed: submissions wait in memory until the retry
                return backoff
            notifications, self._to_forward = self._to_forward, []
            forwarded = len(notifications)
            self._expire_alerts(now, mono)
            due = [g for g in self._groups.values() if g.next_flush <= mono]
            if due:
                muted = self.inhibitor.muter([t.alert.labels for t in self._alerts.values() if t.alert.firing])
                if self.muting is not None:
                    muted = self.muting.combine(muted, [t.alert for t in self._alerts.values()])
                for group in due:
                    cleanup.append((group, self._flush(group, now, mono, muted, notifications, log_updates)))
            next_due = self._next_due()
        if notifications or log_updates:
            try:
                self.outbox.commit(notifications, log_updates)  # outside the lock: submit() never waits on disk
            except StateWriteError as exc:
                return self._commit_failed(exc, notifications[:forwarded], [g for g, _ in cleanup])
            self._commit_succeeded()
        with self._lock:
            self._nflog.update(log_updates)
            for group, resolved in cleanup:
                for fp, version in resolved:
                    current = group.alerts.get(fp)
                    if current is not None and current[1] == version:
                        del group.alerts[fp]
                if not group.alerts:
                    self._groups.pop(group.id, None)
        if notifications:
            self._committed(notifications)
        return min(self._max_sleep, max(0.0, next_due - time.monotonic()))

    def _commit_failed(self, exc: StateWriteError, forwarded: list[Notification], flushed: list[_Group]) -> float:
        """Undo the pass whose commit failed, so that the retry makes it again; return the pause."""
        self._commit_failures += 1
        delay = retry_delay(self._commit_failures, self.config.delivery.initial_backoff,
                            self.config.delivery.max_backoff)
        with self._lock:
            self._to_forward[:0] = forwarded
            retry = time.monotonic() + delay  # next_flush is monotonic
            for group in flushed:
                group.next_flush = min(group.next_flush, retry)
            self._commit_retry_at = time.monotonic() + delay
            if self.stalled_since is None:
                self.stalled_since = time.monotonic()
            self.stall_reason = exc.reason
        log.error("cannot commit notifications to the outbox: %s; retrying in %.1fs", exc.reason, delay,
                  extra={"fields": {"groups": len(flushed), "batches": len(forwarded), "failures": self._commit_failures}})
        return delay

    def _commit_succeeded(self) -> None:
        if self.stalled_since is None:
            return
        log.info("notifications are committed to the outbox again", extra={"fields": {
            "failures": self._commit_failures, "stalled_seconds": round(time.monotonic() - self.stalled_since, 1)}})
        with self._lock:
            self._commit_failures, self.stalled_since, self.stall_reason = 0, None, ""

    def problems(self) -> list[str]:
        """Why due notifications cannot reach the outbox now (empty: they can)."""
        since = self.stalled_since
        if since is None:
            return []
        return [f"notifications cannot be committed to the outbox for {time.monotonic() - since:.0f}s: "
                f"{self.stall_reason}"]

    def _next_due(self) -> float:
        """When the dispatcher has work without being told: the next group flush, or alert to
        expire or forget (monotonic; inf if none)."""
        times = [g.next_flush for g in self._groups.values()]
        for tracked in self._alerts.values():
            times.append(tracked.seen_mono + (self.config.resolve_timeout if tracked.alert.firing else RESOLVED_RETENTION))
        return min(times, default=float("inf"))

    def _expire_alerts(self, now: float, mono: float) -> None:
        """Resolve firing alerts nobody re-submitted for resolve_timeout; forget old resolved ones.

        Alertmanager peers are not told: they get only what is submitted, and the valid-until
        they were sent resolves the alert there by itself."""
        for fp, tracked in list(self._alerts.items()):
            if tracked.alert.firing and mono - tracked.seen_mono > self.config.resolve_timeout:
                log.warning("alert not re-submitted within resolve_timeout; resolving it",
                            extra={"fields": {"alertname": tracked.alert.labels.get("alertname", ""), "fingerprint": fp}})
                self._ingest(tracked.alert.resolved(datetime.now(timezone.utc)), now, mono)
            elif not tracked.alert.firing and mono - tracked.seen_mono > RESOLVED_RETENTION:
                del self._alerts[fp]

    def _flush(self, group: _Group, now: float, mono: float, muted: Callable[[dict[str, str]], bool],
               out: list[Notification], log_updates: dict[tuple[str, str], LogEntry]) -> list[tuple[str, int]]:
        """Alertmanager's flush + dedup stage for one group; returns resolved alerts to forget."""
        route = group.route
        receiver = self.receivers[route.receiver]
        assert receiver is not None
        group.next_flush = mono + route.group_interval
        group.flushed = True
        if (route.mute_time_intervals or route.active_time_intervals) and muted_at(
                datetime.fromtimestamp(now, timezone.utc), route.mute_time_intervals, route.active_time_intervals,
                self._time_intervals):
            # Alertmanager's time stages: nothing sent, nothing logged, resolved alerts forgotten
            return [(fp, v) for fp, (a, v) in group.alerts.items() if not a.firing]
        alerts = sorted((a for a, _ in group.alerts.values() if not (a.firing and muted(a.labels))),
                        key=lambda a: (a.starts_at, a.fingerprint))
        if not alerts:  # all muted: Alertmanager's pipeline stops here, its log untouched, so the
            return []   # receiver still gets the resolution of what it was told before the mute
        firing = frozenset(a.fingerprint for a in alerts if a.firing)
        resolved = frozenset(a.fingerprint for a in alerts if not a.firing)
        log_key = (route.receiver, group.key)
        entry = self._nflog.get(log_key)
        logged = self._logged_mono.get(log_key)
        # "now" as the time since the entry was written measures it, when this process wrote it
        since = now if entry is None or logged is None else entry.sent_at + (mono - logged)
        reason = needs_update(entry, firing, resolved, receiver.send_resolved, route.repeat_interval, since)
        if reason:
            send = alerts if receiver.send_resolved else [a for a in alerts if a.firing]
            if send:
                out.append(Notification(key=str(uuid.uuid4()), receiver=route.receiver, group_key=group.key,
                                        status="firing" if firing else "resolved", alerts=send,
                                        group_labels=dict(group.labels), external_url=self.external_url,
                                        reason=reason, created_at=now))
            log_updates[log_key] = LogEntry(firing, resolved, now)
            self._logged_mono[log_key] = mono
        return [(fp, v) for fp, (a, v) in group.alerts.items() if not a.firing]

    # ------------------------------------------------------------------ reload

    def notified_groups(self) -> list[tuple[str, str, dict[str, str], list[Alert], LogEntry]]:
        """Each group some receiver was told is firing: (receiver, group key, group labels,
        the group's alerts now, what the receiver was last told). Call with the thread stopped."""
        with self._lock:
            out = []
            for group in self._groups.values():
                entry = self._nflog.get((group.route.receiver, group.key))
                if entry is not None and entry.firing:
                    out.append((group.route.receiver, group.key, dict(group.labels),
                                [a for a, _ in group.alerts.values()], entry))
            return out

    def tracked(self) -> list[tuple[Alert, float, set[str]]]:
        """Every alert known: (alert, when last submitted, the receivers it was routed to)."""
        with self._lock:
            return [(t.alert, t.seen, set(t.receivers)) for t in self._alerts.values()]

    def adopt(self, alerts: list[tuple[Alert, float, set[str]]]) -> None:
        """Take over the alerts a reload's predecessor knew, as if they had been submitted here
        (Alertmanager peers excepted: they already have them). Their resolve_timeout runs on."""
        now, mono = time.time(), time.monotonic()
        with self._cv:
            for alert, seen, _ in alerts:
                self._ingest(alert, now, mono)
                tracked = self._alerts[alert.fingerprint]
                # Keep when it was last submitted, on both clocks (the wall clock did not step
                # during the hand-over, so their difference still holds).
                tracked.seen, tracked.seen_mono = seen, mono - (now - seen)
            self._submitted = True
            self._cv.notify_all()

    # ------------------------------------------------------------------ operator view

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
                        "state": state, "activeAt": rfc3339_millis(a.starts_at),
                        "resolvedAt": rfc3339_millis(a.ends_at) if not a.firing else None,
                        "lastSubmittedAt": rfc3339_millis(datetime.fromtimestamp(t.seen, timezone.utc)),
                        "generatorURL": a.generator_url, "receivers": sorted(t.receivers)})
        return out


def needs_update(entry: LogEntry | None, firing: frozenset[str], resolved: frozenset[str],
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
