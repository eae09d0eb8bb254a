"""Reading the history back: a target's series over a range at a step, its uptime figures,
and the incident log — the JSON of `/api/v1/targets/<name>/history` and `/api/v1/incidents`,
and what the target page draws.

The 24h / 7d / 30d uptime comes from the recorder's in-memory summary, the same numbers the
overview prints, so a person comparing the page with the API sees the same figure.
"""

from __future__ import annotations

from typing import Any

from ..units import parse_duration
from .recorder import HistoryRecorder
from .rollup import Rollup, total
from .store import DAY, HOUR, MINUTE

MAX_POINTS = 5000
UPTIME_SPANS = ("24h", "7d", "30d")


class HistoryQueryError(ValueError):
    """A range or step the history cannot answer; the message says why."""


def span_for(step: int) -> int:
    """The stored resolution a step is summed from."""
    if step % DAY == 0:
        return DAY
    if step % HOUR == 0:
        return HOUR
    if step % MINUTE == 0:
        return MINUTE
    raise HistoryQueryError(f"step {step}s: give a whole number of minutes")


def parse_range(range_text: str, step_text: str | None, recorder: HistoryRecorder) -> tuple[int, int]:
    try:
        range_s = int(parse_duration(range_text))
        step_s = int(parse_duration(step_text)) if step_text else (MINUTE if range_s <= 6 * HOUR else HOUR)
    except ValueError as exc:
        raise HistoryQueryError(str(exc)) from None
    if range_s <= 0 or step_s <= 0:
        raise HistoryQueryError("range and step must be positive")
    if range_s > recorder.config.hours:
        raise HistoryQueryError(f"range {range_text}: longer than the history kept ({int(recorder.config.hours)}s)")
    if span_for(step_s) == MINUTE and range_s > recorder.config.minutes:
        raise HistoryQueryError(f"range {range_text} at step {step_text}: minutes are kept only "
                                f"{int(recorder.config.minutes)}s; use a step of 1h or more")
    if range_s // step_s > MAX_POINTS:
        raise HistoryQueryError(f"more than {MAX_POINTS} points; use a longer step")
    return range_s, step_s


def series(recorder: HistoryRecorder, name: str, range_s: int, step_s: int,
           now: float | None = None) -> list[tuple[int, Rollup]]:
    """One rollup per step, oldest first; the last step is the current, partial one."""
    now = recorder.now() if now is None else now
    span = span_for(step_s)
    end = int(now // step_s) * step_s
    start = end - range_s + step_s
    points = [(t, Rollup()) for t in range(start, end + 1, step_s)]
    for t, rollup in recorder.db.rollups(span, name, start, end + step_s - 1):
        points[(t - start) // step_s][1].merge(rollup)
    open_minute = recorder.open_minute(name) if span != MINUTE else None
    if open_minute is not None and start <= open_minute[0] < end + step_s:
        points[(open_minute[0] - start) // step_s][1].merge(open_minute[1])  # in no hour row yet
    return points


def point_view(t: int, rollup: Rollup) -> dict[str, Any]:
    uptime, mean, p95 = rollup.uptime(), rollup.mean_duration(), rollup.quantile(0.95)
    return {
        "t": t, "count": rollup.count, "failures": rollup.failures,
        "uptime": None if uptime is None else round(uptime, 6),
        "down_seconds": round(rollup.down_seconds, 3), "maintenance_seconds": round(rollup.maintenance_seconds, 3),
        "mean_seconds": None if mean is None else round(mean, 6),
        "p50_seconds": rollup.quantile(0.5), "p95_seconds": p95,
        "reasons": dict(rollup.reasons),
    }


def uptimes(recorder: HistoryRecorder, name: str, now: float | None = None) -> dict[str, float | None]:
    out = {}
    for span in UPTIME_SPANS:
        uptime = recorder.window(name, span, now).uptime()
        out[span] = None if uptime is None else round(uptime, 6)
    return out


def history_view(recorder: HistoryRecorder, name: str, range_text: str, step_text: str | None) -> dict[str, Any]:
    range_s, step_s = parse_range(range_text, step_text, recorder)
    now = recorder.now()
    points = series(recorder, name, range_s, step_s, now)
    whole = total([rollup for _, rollup in points])
    return {
        "target": name, "range_seconds": range_s, "step_seconds": step_s,
        "uptime": uptimes(recorder, name, now),
        "total": point_view(points[0][0], whole),
        "points": [point_view(t, rollup) for t, rollup in points],
    }


def incidents_view(recorder: HistoryRecorder, name: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    now = recorder.now()
    return [incident.view(now) for incident in recorder.db.incidents(name, limit=limit)]
