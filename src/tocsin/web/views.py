"""What the listener shows: /metrics, the JSON API (/api/v1/targets, and the
history API) and the status pages (`tocsin.statuspage`).

The views read the running daemon through a few narrow interfaces (the scheduler's target
table, the rule manager's active alerts, the count of targets up, the metric renderers),
never through the Daemon itself: what a page can see is written down here, and a view
cannot change what it shows. Every text a view serves passes through `redaction`: a probe
URL's password is shown as `<secret>`, and so is any secret a message happens to carry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from typing import Any, Protocol

from ..history import HistoryRecorder
from ..redaction import redact
from ..statuspage.config import StatusPageConfig
from ..statuspage.model import AlertTable, Sources, TargetTable  # what views and pages read alike
from ..statuspage.pages import StatusPages
from .routes import ApiError, Response


class UpCount(Protocol):
    """How many targets are up, as the daemon counts them (`ServiceStatus`)."""

    @property
    def up(self) -> int: ...


class WebViews:
    """The listener's `Pages`, over the parts of the daemon they read."""

    def __init__(self, targets: TargetTable, alerts: AlertTable, counts: UpCount,
                 metrics: Sequence[Callable[[], str | Iterable[str]]], history: HistoryRecorder,
                 status_page: Callable[[], StatusPageConfig] = StatusPageConfig,
                 muting: Callable[[], dict[str, list[dict[str, Any]]]] | None = None) -> None:
        self._targets = targets
        self._alerts = alerts
        self._counts = counts
        self._metrics = metrics  # rendered one after the other into /metrics
        self.pages = StatusPages(Sources(targets, alerts, history, status_page,
                                         reload_ok=lambda: bool(getattr(counts, "last_reload_ok", True)),
                                         silences=None if muting is None else lambda: muting()["silences"],
                                         acks=None if muting is None else lambda: muting()["acks"]))

    def render_metrics(self) -> list[bytes]:
        """Each source's text, or each of its parts (the probe series give one per family),
        redacted and encoded one at a time."""
        parts: list[bytes] = []
        for render in self._metrics:
            out = render()
            parts += [redact(text).encode() for text in ([out] if isinstance(out, str) else out) if text]
        return parts

    def api(self, path: str, query: str = "") -> Any | None:
        if path == "targets":
            return targets_view(self._targets)
        answer = self.pages.api(path, query)
        if answer is None:
            return None
        status, value = answer
        return _redacted(value) if status == 200 else ApiError(status, redact(str(value)))

    def page(self, path: str, query: str) -> Response | None:
        page = self.pages.page(path, query)
        if page is None:
            return None
        body = page.body.encode() if isinstance(page.body, str) else page.body
        return Response(page.status, body, page.content_type, list(page.headers))

    def is_public(self, path: str) -> bool:
        return self.pages.is_public(path)


def _redacted(value: Any) -> Any:
    """`value` (JSON-like) with every string, keys included, passed through `redact`."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {_redacted(k): _redacted(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redacted(v) for v in value]
    return value


def targets_view(table: TargetTable) -> list[dict[str, Any]]:
    """/api/v1/targets: every target with its configuration, health, last result and next run.

    The endpoint is the kind's text for people (a URL's password already hidden); every
    string is redacted all the same, as a probe's message may quote what it was sent.
    """
    out = []
    for name, state in list(table.states.items()):
        target, result = state.target, state.last_result
        next_run = table.next_run(name)
        out.append({
            "name": name, "kind": target.kind,
            "endpoint": target.endpoint,
            "labels": target.labels, "interval_seconds": target.interval, "current_interval_seconds": state.interval,
            "timeout_seconds": target.timeout, "health": _health(state.maintenance, result),
            "flapping": state.flapping,
            "last_run": _iso(result.started_at) if result else None,
            "next_run": next_run.isoformat() if next_run else None,
            "last_result": None if result is None else {
                "success": result.success, "reason": result.reason or None, "message": result.message or None,
                "duration_seconds": round(result.duration, 6), "attempts": result.attempts,
                "first_attempt_success": result.first_attempt_success, "correlation_id": result.correlation_id,
                "status_code": int(result.facts["http_status_code"]) if "http_status_code" in result.facts else None,
            },
        })
    return _redacted(out)


def _health(maintenance: bool, result: Any) -> str:
    if maintenance:
        return "maintenance"  # not probed now: a planned outage is not "down"
    return "unknown" if result is None else "up" if result.success else "down"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()
