"""What the pages say about each target and alert, gathered once per page from the parts
the listener may read: the scheduler's table (last result, next run), the history recorder
(uptime, percentiles, day bars, flapping) and the rule engine's active alerts."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ..history import HistoryRecorder
from ..history.reasons import reason_words
from ..history.summary import DAYS, DayBar, TargetSummary
from ..notify.alert import fingerprint
from ..scheduler import TargetState
from .config import StatusPageConfig
from .svg import BarCache, uptime_bar


class TargetTable(Protocol):
    """What the pages read of the scheduler: each target's state, and when it runs next."""

    @property
    def states(self) -> Mapping[str, TargetState]: ...
    def next_run(self, name: str) -> datetime | None: ...


class AlertTable(Protocol):
    """What the pages read of the rule engine (its groups' pending and firing alerts)."""

    def active_alerts(self) -> list[dict[str, Any]]: ...


@dataclass
class Sources:
    """Everything a page reads, handed to each page function."""

    targets: TargetTable
    alerts: AlertTable
    history: HistoryRecorder
    config: Callable[[], StatusPageConfig]
    reload_ok: Callable[[], bool]
    # The active and pending silences, and the acknowledgements (notify.muting.silencing_overview);
    # None where the daemon has no silence store (a page built in a test).
    silences: Callable[[], list[dict[str, Any]]] | None = None
    acks: Callable[[], list[dict[str, Any]]] | None = None
    drawn: BarCache = field(default_factory=BarCache)  # the bars' closed days, drawn once a day


@dataclass
class TargetRow:
    name: str
    kind: str
    endpoint: str
    labels: dict[str, str]
    state: str  # up, down, flapping, unknown, maintenance
    last_check: float | None
    response: float | None
    p95: float | None
    uptime: dict[str, float | None]
    reason: str
    message: str
    cert_days: float | None
    summary: TargetSummary | None
    now: float

    @property
    def bars(self) -> list[DayBar]:
        if self.summary is None:
            return [DayBar(int(self.now // 86400 - DAYS + 1 + i) * 86400, None) for i in range(DAYS)]
        return self.summary.day_bars(self.now)

    def bar(self, drawn: BarCache) -> str:
        """The 90-day bar, its closed days from `drawn` when they have not changed."""
        label = f"uptime of {self.name} per day over 90 days"
        if self.summary is None:
            return uptime_bar(self.bars, label)
        return drawn.bar(self.name, self.summary, self.now, label)


def target_row(sources: Sources, name: str, state: TargetState, now: float) -> TargetRow:
    result = state.last_result
    history = sources.history
    windows = {span: history.window(name, span, now) for span in ("24h", "7d", "30d")}
    summary = history.summary(name)
    if state.maintenance:
        status = "maintenance"
    elif result is None:
        status = "unknown"
    elif state.flapping:  # flapping.py: Icinga's weighted state changes, with hysteresis
        status = "flapping"
    else:
        status = "up" if result.success else "down"
    expiry = result.facts.get("ssl_earliest_cert_expiry") if result else None
    return TargetRow(
        name=name, kind=state.target.kind, endpoint=state.target.endpoint, labels=dict(state.target.labels),
        state=status, last_check=result.started_at if result else None,
        response=result.duration if result else None, p95=windows["24h"].quantile(0.95),
        uptime={span: w.uptime() for span, w in windows.items()},
        reason=reason_words(result) if result else "", message=(result.message or "") if result else "",
        cert_days=(expiry - now) / 86400 if expiry else None,
        summary=summary, now=now,
    )


def target_rows(sources: Sources, only: Callable[[str], bool] | None = None) -> list[TargetRow]:
    now = time.time()
    return [target_row(sources, name, state, now) for name, state in list(sources.targets.states.items())
            if only is None or only(name)]


def grouped(rows: list[TargetRow], group_by: str | None) -> list[tuple[str, list[TargetRow]]]:
    """The rows under their `group_by` label's value (groups in name order, '' last), else one group."""
    if not group_by:
        return [("", rows)]
    groups: dict[str, list[TargetRow]] = {}
    for row in rows:
        groups.setdefault(row.labels.get(group_by, ""), []).append(row)
    return sorted(groups.items(), key=lambda item: (item[0] == "", item[0]))


def alerts_with_fingerprints(sources: Sources) -> list[dict[str, Any]]:
    """The active alerts, firing first, each with its `fingerprint` (its page's address)."""
    alerts = []
    for alert in sources.alerts.active_alerts():
        alerts.append({**alert, "fingerprint": fingerprint(alert.get("labels", {}))})
    return sorted(alerts, key=lambda a: (a.get("state") != "firing", a.get("labels", {}).get("alertname", "")))
