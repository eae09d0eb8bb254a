"""Flapping targets: detected as Icinga does, and paged for once, not at every change.

A target whose state keeps changing pages at every change: TargetDown fires, resolves,
fires… Icinga (after Nagios) measures flapping as a *weighted state-change percentage* over
the last `window` results: each change between two consecutive results counts with a weight
rising linearly from 0.75 (the oldest) to 1.25 (the newest), and the sum is taken as a share
of the `window − 1` possible changes. A target is flapping from when that exceeds `high` %
until it falls below `low` % (hysteresis, so it does not flap in and out of flapping).

While a target flaps, `FlappingGate` holds every alert notification about it (alerts whose
`target` label names it) and sends one notice instead: the alert `TargetFlapping{target=…}`
firing when the flapping starts, resolved when it ends. Then each held alert's latest state
is sent, so what the receivers last heard about the target is true again: an alert that
fired before the flapping and was resolved by its end is resolved, one firing at the end
fires (once; its first firing was never sent). Alerts notified as firing before the flapping
are re-sent unchanged while it lasts, so the notifier does not resolve them by
`resolve_timeout` in the meantime. The gate sits between the rule engine and the notifier;
routing, grouping, inhibition and silences apply to what it lets through.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from .fields import Model
from .notify.alert import Alert

if TYPE_CHECKING:
    from .config import Target

log = logging.getLogger("tocsin.flapping")

OLDEST_WEIGHT, NEWEST_WEIGHT = 0.75, 1.25  # Nagios's and Icinga's curve
NOTICE_ALERTNAME = "TargetFlapping"
KEEP_ALIVE_EVERY = 60.0  # seconds between re-sending what stands for a flapping target
VALID_FOR = timedelta(minutes=4)  # the endsAt given to re-sent firing alerts (for Alertmanager peers)


class FlappingConfig(Model):
    """`global.flapping`: Icinga's flapping detection over each target's last results."""

    enabled: bool = True  # off: no flapping detection, every state change is notified
    window: int = Field(default=21, ge=3, le=1000)  # results looked at (window − 1 possible changes)
    high: float = Field(default=30.0, gt=0, le=100)  # % above which a target starts flapping
    low: float = Field(default=25.0, ge=0, le=100)  # % below which it stops

    @model_validator(mode="after")
    def _low_below_high(self) -> "FlappingConfig":
        if self.low >= self.high:
            raise ValueError(f"low ({self.low:g}) must be below high ({self.high:g})")
        return self


def state_change_percent(states: Sequence[bool], window: int) -> float:
    """Icinga's weighted percentage of state changes in `states` (oldest first), over the
    `window − 1` changes a full window can hold. A window not yet full counts as if filled
    with the first state before it (as Icinga starts a history): the newest change always
    weighs NEWEST_WEIGHT, and a target with few results yet cannot flap."""
    possible = window - 1
    before = window - len(states)  # results assumed, equal to the first one
    total = 0.0
    for x in range(1, len(states)):
        if states[x] != states[x - 1]:
            total += OLDEST_WEIGHT + (x + before - 1) * (NEWEST_WEIGHT - OLDEST_WEIGHT) / max(possible - 1, 1)
    return 100.0 * total / possible


def _weights(window: int) -> tuple[float, ...]:
    """The weight of a change by its position (x + before − 1 in `state_change_percent`)."""
    possible = window - 1
    return tuple(OLDEST_WEIGHT + k * (NEWEST_WEIGHT - OLDEST_WEIGHT) / max(possible - 1, 1) for k in range(possible))


def _percent_of_bits(states: int, window: int, weights: tuple[float, ...]) -> float:
    """`state_change_percent` of results kept as bits (see `_TargetFlaps.states`): the same
    changes summed with the same weights in the same order, so the same float."""
    count = states.bit_length() - 1
    changes = (states ^ (states >> 1)) & ((1 << (count - 1)) - 1) if count > 1 else 0
    before = window - count
    total = 0.0
    while changes:  # oldest change first: the highest bit
        bit = changes.bit_length() - 1
        total += weights[count - 1 - bit + before - 1]
        changes ^= 1 << bit
    return 100.0 * total / (window - 1)


class _TargetFlaps:
    """One target's flapping state. A shard holds tens of thousands: the last results are the
    bits of one int, the newest lowest, under a leading 1 that marks how many there are (1: none);
    the alerts held or passed get their dicts when the first one comes."""

    __slots__ = ("states", "flapping", "percent", "held", "passed", "notice", "kept_alive")

    def __init__(self) -> None:
        self.states = 1
        self.flapping = False
        self.percent = 0.0
        self.held: dict[str, Alert] | None = None  # fingerprint -> latest alert not sent while flapping
        self.passed: dict[str, Alert] | None = None  # fingerprint -> the last alert the notifier got
        self.notice: Alert | None = None  # the TargetFlapping alert while it fires
        self.kept_alive = 0.0

    def append(self, up: bool, window: int) -> None:
        states = self.states << 1 | up
        if states >> (window + 1):  # one more than the window holds: the oldest goes
            states = states & ((1 << window) - 1) | 1 << window
        self.states = states

    def keep(self, window: int) -> None:
        """A new window: keep the newest results that fit."""
        if self.states >> (window + 1):
            self.states = self.states & ((1 << window) - 1) | 1 << window

    def __len__(self) -> int:
        return self.states.bit_length() - 1


class FlappingGate:
    """Per-target flapping state, and the hold on a flapping target's notifications.

    `observe` runs on the event loop (each conclusive result), `submit` on the rule engine's
    threads: one lock guards both. `forward` is the notifier's submit."""

    def __init__(self, config: FlappingConfig, forward: Callable[[list[Alert]], None]) -> None:
        self.config = config
        self._forward = forward
        self._lock = threading.Lock()
        self._targets: dict[str, _TargetFlaps] = {}
        self._weights = _weights(config.window)
        self.notices = 0  # notices sent (started + ended), for tests and the log

    def configure(self, config: FlappingConfig) -> None:
        """A reload: a new window keeps each target's newest results that fit; turning detection
        off ends every flapping (notices resolved, held alerts sent)."""
        with self._lock:
            if config.window != self.config.window:
                for flaps in self._targets.values():
                    flaps.keep(config.window)
                self._weights = _weights(config.window)
            self.config = config
        if not config.enabled:
            for name in list(self._targets):
                self._end(name)

    def flapping(self, name: str) -> bool:
        flaps = self._targets.get(name)
        return flaps is not None and flaps.flapping

    def forget(self, name: str) -> None:
        """The target was removed: its flapping ends (its notice resolves, held alerts go out)."""
        self._end(name)
        with self._lock:
            self._targets.pop(name, None)

    # ---------------------------------------------------------------- results

    def observe(self, target: Target, up: bool) -> bool:
        """Record one conclusive result; start or end the target's flapping. Returns whether it flaps."""
        out, ending = [], False
        with self._lock:
            config = self.config  # read with the weights: a reload changes both
            flaps = self._targets.get(target.name)
            if flaps is None:
                flaps = self._targets[target.name] = _TargetFlaps()
            flaps.append(up, config.window)
            if not config.enabled:
                return False
            flaps.percent = _percent_of_bits(flaps.states, config.window, self._weights)
            now = time.monotonic()
            if not flaps.flapping and flaps.percent > config.high:
                flaps.flapping, flaps.kept_alive = True, now
                flaps.notice = self._notice(target, flaps)
                out.append(flaps.notice)
                self.notices += 1
                log.warning("target %s is flapping (%.0f%% state changes in its last %d results): its alerts "
                            "are held until it stops", target.name, flaps.percent, len(flaps))
            elif flaps.flapping and flaps.percent < config.low:
                ending = True
            elif flaps.flapping and now - flaps.kept_alive >= KEEP_ALIVE_EVERY:
                flaps.kept_alive = now
                out += self._standing(flaps)
        if ending:
            self._end(target.name)
        elif out:
            self._forward(out)
        return self.flapping(target.name)

    def _end(self, name: str) -> None:
        """The flapping of `name` ends: resolve its notice, send each held alert's latest state."""
        with self._lock:
            flaps = self._targets.get(name)
            if flaps is None or not flaps.flapping:
                return
            flaps.flapping = False
            out = []
            if flaps.notice is not None:
                out.append(flaps.notice.resolved(datetime.now(timezone.utc)))
                flaps.notice = None
                self.notices += 1
            passed = flaps.passed if flaps.passed is not None else {}
            for fp, alert in (flaps.held or {}).items():
                previous = passed.get(fp)
                if alert.firing or (previous is not None and previous.firing):
                    out.append(alert)
                    if alert.firing:
                        passed[fp] = alert
                    else:
                        passed.pop(fp, None)
            flaps.held = None
            flaps.passed = passed or None
            log.info("target %s stopped flapping (%.0f%%): its alerts are sent again", name, flaps.percent)
        self._forward(out)

    # ---------------------------------------------------------------- alerts from the rules

    def submit(self, alerts: list[Alert]) -> None:
        """The rule engine's alerts: a flapping target's are held, the others go on. A rule's
        TargetFlapping alert (the shipped rule, for Prometheus) is dropped: the gate sends
        that alert itself, at the moment the flapping starts and ends."""
        out = []
        with self._lock:
            for alert in alerts:
                flaps = self._targets.get(alert.labels.get("target", ""))
                if flaps is None:
                    out.append(alert)
                elif alert.labels.get("alertname") == NOTICE_ALERTNAME and self.config.enabled:
                    continue  # the shipped rule's copy of the notice this gate sends itself
                elif flaps.flapping:
                    if flaps.held is None:
                        flaps.held = {}
                    flaps.held[alert.fingerprint] = alert
                else:
                    out.append(alert)
                    if alert.firing:
                        if flaps.passed is None:
                            flaps.passed = {}
                        flaps.passed[alert.fingerprint] = alert
                    elif flaps.passed is not None:  # what the notifier knows as resolved needs no memory
                        flaps.passed.pop(alert.fingerprint, None)
                        if not flaps.passed:
                            flaps.passed = None
        if out:
            self._forward(out)

    # ---------------------------------------------------------------- notices

    def _notice(self, target: Target, flaps: _TargetFlaps) -> Alert:
        name, window = target.name, self.config.window
        return Alert(
            labels={"alertname": NOTICE_ALERTNAME, "target": name, **target.labels, "severity": "warning"},
            annotations={
                "summary": f"Target {name} is flapping",
                "description": (f"{name} changed state in {flaps.percent:.0f}% of its last {window} results "
                                f"(weighted; flapping above {self.config.high:g}%, until below "
                                f"{self.config.low:g}%). Its alerts are not sent until it stops flapping."),
            },
            starts_at=datetime.now(timezone.utc))

    def _standing(self, flaps: _TargetFlaps) -> list[Alert]:
        """What the receivers must keep hearing while the target flaps: its notice and the
        alerts notified as firing before (re-sent unchanged, valid a few minutes more)."""
        until = datetime.now(timezone.utc) + VALID_FOR
        standing = [a for a in (flaps.passed or {}).values() if a.firing]
        if flaps.notice is not None:
            standing.append(flaps.notice)
        return [replace(a, ends_at=until) for a in standing]
