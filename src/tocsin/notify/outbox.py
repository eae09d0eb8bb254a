"""The durable outbox: SQLite (WAL) under `state_dir`.

A notification is committed here before any delivery is tried and deleted only once the
receiver accepted it, so a crash at any point costs at most a duplicate (with the same
idempotency key), never a loss. The notification log (what each receiver was last told
about each group) is written in the same transaction as the notifications it causes, so
after a restart tocsin neither forgets a group it notified nor notifies it twice.

Every write raises `StateWriteError` when it fails (a full disk, a read-only file system),
counted once; the callers keep what they meant to write and try again.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass

from ..statedb import counted_write, transaction
from .notification import Notification

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    key         TEXT NOT NULL UNIQUE,
    receiver    TEXT NOT NULL,
    channel     TEXT NOT NULL,
    created_at  REAL NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    body        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_channel ON outbox (channel, id);
CREATE TABLE IF NOT EXISTS nflog (
    receiver    TEXT NOT NULL,
    group_key   TEXT NOT NULL,
    firing      TEXT NOT NULL,
    resolved    TEXT NOT NULL,
    sent_at     REAL NOT NULL,
    PRIMARY KEY (receiver, group_key)
);
"""


@dataclass
class LogEntry:
    """What a receiver was last told about a group (Alertmanager's notification log entry)."""

    firing: frozenset[str]
    resolved: frozenset[str]
    sent_at: float


@dataclass
class Pending:
    id: int
    attempts: int
    notification: Notification


def channel_of(receiver: str, target: int = 0) -> str:
    return f"{receiver}#{target}"


class Outbox:
    def __init__(self, state_dir: str, filename: str = "notify.sqlite") -> None:
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        self.path = os.path.join(state_dir, filename)
        # Private from creation, whatever the umask; SQLite gives -wal and -shm the same mode.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a committed notification survives power loss too
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ writes

    @counted_write
    def commit(self, notifications: list[Notification], log: dict[tuple[str, str], LogEntry]) -> None:
        """Store notifications and the notification-log entries they imply, atomically."""
        if not notifications and not log:
            return
        with self._lock, transaction(self._db) as cur:
            cur.executemany(
                "INSERT OR IGNORE INTO outbox (key, receiver, channel, created_at, body) VALUES (?, ?, ?, ?, ?)",
                [(n.key, n.receiver, channel_of(n.receiver, n.target), n.created_at, n.to_json())
                 for n in notifications])
            cur.executemany(
                "INSERT OR REPLACE INTO nflog (receiver, group_key, firing, resolved, sent_at) VALUES (?, ?, ?, ?, ?)",
                [(r, g, json.dumps(sorted(e.firing)), json.dumps(sorted(e.resolved)), e.sent_at)
                 for (r, g), e in log.items()])

    @counted_write
    def delete(self, *row_ids: int) -> None:
        with self._lock, transaction(self._db) as cur:
            cur.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in row_ids])

    @counted_write
    def record_failure(self, row_id: int, error: str, failures: int = 1) -> None:
        with self._lock:
            self._db.execute("UPDATE outbox SET attempts = attempts + ?, last_error = ? WHERE id = ?",
                             (failures, error[:500], row_id))

    @counted_write
    def prune_log(self, older_than: float) -> None:
        with self._lock:
            self._db.execute("DELETE FROM nflog WHERE sent_at < ?", (older_than,))

    # ------------------------------------------------------------------ reads

    def head(self, channel: str, after: int = 0) -> Pending | None:
        """The oldest notification of a channel past row `after`: channels deliver in order."""
        with self._lock:
            row = self._db.execute("SELECT id, attempts, body FROM outbox WHERE channel = ? AND id > ? "
                                   "ORDER BY id LIMIT 1", (channel, after)).fetchone()
        if row is None:
            return None
        return Pending(id=row[0], attempts=row[1], notification=Notification.from_json(row[2]))

    def channels(self) -> dict[str, int]:
        with self._lock:
            return dict(self._db.execute("SELECT channel, COUNT(*) FROM outbox GROUP BY channel").fetchall())

    def length(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

    def oldest_age(self) -> float:
        with self._lock:
            oldest = self._db.execute("SELECT MIN(created_at) FROM outbox").fetchone()[0]
        return 0.0 if oldest is None else max(0.0, time.time() - oldest)

    def load_log(self) -> dict[tuple[str, str], LogEntry]:
        with self._lock:
            rows = self._db.execute("SELECT receiver, group_key, firing, resolved, sent_at FROM nflog").fetchall()
        return {(r, g): LogEntry(frozenset(json.loads(f)), frozenset(json.loads(s)), t) for r, g, f, s, t in rows}
