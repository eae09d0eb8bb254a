"""Delivery: one lane per receiver channel, each a thread that drains its part of the outbox.

A channel is a receiver, or one URL of a receiver that posts to several peers. Its lane
delivers in order (always the oldest notification of the channel first), paced by its own
circuit breaker, and drops a notification that stayed undelivered past `expire_after`. A
notification leaves the outbox only once the receiver accepted it. An idle lane sleeps until
the dispatcher commits something for it (`wake()`), or until its breaker allows a retry.

The outbox itself can fail (a full disk): a lane then keeps going on what it can do. It
remembers which rows it has finished with (delivered or expired) and deletes them once the
disk takes writes again, never handing one to its receiver twice meanwhile; it retries the
writes with backoff, and says that it is stalled (log, `tocsin_notify_lane_stalled`,
`/-/healthy`) until they succeed. No error of the outbox or of a receiver ends its thread.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from ..errors import NotificationError
from ..logs import log_context
from ..statedb import StateWriteError, retry_delay
from .breaker import CircuitBreaker
from .config import DeliveryConfig
from .metrics import NotifyMetrics
from .notification import Notification
from .outbox import Outbox, channel_of
from .receivers import Receiver

log = logging.getLogger("tocsin.notify")


class Lane:
    """One delivery lane: a receiver (or one URL of it), in-order, with its own breaker."""

    def __init__(self, key: str, receiver: str, breaker: CircuitBreaker) -> None:
        self.key = key
        self.receiver = receiver
        self.breaker = breaker
        self.wake = threading.Event()
        self.stop = threading.Event()    # this lane alone (its channel passes to another notifier)
        self.drain = False               # end once the channel is empty (a receiver a reload removed)
        self.after = 0                   # the last row delivered or dropped: never handed out again
        self.finished: list[int] = []    # such rows whose delete has not succeeded yet
        self.unrecorded: dict[int, int] = {}   # failed attempts the outbox could not count yet
        self.store_failures = 0          # consecutive failed outbox operations
        self.retry_at = 0.0              # monotonic time of the next try of a failed write
        self.stalled_since: float | None = None
        self.stall_reason = ""


class Delivery:
    """The lanes of every configured receiver channel; `run(lane)` is one lane's thread."""

    def __init__(self, receivers: dict[str, Receiver | None], outbox: Outbox, metrics: NotifyMetrics,
                 options: DeliveryConfig, *, max_sleep: float, stopping: threading.Event) -> None:
        self.receivers = receivers
        self.outbox = outbox
        self.metrics = metrics
        self.expire_after = options.expire_after
        self._store_backoff = (options.initial_backoff, options.max_backoff)
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
            metrics.lane_stalled.labels(name).set(0)
            metrics.sent.labels(name)
            metrics.failed.labels(name)
            metrics.expired.labels(name)

    def replay(self, keep: frozenset[str] = frozenset()) -> None:
        """Before the lanes start: drop what no lane can deliver (except the channels in `keep`,
        which another notifier is still draining); the lanes deliver the rest."""
        pending = self.outbox.channels()
        for key, count in pending.items():
            if key not in self.lanes and key not in keep:
                self._drop_channel(key, count)
        if pending:
            log.info("replaying the notification outbox", extra={"fields": {"pending": sum(pending.values())}})

    def _drop_channel(self, key: str, count: int) -> None:
        receiver = key.rpartition("#")[0]
        rows: list[int] = []
        while (pending := self.outbox.head(key, rows[-1] if rows else 0)) is not None:
            rows.append(pending.id)
        try:
            self.outbox.delete(*rows)
        except StateWriteError as exc:  # they stay; the next start drops them
            log.error("cannot drop the undelivered notifications of a receiver no longer configured: %s",
                      exc.reason, extra={"fields": {"receiver": receiver, "count": count}})
            return
        self.metrics.expired.labels(receiver).inc(len(rows))
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

    def _ended(self, lane: Lane) -> bool:
        return self._stopping.is_set() or lane.stop.is_set()

    # ------------------------------------------------------------------ the lane's thread

    def run(self, lane: Lane) -> None:
        receiver = self.receivers[lane.receiver]
        assert receiver is not None
        try:
            while not self._ended(lane):
                lane.wake.clear()
                try:
                    wait = self._step(lane, receiver)
                except Exception as exc:  # noqa: BLE001 - the lane outlives any failure, retrying
                    if self._ended(lane):
                        return
                    reason = exc.reason if isinstance(exc, StateWriteError) else f"{type(exc).__name__}: {exc}"
                    wait = self._fault(lane, "read its outbox", reason, exc_info=not isinstance(exc, StateWriteError))
                if wait is None:
                    return
                if wait > 0:
                    lane.wake.wait(min(wait, self._max_sleep))
        finally:
            if not self._ended(lane) and not lane.drain:  # only BaseException gets here
                self._stalled(lane, "the delivery thread ended")
                log.critical("delivery lane ended", extra={"fields": {"receiver": lane.receiver, "channel": lane.key}})

    def _step(self, lane: Lane, receiver: Receiver) -> float | None:
        """One turn of the lane: seconds to wait before the next (0: at once), None: drained."""
        self._delete_finished(lane)
        pending = self.outbox.head(lane.key, lane.after)
        if pending is None:
            if lane.finished:
                return max(0.0, lane.retry_at - time.monotonic())
            self._healthy(lane)  # nothing left to write
            return None if lane.drain else self._max_sleep
        n = pending.notification
        age = time.time() - n.created_at
        if age > self.expire_after:
            self._finish(lane, pending.id)
            self.metrics.expired.labels(lane.receiver).inc()
            with log_context(receiver=lane.receiver):
                log.error("notification expired undelivered and was dropped",
                          extra={"fields": {"notification": n.key, "group_key": n.group_key, "status": n.status,
                                            "age_seconds": round(age, 1), "attempts": pending.attempts}})
            return 0.0
        wait = lane.breaker.wait_time()
        if wait > 0:
            return wait
        self._attempt(lane, receiver, pending.id, n)
        return 0.0

    def _finish(self, lane: Lane, row_id: int) -> None:
        """Done with a row (delivered or dropped): it leaves the outbox now, or once it can."""
        lane.after = row_id
        lane.unrecorded.pop(row_id, None)
        lane.finished.append(row_id)
        lane.retry_at = 0.0
        self._delete_finished(lane)

    def _delete_finished(self, lane: Lane) -> None:
        if not lane.finished or time.monotonic() < lane.retry_at:
            return
        try:
            self.outbox.delete(*lane.finished)
        except StateWriteError as exc:
            self._fault(lane, "delete delivered notifications from its outbox", exc.reason)
            return
        lane.finished.clear()
        self._healthy(lane)

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
                self._finish(lane, row_id)
                if lane.breaker.success():
                    log.info("receiver is back; circuit closed", extra={"fields": fields})
                self._update_circuit_metric(name)
                log.debug("notification delivered", extra={"fields": {**fields, "seconds": round(elapsed, 3)}})
                return
            self.metrics.failed.labels(name).inc()
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
            failures = 1 + lane.unrecorded.pop(row_id, 0)
            try:
                self.outbox.record_failure(row_id, error, failures)
            except StateWriteError as exc:  # counted with the row's next failure
                lane.unrecorded[row_id] = failures
                self._fault(lane, "record a failed delivery in its outbox", exc.reason)
                return
            if not lane.finished:
                self._healthy(lane)

    # ------------------------------------------------------------------ faults of the outbox

    def _fault(self, lane: Lane, what: str, reason: str, exc_info: bool = False) -> float:
        """An outbox operation failed: log it, mark the lane stalled, return the pause before retrying."""
        lane.store_failures += 1
        delay = retry_delay(lane.store_failures, *self._store_backoff)
        lane.retry_at = time.monotonic() + delay
        self._stalled(lane, f"cannot {what}: {reason}")
        log.error("delivery lane cannot %s: %s; retrying in %.1fs", what, reason, delay, exc_info=exc_info,
                  extra={"fields": {"receiver": lane.receiver, "channel": lane.key, "failures": lane.store_failures}})
        return delay

    def _stalled(self, lane: Lane, reason: str) -> None:
        if lane.stalled_since is None:
            lane.stalled_since = time.monotonic()
        lane.stall_reason = reason
        self.metrics.lane_stalled.labels(lane.receiver).set(1)

    def _healthy(self, lane: Lane) -> None:
        if lane.stalled_since is None:
            return
        log.info("delivery lane works again", extra={"fields": {
            "receiver": lane.receiver, "channel": lane.key, "failures": lane.store_failures,
            "stalled_seconds": round(time.monotonic() - lane.stalled_since, 1)}})
        lane.stalled_since, lane.stall_reason, lane.store_failures = None, "", 0
        stalled = any(other.stalled_since is not None for other in self.lanes.values()
                      if other.receiver == lane.receiver)
        self.metrics.lane_stalled.labels(lane.receiver).set(1 if stalled else 0)

    def problems(self) -> list[str]:
        """Why a lane is not making progress for tocsin's own reasons (not a refusing receiver)."""
        now = time.monotonic()
        return [f"delivery to receiver {lane.receiver!r} ({lane.key}) stalled for "
                f"{now - lane.stalled_since:.0f}s: {lane.stall_reason}"
                for lane in self.lanes.values() if lane.stalled_since is not None]

    def _update_circuit_metric(self, receiver: str) -> None:
        is_open = any(lane.breaker.is_open for lane in self.lanes.values() if lane.receiver == receiver)
        self.metrics.circuit_open.labels(receiver).set(1 if is_open else 0)

    def status(self) -> list[dict[str, Any]]:
        """Each lane's circuit and backlog, for the operator."""
        pending = self.outbox.channels()
        return [{"receiver": lane.receiver, "channel": lane.key, "circuit": lane.breaker.state,
                 "consecutive_failures": lane.breaker.consecutive,
                 "pending": max(0, pending.get(lane.key, 0) - len(lane.finished)),
                 "stalled": lane.stall_reason or None}
                for lane in self.lanes.values()]
