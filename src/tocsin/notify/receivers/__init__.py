"""Receiver kinds: one module each, one interface (`base.Receiver`), one registry.

Adding a kind = a module with a config model and a `Receiver` subclass, plus a line here.
"""

from __future__ import annotations

from .alertmanager import AlertmanagerReceiver
from .base import Receiver, ReceiverOptions
from .email import EmailReceiver
from .log import LogReceiver
from .pagerduty import PagerDutyReceiver
from .slack import SlackReceiver
from .webhook import WebhookReceiver

KINDS: dict[str, type[Receiver]] = {cls.kind: cls for cls in (
    LogReceiver, WebhookReceiver, SlackReceiver, PagerDutyReceiver, EmailReceiver, AlertmanagerReceiver)}

# Every kind satisfies the interface (checked at import, like a compile-time list).
for _cls in KINDS.values():
    assert issubclass(_cls.config_model, ReceiverOptions) and _cls.payload is not Receiver.payload
    assert _cls.deliver is not Receiver.deliver

__all__ = ["KINDS", "Receiver", "ReceiverOptions"]
