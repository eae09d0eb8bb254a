"""Notifications: route alerts (Alertmanager's tree), group them, and deliver them durably.

Public API: `Alert`, `Notifier`, `NotifyMetrics`, `AlertingConfig`. Imports are lazy so the
config module can import `notify.config` without pulling in the delivery machinery.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Alert", "AlertingConfig", "Notifier", "NotifyMetrics", "send_test"]


def __getattr__(name: str) -> Any:
    if name == "Alert":
        from .alert import Alert
        return Alert
    if name == "AlertingConfig":
        from .config import AlertingConfig
        return AlertingConfig
    if name in ("Notifier", "send_test"):
        from . import notifier
        return getattr(notifier, name)
    if name == "NotifyMetrics":
        from .metrics import NotifyMetrics
        return NotifyMetrics
    raise AttributeError(name)
