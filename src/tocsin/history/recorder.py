"""The history recorder: probe results in, rollups, incidents and alert states out to SQLite.

The probe path only appends the result to a queue (`record`, a deque append: no lock, no
I/O). A thread folds the queue once a second into the open minute, hour and day of each
target, the in-memory summaries the overview reads and the incident log, then writes every
changed row in one transaction. A `kill -9` therefore loses at most the last second; a
restart reads the open spans back and keeps adding to them. Each flush also prunes a few
targets' expired rows, so pruning never takes one long pause.

Alert states are polled from the rule engine at each flush (not pushed): the recorder sees
what the API shows, records each change once, and ties firing alerts that carry a `target`
label to that target's open incident.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ..notify.alert import fingerprint
from ..probes import ProbeResult
from ..redaction import redact
from ..statedb import StateWriteError
from .config import HistoryConfig
from .reasons import reason_words
from .rollup import DOWN, MAINTENANCE, UP, Rollup, bucket_of
from .store import DAY, HOUR, MINUTE, Batch, HistoryDB, Incident
from .summary import DAYS, HOURS, TargetSummary

log = logging.getLogger("tocsin.history")

FLUSH_INTERVAL = 1.0
IDLE_POLL_SECONDS = 60.0  # alert states are read at least this often when no result arrives
# Every target's expired rows are pruned at least this often: a few targets per flush, each
# one range delete per table (rows expire by the minute; ten more minutes of them cost little).
PRUNE_PASS_SECONDS = 600.0
_STATES = (UP, DOWN, MAINTENANCE)


class HistoryRecorder:
    def __init__(self, path: str, config: HistoryConfig | None = None,
                 alerts: Callable[[], list[dict[str, Any]]] | None = None,
                 clock: Callable[[], float] = time.time, load_in_background: bool = False) -> None:
        self.config = config or HistoryConfig()
        self.db = HistoryDB(path)
        self._alerts = alerts
        self._clock = clock
        self._inbox: collections.deque[tuple[str, ProbeResult, float, str | None]] = collections.deque()
        self._lock = threading.Lock()  # the summaries and open incidents, against the readers
        self._open: dict[tuple[int, str], tuple[int, Rollup]] = {}
        self._dirty: set[tuple[int, str]] = set()
        self._closed: list[tuple[int, str, int, Rollup, int | None]] = []  # spans ended since the last write
        self._through: dict[str, int] = {}  # the minute from which a target's hour and day rows lack results
        self.summaries: dict[str, TargetSummary] = {}
        self.open_incidents: dict[str, Incident] = {}
        self._dirty_incidents: dict[int, Incident] = {}
        self._alert_states: dict[str, str] = {}
        self._alert_events: list[tuple[str, float, str, str, str]] = []
        self._prune_cursor = 0
        self._prune_credit = 0.0
        self._pruned_at = 0.0
        self._names: list[str] = []  # every target seen, in the order pruning visits them
        self._last_log_prune = 0.0
        self._stop = threading.Event()
        self._wake = threading.Event()  # results (or a nudge) wait to be written
        self._thread: threading.Thread | None = None
        # Reading back the last day takes a while with thousands of targets: the daemon has its
        # thread do it (results queue meanwhile, pages show no history for those seconds), so
        # start-up does not wait for it.
        self._loaded = threading.Event()
        if not load_in_background:
            self._load()
            self._loaded.set()

    # ------------------------------------------------------------ lifecycle

    def _load(self) -> None:
        now = self._clock()
        minute = int(now // MINUTE) * MINUTE
        self._repair(minute)
        for span in (HOUR, DAY):
            start = int(now // span) * span
            for name, rollup in self.db.rollups_at(span, start).items():
                self._open[(span, name)] = (start, rollup)
        for name, rollup in self.db.rollups_at(MINUTE, minute).items():
            self._open[(MINUTE, name)] = (minute, rollup)
        for name, t, rollup in self.db.recent(HOUR, int(now // HOUR - HOURS + 1) * HOUR):
            self._summary(name).add_hour(t // HOUR, rollup)
        for name, t, seconds, down, maintenance in self.db.recent_times(DAY, int(now // DAY - DAYS + 1) * DAY):
            self._summary(name).add_day_times(t // DAY, seconds, down, maintenance)
        for (span, name), (t, rollup) in list(self._open.items()):
            if span == MINUTE:
                self._summary(name).add(t // HOUR, t // DAY, rollup)  # the open minute is in no hour row yet
        self._through = dict.fromkeys(self.db.names(), minute)
        self.open_incidents = {i.target: i for i in self.db.open_incidents()}
        self._next_incident = self.db.last_incident_id() + 1
        self._alert_states = self.db.latest_alert_states()

    def _repair(self, minute: int) -> None:
        """Add to the hour and day rows the closed minutes written after them.

        Hour and day rows are written when one of the target's minutes closes (`through`
        says up to which minute they hold), minute rows every second: after a kill -9 the
        minutes since `through` are in the minute table only, and are added back here."""
        hours, days = self.db.latest(HOUR), self.db.latest(DAY)
        batch = Batch()
        for name in self.db.names():
            since = min((row[2] if row[2] is not None else row[0]) for row in (hours.get(name), days.get(name))
                        if row is not None) if name in hours or name in days else 0
            missing = [(t, r) for t, r in self.db.minutes_from(name, since) if t < minute]
            if not missing:
                continue
            for span, latest in ((HOUR, hours.get(name)), (DAY, days.get(name))):
                open_t, open_rollup = (latest[0], latest[1]) if latest else (-1, Rollup())
                row_through = (latest[2] if latest[2] is not None else latest[0]) if latest else 0
                for t, rollup in missing:
                    if t < row_through:
                        continue  # already in the row
                    start = int(t // span) * span
                    if start > open_t:
                        if open_t >= 0:
                            batch.rollups.append((span, name, open_t, open_rollup, minute))
                        open_t, open_rollup = start, Rollup()
                    open_rollup.merge(rollup)
                batch.rollups.append((span, name, open_t, open_rollup, minute))
        if batch.rollups:
            self.db.write(batch)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="history", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()
        self.db.close()

    def nudge(self) -> None:
        """Something else changed (an alert was sent): flush soon, even without a new result."""
        self._wake.set()

    def _run(self) -> None:
        """Sleep until a result arrives (or a nudge, or IDLE_POLL_SECONDS), then write at most
        once a second: an idle daemon's history thread does not wake every second."""
        if not self._loaded.is_set():
            try:
                with self._lock:
                    self._load()
            except Exception:  # noqa: BLE001 - history from now on is better than none
                log.exception("reading the history back failed; recording from now on")
            self._loaded.set()
        last = 0.0
        failing = False
        while not self._stop.is_set():
            self._wake.wait(IDLE_POLL_SECONDS)
            self._wake.clear()
            delay = last + FLUSH_INTERVAL - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            last = time.monotonic()
            try:
                self.flush()
                if failing:
                    log.info("history written again")
                failing = False
            except StateWriteError as exc:
                if not failing:  # once per streak: a full disk must not fill the log too
                    log.error("history not written, retrying every second: %s", exc)
                failing = True
                self._wake.set()  # what was not written is tried again at the next second
            except Exception:  # noqa: BLE001 - the history must not stop for one bad flush
                log.exception("history flush failed")

    # ------------------------------------------------------------ the probe path

    def record(self, target: str, result: ProbeResult, interval: float, state: str | None = None) -> None:
        """Queue one result that stands for `interval` seconds. `state` overrides up/down
        (MAINTENANCE: a maintenance window, counted apart from uptime)."""
        self._inbox.append((target, result, interval, state))
        if not self._wake.is_set():  # no lock taken while a wake-up is already pending
            self._wake.set()

    # ------------------------------------------------------------ the writer

    def flush(self) -> None:
        if not self._loaded.is_set():
            return  # the thread reads the history back first; results wait in the queue
        now = self._clock()
        with self._lock:
            while self._inbox:
                self._fold(*self._inbox.popleft())
            self._poll_alerts(now)
        batch = Batch(
            rollups=self._closed + [(span, name, *self._open[(span, name)], None if span == MINUTE else
                                     self._through.get(name)) for span, name in self._dirty],
            incidents=list(self._dirty_incidents.values()),
            alert_events=self._alert_events,
            prune=self._prune_slice(now),
        )
        if now - self._last_log_prune > 3600:
            batch.prune_logs_before = now - self.config.hours
        dirty, self._dirty, closed, self._closed = self._dirty, set(), self._closed, []
        self._dirty_incidents, self._alert_events = {}, []
        if not (batch.rollups or batch.incidents or batch.alert_events or batch.prune):
            return
        try:
            self.db.write(batch)
        except StateWriteError:
            self._dirty |= dirty  # the rows are whole totals: writing them later loses nothing
            self._closed = closed + self._closed
            for incident in batch.incidents:
                self._dirty_incidents.setdefault(incident.id, incident)
            self._alert_events = batch.alert_events + self._alert_events
            raise
        if batch.prune_logs_before is not None:
            self._last_log_prune = now

    def _fold(self, name: str, result: ProbeResult, weight: float, state: str | None) -> None:
        state = state if state in _STATES else UP if result.success else DOWN
        t = result.started_at
        words = reason_words(result)
        bucket = bucket_of(result.duration)
        minute = int(t // MINUTE) * MINUTE
        key = (MINUTE, name)
        current = self._open.get(key)
        if current is None or current[0] < minute:
            if current is not None:
                self._close_minute(name, current, minute)
            current = (minute, Rollup())
            self._open[key] = current
        current[1].add(state, weight, result.duration, words, bucket)  # a late result counts in the open minute
        self._dirty.add(key)
        self._summary(name).add_result(int(t // HOUR), int(t // DAY), state, weight, bucket)
        incident = self.open_incidents.get(name)
        if state == DOWN and incident is None:
            incident = Incident(self._next_incident, name, t, None, words, redact(result.message or "")[:500])
            self._next_incident += 1
            self.open_incidents[name] = incident
            self._dirty_incidents[incident.id] = incident
        elif state == UP and incident is not None:
            incident.end = t
            del self.open_incidents[name]
            self._dirty_incidents[incident.id] = incident

    def _close_minute(self, name: str, closed: tuple[int, Rollup], next_minute: int) -> None:
        """A minute of `name` is over: add it to its hour and day, whose rows are written now.

        Hours and days are written once a minute per target, not at every result: a flush
        then touches a third of the pages. The minute row, written every second, covers the
        rest until `_repair` adds it back after a crash."""
        if (MINUTE, name) in self._dirty:
            self._closed.append((MINUTE, name, *closed, None))  # its last results are not written yet
        t, rollup = closed
        for span in (HOUR, DAY):
            start = int(t // span) * span
            key = (span, name)
            current = self._open.get(key)
            if current is None or current[0] < start:
                if current is not None and key in self._dirty:
                    self._closed.append((span, name, *current, next_minute))
                current = (start, Rollup())
                self._open[key] = current
            current[1].merge(rollup)
            self._dirty.add(key)
        self._through[name] = next_minute

    def open_minute(self, name: str) -> tuple[int, Rollup] | None:
        """The minute still open for `name` (its results are in no hour or day row yet), a copy."""
        with self._lock:
            current = self._open.get((MINUTE, name))
            if current is None:
                return None
            copy = Rollup()
            copy.merge(current[1])
            return current[0], copy

    def _summary(self, name: str) -> TargetSummary:
        summary = self.summaries.get(name)
        if summary is None:
            summary = self.summaries[name] = TargetSummary()
            self._names.append(name)
        return summary

    def _poll_alerts(self, now: float) -> None:
        if self._alerts is None:
            return
        seen: dict[str, str] = {}
        for alert in self._alerts():
            labels = alert.get("labels", {})
            fp = fingerprint(labels)
            state = alert.get("state", "firing")
            seen[fp] = state
            if self._alert_states.get(fp) != state:
                self._alert_events.append((fp, now, state, labels.get("alertname", ""),
                                           _labels_json(labels)))
                incident = self.open_incidents.get(labels.get("target", ""))
                name = labels.get("alertname", "")
                if state == "firing" and incident is not None and name not in incident.alerts:
                    incident.alerts.append(name)
                    self._dirty_incidents[incident.id] = incident
        for fp in set(self._alert_states) - set(seen):
            self._alert_events.append((fp, now, "inactive", "", "{}"))
        self._alert_states = seen

    def _prune_slice(self, now: float) -> list[tuple[int, str, int]]:
        """The next few targets' expired rows: every target once per PRUNE_PASS_SECONDS, spread
        over the time (with 200 targets, one target every third second)."""
        names = self._names
        if not names:
            return []
        elapsed = max(0.0, now - self._pruned_at) if self._pruned_at else FLUSH_INTERVAL
        self._pruned_at = now
        self._prune_credit = min(self._prune_credit + len(names) * elapsed / PRUNE_PASS_SECONDS, len(names))
        out = []
        while self._prune_credit >= 1:
            self._prune_credit -= 1
            name = names[self._prune_cursor % len(names)]
            self._prune_cursor += 1
            out.append((MINUTE, name, int(now - self.config.minutes)))
            out.append((HOUR, name, int(now - self.config.hours)))
            out.append((DAY, name, int(now - self.config.hours)))
        return out

    # ------------------------------------------------------------ reading (listener threads)

    def summary(self, name: str) -> TargetSummary | None:
        return self.summaries.get(name)

    def window(self, name: str, span: str, now: float | None = None) -> Rollup:
        """The 24h / 7d / 30d rollup the overview shows (from memory)."""
        summary = self.summaries.get(name)
        with self._lock:
            return summary.window(self._clock() if now is None else now, span) if summary else Rollup()

    def open_incident(self, name: str) -> Incident | None:
        return self.open_incidents.get(name)

    def now(self) -> float:
        return self._clock()


def _labels_json(labels: dict[str, str]) -> str:
    return json.dumps(labels, sort_keys=True)
