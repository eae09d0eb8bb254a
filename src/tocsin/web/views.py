"""What the listener shows: /metrics, the JSON API (/api/v1/targets, /api/v1/alerts) and
the HTML status page.

The views read the running daemon through a few narrow interfaces (the scheduler's target
table, the rule manager's active alerts, the count of targets up, the metric renderers),
never through the Daemon itself: what a page can see is written down here, and a view
cannot change what it shows. Every text a view serves passes through `redaction`: a probe
URL's password is shown as `<secret>`, and so is any secret a message happens to carry.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Protocol

from ..redaction import redact
from ..scheduler import TargetState


class TargetTable(Protocol):
    """What the views read of the scheduler: each target's state, and when it runs next."""

    @property
    def states(self) -> Mapping[str, TargetState]: ...
    def next_run(self, name: str) -> datetime | None: ...


class AlertTable(Protocol):
    """What the views read of the rule manager."""

    def active_alerts(self) -> list[dict[str, Any]]: ...


class UpCount(Protocol):
    """How many targets are up, as the daemon counts them (`ServiceStatus`)."""

    @property
    def up(self) -> int: ...


class WebViews:
    """The listener's `Pages`, over the parts of the daemon they read."""

    def __init__(self, targets: TargetTable, alerts: AlertTable, counts: UpCount,
                 metrics: Sequence[Callable[[], str]]) -> None:
        self._targets = targets
        self._alerts = alerts
        self._counts = counts
        self._metrics = metrics  # rendered one after the other into /metrics

    def render_metrics(self) -> bytes:
        return redact("".join(render() for render in self._metrics)).encode()

    def api(self, path: str) -> Any | None:
        if path == "targets":
            return targets_view(self._targets)
        if path == "alerts":
            return _redacted(self._alerts.active_alerts())
        return None

    def status_page(self) -> str:
        rows = []
        for item in targets_view(self._targets):
            result = item["last_result"] or {}
            rows.append("<tr class='{h}'><td>{n}</td><td>{k}</td><td>{e}</td><td>{h}{f}</td><td>{r}</td>"
                        "<td>{d}</td><td>{l}</td></tr>".format(
                            h=item["health"], f=" (flapping)" if item["flapping"] else "", n=html.escape(item["name"]), k=item["kind"],
                            e=html.escape(item["endpoint"]), r=html.escape(str(result.get("reason") or "")),
                            d=f"{result['duration_seconds']:.3f}s" if result else "", l=item["last_run"] or ""))
        return _STATUS_PAGE.format(rows="\n".join(rows), count=len(rows), up=self._counts.up)


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


_STATUS_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>tocsin</title>
<meta http-equiv="refresh" content="10">
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{padding:.3em .8em;
border-bottom:1px solid #ddd;text-align:left}}.up td:nth-child(4){{color:#080}}.down td:nth-child(4){{color:#c00}}</style>
</head><body><h1>tocsin</h1><p>{count} targets, {up} up. <a href="/metrics">metrics</a> ·
<a href="/api/v1/targets">targets API</a></p><table><tr><th>target</th><th>kind</th><th>endpoint</th><th>health</th>
<th>reason</th><th>duration</th><th>last run</th></tr>
{rows}
</table></body></html>
"""
