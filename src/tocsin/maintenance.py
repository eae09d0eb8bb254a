"""Per-target maintenance windows: a planned outage is not probed, and not shown as down.

A target's `maintenance:` lists time intervals in Alertmanager's grammar (`timeintervals.py`).
While the time is inside one, the scheduler skips the target's probes (users ask not to
see a red bar for a planned outage, and not to load a service being worked on); the API
and the status page say "maintenance", and `tocsin_target_maintenance` is 1, which the
shipped TargetDown rule honours. Its last result is kept as it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .probes.result import ProbeResult

if TYPE_CHECKING:
    from .scheduler import TargetState


def in_window(windows: Any, instant: datetime | None = None) -> bool:
    """Whether `instant` (default: now) is inside any of a target's maintenance windows."""
    if not windows:
        return False
    instant = instant or datetime.now(timezone.utc)
    return any(window.contains(instant) for window in windows)


def skip_run(state: "TargetState", changed: Callable[["TargetState", bool], None] | None) -> bool:
    """Called at each scheduled run: True when the probe is to be skipped. Each skipped run
    counts as started (a target in maintenance is not overdue) and is reported to `changed`
    (which keeps the exported state fresh); so is the end of the window, once."""
    inside = in_window(getattr(state.target, "maintenance", None))
    if inside:
        state.last_started, state.overdue = time.monotonic(), False
    if (inside or state.maintenance) and changed is not None:
        changed(state, inside)
    state.maintenance = inside
    return inside


def maintenance_result(target: Any) -> ProbeResult:
    """The stand-in for a run skipped in a window, for the history (which counts it apart from uptime)."""
    return ProbeResult(target=target.name, kind=target.kind, success=False, reason="maintenance",
                       message="inside a maintenance window: not probed", duration=0.0, attempts=0,
                       first_attempt_success=False, correlation_id="", started_at=time.time(), timeout=target.timeout)
