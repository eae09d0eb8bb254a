"""sd_notify messages to systemd (READY, STATUS, WATCHDOG, RELOADING, STOPPING).

Without NOTIFY_SOCKET every call is a no-op, so the daemon runs the same way in a
terminal, a test, or a container.
"""

from __future__ import annotations

import os
import time

import sdnotify


class ServiceNotifier:
    def __init__(self) -> None:
        self.enabled = bool(os.environ.get("NOTIFY_SOCKET"))
        self._notifier = sdnotify.SystemdNotifier() if self.enabled else None
        self._status = ""

    def _send(self, message: str) -> None:
        if self._notifier is not None:
            self._notifier.notify(message)

    def ready(self) -> None:
        self._send("READY=1")

    def reloading(self) -> None:
        # systemd wants the monotonic time with RELOADING=1 (CLOCK_MONOTONIC, microseconds).
        self._send(f"RELOADING=1\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def stopping(self) -> None:
        self._send("STOPPING=1")

    def status(self, text: str) -> None:
        if text != self._status:
            self._status = text
            self._send(f"STATUS={text}")

    def watchdog(self) -> None:
        self._send("WATCHDOG=1")

    @staticmethod
    def watchdog_interval() -> float | None:
        """Half of systemd's WatchdogSec for this process, or None when there is no watchdog."""
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        if not usec or (pid and pid.isdigit() and int(pid) != os.getpid()):
            return None
        try:
            return int(usec) / 1e6 / 2
        except ValueError:
            return None
