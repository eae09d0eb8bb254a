"""What every receiver kind shares: the interface and HTTP posting.

A receiver kind is one module with a config model and a class that validates nothing at
run time (pydantic did), builds its payload from a `Notification`, and delivers it,
raising `NotificationError` when the peer did not accept it. It never retries: the outbox
does that, and the circuit breaker decides when trying again is worth it.
"""

from __future__ import annotations

import json
import time
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, StrictBool, model_validator

from ... import redaction
from ...errors import NotificationError
from ...fields import Duration, Model
from ..notification import Notification

if TYPE_CHECKING:
    import requests

USER_AGENT = "tocsin-notify/1"


class ReceiverOptions(Model):
    """Options every kind accepts; `send_resolved`'s default differs per kind (Alertmanager's)."""

    # Alertmanager's name of a key -> tocsin's, where they differ: a receiver pasted from an
    # Alertmanager file keeps working (docs/receivers.md lists them).
    alertmanager_names: ClassVar[dict[str, str]] = {}

    send_resolved: StrictBool | None = None  # as strict as Alertmanager: the string "true" is an error
    timeout: Duration = Field(default=10.0)

    @model_validator(mode="before")
    @classmethod
    def _alertmanager_spellings(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not any(theirs in data for theirs in cls.alertmanager_names):
            return data
        out = dict(data)
        for theirs, ours in cls.alertmanager_names.items():
            if theirs in out:
                if ours in out:
                    raise ValueError(f"give {ours} or {theirs} (Alertmanager's name for it), not both")
                out[ours] = out.pop(theirs)
        return out


class Receiver:
    """The interface of a receiver kind. Subclasses set the class attributes."""

    kind: ClassVar[str]
    config_model: ClassVar[type[ReceiverOptions]]
    send_resolved_default: ClassVar[bool] = True
    # Whether alerts reach this kind through the routing tree's groups. False: the peer groups
    # them itself (Alertmanager), so it gets what the rule engine submits, one batch per submit.
    grouped: ClassVar[bool] = True

    def __init__(self, name: str, config: ReceiverOptions) -> None:
        self.name = name
        self.config = config

    @property
    def send_resolved(self) -> bool:
        value = self.config.send_resolved
        return self.send_resolved_default if value is None else value

    @property
    def timeout(self) -> float:
        return self.config.timeout or 10.0

    def targets(self) -> int:
        """How many independent peers a notification goes to (one outbox entry each)."""
        return 1

    def payload(self, n: Notification) -> Any:
        raise NotImplementedError

    def deliver(self, n: Notification) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------ helpers for HTTP kinds

    @staticmethod
    def redact(text: str) -> str:
        """`text` (an error, a peer's answer) without any secret of the configuration.

        Not only this receiver's: a peer may echo anything it was sent, and the one list of
        every secret, in every encoding, is `redaction`'s (filled when the configuration loads).
        """
        return redaction.redact(text)

    def post_json(self, url: str, body: Any, n: Notification, headers: dict[str, str] | None = None) -> requests.Response:
        """POST JSON; raise NotificationError (with secrets redacted) unless the peer answered 2xx."""
        import requests  # on the first notification: a shard that sends none never pays its 5 MiB

        all_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                       "Idempotency-Key": n.key, **(headers or {})}
        try:
            response = requests.post(url, data=json.dumps(body).encode(), headers=all_headers,
                                     timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as exc:
            raise NotificationError(self.redact(f"{type(exc).__name__}: {exc}"),
                                    {"receiver": self.name, "retryable": True}) from None
        if not 200 <= response.status_code < 300:
            snippet = self.redact(response.text[:200].strip())
            details: dict[str, Any] = {"receiver": self.name, "status_code": response.status_code}
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is not None:
                details["retry_after"] = retry_after
                snippet += f" (retry after {retry_after:g}s)"
            raise NotificationError(f"HTTP {response.status_code} from the receiver: {snippet}", details)
        return response


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or an HTTP-date); None if absent or unreadable.

    A peer that says when to come back (429, 503) is throttling us: trying sooner only
    prolongs the throttle, and the delivery lane must not ask again before then."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is GMT
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
