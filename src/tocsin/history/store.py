"""history.db: the rollup tables, the incident log and the alert state log, in SQLite (WAL).

The writer (the recorder's thread) owns one connection and writes whole rows: a rollup row
is replaced by the recorder's in-memory total of its span, so a write is idempotent and a
crash between two writes loses only what came after the last one. Readers (the listener's
threads) each open their own connection; WAL lets them read while the writer writes.

Rows are keyed by (target id, span start) in tables WITHOUT ROWID: a range read of one
target is one walk down the primary key, whatever the number of targets, and pruning one
target's old rows is one range delete.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .. import statedb
from .rollup import Rollup

MINUTE, HOUR, DAY = 60, 3600, 86400
TABLES = {MINUTE: "minutes", HOUR: "hours", DAY: "days"}
_ROLLUP_COLUMNS = "count, failures, seconds, down, maintenance, duration_sum, hist, reasons"
_MARKS = ",".join("?" * 10)

_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS targets (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)",
    # `through` (hours and days): the row holds every minute before it; the minutes from
    # there on are added back at start (see HistoryRecorder._repair).
    *(f"""CREATE TABLE IF NOT EXISTS {table} (target INTEGER NOT NULL, t INTEGER NOT NULL,
          count INTEGER NOT NULL, failures INTEGER NOT NULL, seconds REAL NOT NULL, down REAL NOT NULL,
          maintenance REAL NOT NULL, duration_sum REAL NOT NULL, hist TEXT NOT NULL, reasons TEXT,
          {"" if table == "minutes" else "through INTEGER,"}
          PRIMARY KEY (target, t)) WITHOUT ROWID""" for table in TABLES.values()),
    """CREATE TABLE IF NOT EXISTS incidents (id INTEGER PRIMARY KEY, target INTEGER NOT NULL,
       start REAL NOT NULL, end REAL, reason TEXT NOT NULL, message TEXT NOT NULL, alerts TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS incidents_by_target ON incidents (target, start)",
    "CREATE INDEX IF NOT EXISTS incidents_by_start ON incidents (start)",
    """CREATE TABLE IF NOT EXISTS alert_events (fingerprint TEXT NOT NULL, at REAL NOT NULL, state TEXT NOT NULL,
       alertname TEXT NOT NULL, labels TEXT NOT NULL, PRIMARY KEY (fingerprint, at, state)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS alert_events_by_time ON alert_events (at)",
]


@dataclass
class Incident:
    """One down→up episode of a target: open while `end` is None."""

    id: int
    target: str
    start: float
    end: float | None
    reason: str
    message: str
    alerts: list[str] = field(default_factory=list)

    def view(self, now: float) -> dict:
        return {"id": self.id, "target": self.target, "start": self.start, "end": self.end,
                "duration_seconds": round((self.end if self.end is not None else now) - self.start, 3),
                "reason": self.reason, "message": self.message, "alerts": list(self.alerts),
                "open": self.end is None}


@dataclass
class Batch:
    """One transaction's worth of writes."""

    # (span, target, t, rollup, through): through is None for minutes
    rollups: list[tuple[int, str, int, Rollup, int | None]] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    alert_events: list[tuple[str, float, str, str, str]] = field(default_factory=list)
    prune: list[tuple[int, str, int]] = field(default_factory=list)  # (span, target, rows before t)
    prune_logs_before: float | None = None


class HistoryDB:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        Path(self.path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Private from creation, whatever the umask; SQLite gives -wal and -shm the same mode.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a crash loses no committed row
        # Rows are rewritten every second (the open minute): a longer WAL holds many versions of a
        # page, and a checkpoint copies only the last one to the database.
        self._db.execute("PRAGMA wal_autocheckpoint=8000")
        for statement in _SCHEMA:
            self._db.execute(statement)
        self._ids: dict[str, int] = dict(self._db.execute("SELECT name, id FROM targets"))
        self._names = {v: k for k, v in self._ids.items()}
        self._readers = threading.local()

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------ writing

    def target_id(self, name: str) -> int:
        """The target's row id, created on first sight (its own small write)."""
        found = self._ids.get(name)
        if found is None:
            found = self._db.execute("INSERT OR IGNORE INTO targets (name) VALUES (?) RETURNING id",
                                     (name,)).fetchone()
            found = found[0] if found else self._db.execute("SELECT id FROM targets WHERE name=?", (name,)).fetchone()[0]
            self._ids[name] = found
            self._names[found] = name
        return found

    @statedb.counted_write
    def write(self, batch: Batch) -> None:
        ids = {name: self.target_id(name) for name in {r[1] for r in batch.rollups}
               | {i.target for i in batch.incidents} | {p[1] for p in batch.prune}}
        with statedb.transaction(self._db) as cur:
            for span, table in TABLES.items():
                rows: list[tuple] = [(ids[name], t, *rollup.to_row(), *(() if span == MINUTE else (through,)))
                                     for s, name, t, rollup, through in batch.rollups if s == span]
                statement = (f"INSERT OR REPLACE INTO {table} (target, t, {_ROLLUP_COLUMNS}) VALUES ({_MARKS})"
                             if span == MINUTE else f"INSERT OR REPLACE INTO {table} (target, t, {_ROLLUP_COLUMNS}, "
                             f"through) VALUES ({_MARKS},?)")
                if rows:
                    cur.executemany(statement, rows)
            if batch.incidents:
                cur.executemany("INSERT OR REPLACE INTO incidents VALUES (?,?,?,?,?,?,?)",
                                [(i.id, ids[i.target], i.start, i.end, i.reason, i.message, json.dumps(i.alerts))
                                 for i in batch.incidents])
            if batch.alert_events:
                cur.executemany("INSERT OR REPLACE INTO alert_events VALUES (?,?,?,?,?)", batch.alert_events)
            for span, name, before in batch.prune:
                cur.execute(f"DELETE FROM {TABLES[span]} WHERE target=? AND t<?", (ids[name], before))
            if batch.prune_logs_before is not None:
                cur.execute("DELETE FROM incidents WHERE end IS NOT NULL AND end<?", (batch.prune_logs_before,))
                cur.execute("DELETE FROM alert_events WHERE at<?", (batch.prune_logs_before,))

    # ------------------------------------------------------------ reading back at start

    # These walk the primary key target by target: a query on `t` alone would scan the table.

    def rollups_at(self, span: int, t: int) -> dict[str, Rollup]:
        """Every target's rollup of the span starting at `t` (the open spans, after a restart)."""
        out = {}
        for name, target in list(self._ids.items()):
            row = self._db.execute(f"SELECT {_ROLLUP_COLUMNS} FROM {TABLES[span]} WHERE target=? AND t=?",
                                   (target, t)).fetchone()
            if row is not None:
                out[name] = Rollup.from_row(*row)
        return out

    def latest(self, span: int) -> dict[str, tuple[int, Rollup, int | None]]:
        """Each target's most recent hour or day row: (t, rollup, through)."""
        out = {}
        for name, target in list(self._ids.items()):
            row = self._db.execute(f"SELECT t, {_ROLLUP_COLUMNS}, through FROM {TABLES[span]} WHERE target=? "
                                   "ORDER BY t DESC LIMIT 1", (target,)).fetchone()
            if row is not None:
                out[name] = (row[0], Rollup.from_row(*row[1:-1]), row[-1])
        return out

    def minutes_from(self, name: str, since: int) -> list[tuple[int, Rollup]]:
        """One target's minute rows from `since` on, in time order (the writer's connection)."""
        rows = self._db.execute(f"SELECT t, {_ROLLUP_COLUMNS} FROM minutes WHERE target=? AND t>=? ORDER BY t",
                                (self._ids[name], since))
        return [(r[0], Rollup.from_row(*r[1:])) for r in rows]

    def names(self) -> list[str]:
        return list(self._ids)

    def recent(self, span: int, since: int) -> Iterable[tuple[str, int, Rollup]]:
        for name, target in list(self._ids.items()):
            rows = self._db.execute(f"SELECT t, {_ROLLUP_COLUMNS} FROM {TABLES[span]} WHERE target=? AND t>=?",
                                    (target, since))
            for r in rows:
                yield name, r[0], Rollup.from_row(*r[1:])

    def recent_times(self, span: int, since: int) -> Iterable[tuple[str, int, float, float, float]]:
        """(target, t, seconds, down, maintenance) of every row since `since`: the day ring's
        load at start, without reading the histograms back."""
        for name, target in list(self._ids.items()):
            rows = self._db.execute(f"SELECT t, seconds, down, maintenance FROM {TABLES[span]} "
                                    "WHERE target=? AND t>=?", (target, since))
            for r in rows:
                yield name, *r

    def open_incidents(self) -> list[Incident]:
        rows = self._db.execute("SELECT * FROM incidents WHERE end IS NULL")
        return [self._incident(r) for r in rows if r[1] in self._names]

    def latest_alert_states(self) -> dict[str, str]:
        """Each alert's last recorded state, unless inactive: a restart records no change twice."""
        rows = self._db.execute("SELECT fingerprint, state, max(at) FROM alert_events GROUP BY fingerprint")
        return {fp: state for fp, state, _ in rows if state != "inactive"}

    def last_incident_id(self) -> int:
        return self._db.execute("SELECT coalesce(max(id), 0) FROM incidents").fetchone()[0]

    def _incident(self, row: tuple) -> Incident:
        return Incident(row[0], self._names.get(row[1], "?"), row[2], row[3], row[4], row[5], json.loads(row[6]))

    # ------------------------------------------------------------ reading (any thread)

    def _reader(self) -> sqlite3.Connection:
        db = getattr(self._readers, "db", None)
        if db is None:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            self._readers.db = db
        return db

    def rollups(self, span: int, name: str, since: int, until: int) -> list[tuple[int, Rollup]]:
        """One target's rollups of `span` with since <= t <= until, in time order."""
        target = self._ids.get(name)
        if target is None:
            return []
        rows = self._reader().execute(f"SELECT t, {_ROLLUP_COLUMNS} FROM {TABLES[span]} "
                                      "WHERE target=? AND t>=? AND t<=? ORDER BY t", (target, since, until))
        return [(r[0], Rollup.from_row(*r[1:])) for r in rows]

    def incidents(self, name: str | None = None, since: float = 0.0, limit: int = 100) -> list[Incident]:
        """The most recent incidents (of one target, or all), newest first."""
        if name is not None:
            if name not in self._ids:
                return []
            rows = self._reader().execute("SELECT * FROM incidents WHERE target=? AND start>=? "
                                          "ORDER BY start DESC LIMIT ?", (self._ids[name], since, limit))
        else:
            rows = self._reader().execute("SELECT * FROM incidents WHERE start>=? ORDER BY start DESC LIMIT ?",
                                          (since, limit))
        return [self._incident(r) for r in rows]

    def alert_events(self, fingerprint: str, limit: int = 200) -> list[dict]:
        rows = self._reader().execute("SELECT at, state, alertname, labels FROM alert_events WHERE fingerprint=? "
                                      "ORDER BY at DESC LIMIT ?", (fingerprint, limit))
        return [{"at": r[0], "state": r[1], "alertname": r[2], "labels": json.loads(r[3])} for r in rows]

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in Path(self.path).parent.glob(Path(self.path).name + "*"))
