"""How many targets are up and down, and the one-line STATUS systemd shows for the service.

`systemctl status tocsin` then reads e.g. "12 targets: 11 up, 1 down", with a note when
the last reload failed and the previous configuration still runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from prometheus_client import Gauge

from .probes import ProbeResult
from .scheduler import TargetState
from .systemd_notify import ServiceNotifier

log = logging.getLogger("tocsin")


class ServiceStatus:
    def __init__(self, systemd: ServiceNotifier, targets_up: Gauge) -> None:
        self._systemd = systemd
        self._targets_up = targets_up  # the tocsin_targets_up gauge
        self.targets = 0
        self.up = 0    # targets whose last probe succeeded / failed, kept by observe():
        self.down = 0  # counting them per change would be O(targets) per change
        self.last_reload_ok = True
        self._status_due = False

    def recount(self, states: Mapping[str, TargetState]) -> None:
        """Count afresh, after the set of targets changed (start, reload)."""
        self.targets = len(states)
        self.up = sum(1 for s in states.values() if s.up)
        self.down = sum(1 for s in states.values() if s.up is False)
        self._targets_up.set(self.up)

    def observe(self, result: ProbeResult, previous: ProbeResult | None) -> None:
        """A probe ended (on the event loop): count and log the target's change between up and down."""
        was_up = previous.success if previous is not None else None
        if result.success != was_up:
            self.up += (1 if result.success else 0) - (1 if was_up else 0)
            self.down += (0 if result.success else 1) - (1 if was_up is False else 0)
            self._targets_up.set(self.up)
            self._update_soon()
            if result.success:
                log.info("target is up", extra={"fields": {"duration": f"{result.duration:.3f}s"}})
            else:
                log.warning("target is down: %s: %s", result.reason, result.message,
                            extra={"fields": {"reason": result.reason, "attempts": result.attempts}})
        elif not result.success:
            log.debug("probe failed: %s: %s", result.reason, result.message)

    def _update_soon(self) -> None:
        """Coalesce STATUS updates: at most one a second, however many targets change."""
        if not self._status_due:
            self._status_due = True
            asyncio.get_running_loop().call_later(1.0, self.update)

    def update(self) -> None:
        """Tell systemd the STATUS line now."""
        self._status_due = False
        text = f"{self.targets} targets: {self.up} up, {self.down} down"
        if not self.last_reload_ok:
            text += "; last reload failed, running the previous configuration"
        self._systemd.status(text)
