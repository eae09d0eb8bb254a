"""Notifications: route alerts (Alertmanager's tree), group them, and deliver them durably.

Public API: `Alert`, `Notifier`, `NotifyMetrics`, `AlertingConfig`, `send_test`.
"""

from .alert import Alert
from .config import AlertingConfig
from .metrics import NotifyMetrics
from .notifier import Notifier, send_test

__all__ = ["Alert", "AlertingConfig", "Notifier", "NotifyMetrics", "send_test"]
