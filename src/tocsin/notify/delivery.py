"""Delivery: one lane per receiver channel, each a thread that drains its part of the outbox.

A channel is a receiver, or one URL of a receiver that posts to several peers. Its lane
delivers in order (always the oldest notification of the channel first), paced by its own
circuit breaker, and drops a notification that stayed undelivered past `expire_after`. A
notification leaves the outbox only once the receiver accepted it. An idle lane sleeps until
the dispatcher commits something for it (`wake()`), or until its breaker allows a retry.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from ..errors import NotificationError
from ..logs import log_context
from .breaker import CircuitBreaker
from .config import DeliveryConfig
from .metrics import NotifyMetrics
from .notification import Notification
from .outbox import Outbox, channel_of
from .receivers import Receiver

log = logging.getLogger("tocsin.notify")
RETRY_AFTER_OUTBOX_ERROR = 1.0   # the pause after the outbox could not be read


class Lane:
    """One delivery lane: a receiver (or one URL of it), in-order, with its own breaker."""

    def __init__(self, key: str, receiver: str, breaker: CircuitBreaker) -> None:
        self.key = key
        self.receiver = receiver
        self.breaker = breaker
        self.wake = threading.Event()


class Delivery:
    """The lanes of every configured receiver channel; `run(lane)` is one lane's thread."""

    def __init__(self, receivers: dict[str, Receiver | None], outbox: Outbox, metrics: NotifyMetrics,
                 options: DeliveryConfig, *, max_sleep: float, stopping: threading.Event) -> None:
        self.receivers = receivers
        self.outbox = outbox
        self.metrics = metrics
        self.expire_after = options.expire_after
        self._max_sleep = max_sleep
        self._stopping = stopping
        self.lanes: dict[str, Lane] = {}
        for name, receiver in receivers.items():
            if receiver is None:
                continue
            for target in range(receiver.targets()):
                key = channel_of(name, target)
                self.lanes[key] = Lane(key, name, CircuitBreaker(
                    options.breaker_failures, options.breaker_cooldown, options.initial_backoff, options.max_backoff))
            metrics.circuit_open.labels(name).set(0)
            metrics.sent.labels(name)
            metrics.failed.labels(name)
            metrics.expired.labels(name)

    def replay(self) -> None:
        """Before the lanes start: drop what no lane can deliver; the lanes deliver the rest."""
        pending = self.outbox.channels()
        for key, count in pending.items():
            if key not in self.lanes:
                self._drop_channel(key, count)
        if pending:
            log.info("replaying the notification outbox", extra={"fields": {"pending": sum(pending.values())}})

    def _drop_channel(self, key: str, count: int) -> None:
        receiver = key.rpartition("#")[0]
        while (pending := self.outbox.head(key)) is not None:
            self.outbox.delete(pending.id)
            self.metrics.expired.labels(receiver).inc()
        log.error("dropped undelivered notifications: their receiver is no longer configured",
                  extra={"fields": {"receiver": receiver, "count": count}})

    def wake(self, notifications: list[Notification]) -> None:
        """The dispatcher committed these: wake the lanes that deliver them."""
        for n in notifications:
            lane = self.lanes.get(channel_of(n.receiver, n.target))
            if lane is not None:
                lane.wake.set()

    def wake_all(self) -> None:
        for lane in self.lanes.values():
            lane.wake.set()

    def run(self, lane: Lane) -> None:
        receiver = self.receivers[lane.receiver]
        assert receiver is not None
        while not self._stopping.is_set():
            lane.wake.clear()
            try:
                pending = self.outbox.head(lane.key)
            except Exception:  # noqa: BLE001 - e.g. the database closed under us at stop()
                if self._stopping.is_set():
                    return
                log.exception("cannot read the outbox")
                lane.wake.wait(RETRY_AFTER_OUTBOX_ERROR)
                continue
            if pending is None:
                lane.wake.wait(self._max_sleep)
                continue
            n = pending.notification
            age = time.time() - n.created_at
            if age > self.expire_after:
                self.outbox.delete(pending.id)
                self.metrics.expired.labels(lane.receiver).inc()
                with log_context(receiver=lane.receiver):
                    log.error("notification expired undelivered and was dropped",
                              extra={"fields": {"notification": n.key, "group_key": n.group_key, "status": n.status,
                                                "age_seconds": round(age, 1), "attempts": pending.attempts}})
                continue
            wait = lane.breaker.wait_time()
            if wait > 0:
                lane.wake.wait(min(wait, self._max_sleep))
                continue
            self._attempt(lane, receiver, pending.id, n)

    def _attempt(self, lane: Lane, receiver: Receiver, row_id: int, n: Notification) -> None:
        name = lane.receiver
        lane.breaker.begin()
        trial = lane.breaker.state == "half_open"
        started = time.monotonic()
        error: str | None = None
        retry_after: float | None = None
        with log_context(receiver=name):
            try:
                receiver.deliver(n)
            except NotificationError as exc:
                error = exc.message
                retry_after = exc.details.get("retry_after")
            except Exception as exc:  # noqa: BLE001 - a receiver bug must not kill the lane
                error = receiver.redact(f"{type(exc).__name__}: {exc}")
            elapsed = time.monotonic() - started
            self.metrics.sent.labels(name).inc()
            self.metrics.latency.labels(name).observe(elapsed)
            fields = {"notification": n.key, "group_key": n.group_key, "status": n.status, "channel": lane.key}
            if error is None:
                self.outbox.delete(row_id)
                if lane.breaker.success():
                    log.info("receiver is back; circuit closed", extra={"fields": fields})
                self._update_circuit_metric(name)
                log.debug("notification delivered", extra={"fields": {**fields, "seconds": round(elapsed, 3)}})
                return
            self.metrics.failed.labels(name).inc()
            self.outbox.record_failure(row_id, error)
            opened = lane.breaker.failure()
            if retry_after is not None:
                lane.breaker.defer(retry_after)  # this lane only: the other receivers' lanes go on
            self._update_circuit_metric(name)
            fields["error"] = error
            if opened:
                log.error("receiver failing; circuit open, deliveries paused for the cool-down",
                          extra={"fields": {**fields, "failures": lane.breaker.consecutive}})
            elif trial:
                log.warning("trial delivery failed; circuit stays open", extra={"fields": fields})
            elif lane.breaker.state == "closed":
                log.warning("notification delivery failed; will retry", extra={"fields": fields})

    def _update_circuit_metric(self, receiver: str) -> None:
        is_open = any(lane.breaker.is_open for lane in self.lanes.values() if lane.receiver == receiver)
        self.metrics.circuit_open.labels(receiver).set(1 if is_open else 0)

    def status(self) -> list[dict[str, Any]]:
        """Each lane's circuit and backlog, for the operator."""
        pending = self.outbox.channels()
        return [{"receiver": lane.receiver, "channel": lane.key, "circuit": lane.breaker.state,
                 "consecutive_failures": lane.breaker.consecutive, "pending": pending.get(lane.key, 0)}
                for lane in self.lanes.values()]
