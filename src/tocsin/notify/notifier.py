"""The Notifier: alerts in, notifications out, through groups and a durable outbox.

Threads: `submit()` only updates in-memory state under a lock and wakes the dispatcher; the
dispatcher thread flushes due groups (Alertmanager's timers and dedup rules) into the
outbox; one worker thread per receiver channel delivers in order, paced by its circuit
breaker. Rule evaluation therefore never waits for a receiver, nor for SQLite.

This module wires the parts together (`dispatcher.Dispatcher`, `delivery.Delivery`, the
`outbox.Outbox` they share) and owns their threads.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from functools import partial
from typing import Any

from ..statedb import StateWriteError
from .alert import Alert
from .config import AlertingConfig
from .delivery import Delivery
from .dispatcher import Dispatcher
from .handover import resolve_unrouted
from .metrics import NotifyMetrics
from .muting import Muting
from .notification import Notification
from .outbox import Outbox
from .receivers import KINDS, Receiver
from .router import build

log = logging.getLogger("tocsin.notify")

# The longest the dispatcher and an idle delivery lane sleep without being woken: a safety
# net only. Each wakes when there is work (submit(), a committed notification) or when the
# next flush or expiry is due; an idle daemon does not wake them every second.
IDLE_WAIT = 60.0


def build_receivers(config: AlertingConfig) -> dict[str, Receiver | None]:
    """name -> receiver instance (None for a receiver without a kind, which drops alerts)."""
    return {r.name: (KINDS[r.kind](r.name, r.options) if r.kind else None) for r in config.receivers}


class Notifier:
    """Route, group, persist and deliver alert notifications.

    `submit()` is called by the rule engine after every evaluation with the alerts firing
    now and those that just resolved. Call `start()` once (it replays the outbox) and
    `stop()` on shutdown; build a new Notifier on reload (pass the same `metrics`).
    """

    def __init__(self, config: AlertingConfig, *, state_dir: str, external_labels: dict[str, str] | None = None,
                 metrics: NotifyMetrics | None = None, external_url: str | None = None,
                 muting: Muting | None = None) -> None:
        self.config = config
        self.external_labels = dict(external_labels or {})
        self.external_url = config.external_url or external_url or ""
        self.metrics = metrics or NotifyMetrics()
        self.receivers = build_receivers(config)
        self.outbox = Outbox(state_dir)
        self._stopping = threading.Event()
        self._dispatch_stopping = threading.Event()   # the dispatcher alone: set by retire() too
        self._threads: list[threading.Thread] = []
        self._dispatch_thread: threading.Thread | None = None
        self._lane_threads: dict[str, threading.Thread] = {}
        self._retired = False
        self.delivery = Delivery(self.receivers, self.outbox, self.metrics, config.delivery,
                                 max_sleep=IDLE_WAIT, stopping=self._stopping)
        root, inhibitor = build(config)
        self.dispatcher = Dispatcher(config, root, inhibitor, self.receivers, self.outbox,
                                     external_labels=self.external_labels, external_url=self.external_url,
                                     max_sleep=IDLE_WAIT, stopping=self._dispatch_stopping,
                                     committed=self.delivery.wake, muting=muting)
        self.metrics.outbox_length.set_function(_zero_after_close(self.outbox.length))
        self.metrics.outbox_oldest.set_function(_zero_after_close(self.outbox.oldest_age))
        self.metrics.dispatch_stalled.set_function(lambda: 0.0 if self.dispatcher.stalled_since is None else 1.0)

    # ------------------------------------------------------------------ lifecycle

    def start(self, keep: frozenset[str] = frozenset()) -> None:
        """Load the notification log, replay the outbox, start the dispatcher and the workers.

        `keep`: outbox channels that a reload's predecessor is still draining (receivers the
        reload removed), which the replay must leave to it."""
        self.dispatcher.load_log()
        self.delivery.replay(keep)
        self._dispatch_thread = self._spawn(self.dispatcher.run, "tocsin-notify-dispatch")
        for lane in self.delivery.lanes.values():
            self._lane_threads[lane.key] = self._spawn(partial(self.delivery.run, lane), f"tocsin-notify-{lane.key}")

    def _spawn(self, target: Callable[[], None], name: str) -> threading.Thread:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)
        return thread

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the threads; undelivered notifications stay in the outbox for the next start."""
        self._stopping.set()
        self._dispatch_stopping.set()
        self.dispatcher.wake()
        self.delivery.wake_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if not self.running():
            self.outbox.close()

    def retire(self, successor: AlertingConfig | None, handover: set[str], heir: Notifier | None = None,
               timeout: float = 5.0) -> None:
        """Give way to the notifier a reload built from `successor` (None: alerting removed).

        The dispatcher stops; the alerts it notified that `successor` no longer routes to the
        same receiver and group are resolved there at once (committed to the outbox now); the
        alerts it knows pass to `heir`. The lanes of the receivers in `handover` stop (the
        heir delivers their channels from now on); the others drain what their channel holds,
        the resolutions included, and end (`running()`)."""
        self._dispatch_stopping.set()
        self.dispatcher.wake()
        if self._dispatch_thread is not None:
            self._dispatch_thread.join(timeout)
        try:
            resolve_unrouted(self.dispatcher, successor)
        except StateWriteError as exc:
            log.error("cannot commit the resolutions of the alerts the reload stops routing: %s", exc.reason)
        if heir is not None:
            heir.dispatcher.adopt(self.dispatcher.tracked())
        stopped = []
        for lane in self.delivery.lanes.values():
            if lane.receiver in handover:
                lane.stop.set()
                stopped.append(self._lane_threads.get(lane.key))
            else:
                lane.drain = True
            lane.wake.set()
        deadline = time.monotonic() + timeout
        for thread in stopped:
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        self._retired = True

    def release(self, names: set[str], timeout: float = 5.0) -> None:
        """Stop the draining lanes of these receivers: a newer notifier delivers their channels."""
        for lane in self.delivery.lanes.values():
            if lane.receiver in names and not lane.stop.is_set():
                lane.stop.set()
                lane.wake.set()
                thread = self._lane_threads.get(lane.key)
                if thread is not None:
                    thread.join(timeout)

    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def draining(self) -> frozenset[str]:
        """The channels this (retired) notifier still delivers."""
        return frozenset(key for key, thread in self._lane_threads.items() if thread.is_alive())

    # ------------------------------------------------------------------ input

    def submit(self, alerts: list[Alert]) -> None:
        """Take the current firing alerts and the just-resolved ones; never blocks on delivery."""
        self.dispatcher.submit(alerts)

    # ------------------------------------------------------------------ operator views

    def active_alerts(self) -> list[dict[str, Any]]:
        """What GET /api/v1/alerts serves: every alert known now, its state and since when."""
        return self.dispatcher.active_alerts()

    def receiver_status(self) -> list[dict[str, Any]]:
        return self.delivery.status()

    def problems(self) -> list[str]:
        """What keeps notifications from moving for tocsin's own reasons (for /-/healthy); empty: nothing."""
        if self._stopping.is_set():
            return []
        dead = [t.name for t in self._threads if not t.is_alive()]
        if self._retired:  # its dispatcher stopped, and its lanes end when done: no fault
            return self.delivery.problems()
        return ([f"notification thread {name} ended" for name in dead]
                + self.dispatcher.problems() + self.delivery.problems())


def _zero_after_close(fn: Callable[[], float]) -> Callable[[], float]:
    def call() -> float:
        try:
            return float(fn())
        except Exception:  # noqa: BLE001 - a closed database after stop() reads as 0
            return 0.0
    return call


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
