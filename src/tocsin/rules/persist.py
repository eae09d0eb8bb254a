"""Persisted alert state: SQLite (WAL) under `state_dir`.

What Prometheus keeps in its TSDB as ALERTS_FOR_STATE, tocsin keeps here: for each alert of
each alerting rule its state and timers, and for each group when it was last evaluated
(the start of an outage, when the daemon comes back). A group's rows are rewritten in one
transaction only when its alerts changed, so a steady state costs one small UPDATE per
evaluation. A failed write raises `StateWriteError` (counted, its cause named): the caller
keeps its state in memory and writes it again at the next evaluation.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

from ..statedb import StateWriteError, counted_write, transaction
from .alerting import Alert, AlertState

log = logging.getLogger("tocsin.rules")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    group_key TEXT NOT NULL,
    rule TEXT NOT NULL,
    labels TEXT NOT NULL,
    annotations TEXT NOT NULL,
    state TEXT NOT NULL,
    active_at INTEGER NOT NULL,
    fired_at INTEGER NOT NULL,
    resolved_at INTEGER NOT NULL,
    last_sent_at INTEGER NOT NULL,
    keep_firing_since INTEGER NOT NULL,
    value REAL,
    PRIMARY KEY (group_key, rule, labels)
);
CREATE TABLE IF NOT EXISTS groups (
    group_key TEXT PRIMARY KEY,
    last_eval_ms INTEGER NOT NULL
);
"""


class AlertStateDB:
    """Thread-safe: written from the evaluation thread, read at start."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Private from creation, whatever the umask; SQLite gives -wal and -shm the same mode.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @counted_write
    def save_group(self, group_key: str, last_eval_ms: int,
                   alerts: Iterable[tuple[str, Alert]] | None) -> None:
        """Record the evaluation time; if `alerts` is given, replace the group's alerts with it."""
        with self._lock, transaction(self._db, "BEGIN") as db:
            db.execute("INSERT INTO groups(group_key, last_eval_ms) VALUES (?, ?) "
                       "ON CONFLICT(group_key) DO UPDATE SET last_eval_ms = excluded.last_eval_ms",
                       (group_key, last_eval_ms))
            if alerts is not None:
                db.execute("DELETE FROM alerts WHERE group_key = ?", (group_key,))
                db.executemany(
                    "INSERT OR REPLACE INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(group_key, rule, json.dumps(a.labels), json.dumps(a.annotations, sort_keys=True), a.state.value,
                      a.active_at, a.fired_at, a.resolved_at, a.last_sent_at, a.keep_firing_since,
                      a.value if a.value == a.value else None)
                     for rule, a in alerts])

    def forget_groups(self, keep: set[str]) -> None:
        """Drop the state of groups that no longer exist (best effort: a restart tries again)."""
        try:
            self._forget_groups(keep)
        except StateWriteError as exc:
            log.error("cannot forget the alert state of removed rule groups: %s", exc)

    @counted_write
    def _forget_groups(self, keep: set[str]) -> None:
        with self._lock:
            for (key,) in self._db.execute("SELECT group_key FROM groups").fetchall():
                if key not in keep:
                    self._db.execute("DELETE FROM alerts WHERE group_key = ?", (key,))
                    self._db.execute("DELETE FROM groups WHERE group_key = ?", (key,))

    def load(self) -> tuple[dict[str, int], dict[tuple[str, str], dict[tuple, Alert]]]:
        """(last evaluation per group, alerts per (group, rule) keyed by labels)."""
        with self._lock:
            groups = dict(self._db.execute("SELECT group_key, last_eval_ms FROM groups").fetchall())
            rows = self._db.execute("SELECT * FROM alerts").fetchall()
        alerts: dict[tuple[str, str], dict[tuple, Alert]] = {}
        # `last_sent_at` is not restored: every restored alert is handed to the notifier again at
        # the first evaluation. A group that was still inside group_wait when the process stopped
        # lived only in the notifier's memory; re-sending re-derives it, and the notifier's durable
        # notification log keeps a group that was already notified from being notified twice.
        for (group_key, rule, labels_json, annotations_json, state, active_at, fired_at, resolved_at, _last_sent_at,
             keep_since, value) in rows:
            lbl = tuple(tuple(p) for p in json.loads(labels_json))
            alerts.setdefault((group_key, rule), {})[lbl] = Alert(
                lbl, json.loads(annotations_json), AlertState(state), active_at, float("nan") if value is None else value,
                fired_at, resolved_at, 0, 0, keep_since)
        return groups, alerts
