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
        self._notifier = sdnotify.SystemdNotifier() if os.environ.get("NOTIFY_SOCKET") else None
        if self._notifier is not None and self._notifier.socket is not None:
            # A reader that stops reading must never block the event loop: drop, don't wait.
            self._notifier.socket.setblocking(False)
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
        """How often to send WATCHDOG=1: a third of WatchdogSec (systemd asks for at least
        twice per period; a third leaves room for a busy loop), or None without a watchdog
        for this process (WATCHDOG_USEC unset, or WATCHDOG_PID naming another process)."""
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        if not usec or (pid and pid.isdigit() and int(pid) != os.getpid()):
            return None
        try:
            seconds = int(usec) / 1e6
        except ValueError:
            return None
        return seconds / 3 if seconds > 0 else None
