"""Silences as Alertmanager keeps them: matchers, a time window, who and why; in SQLite.

An operator silences alerts with `amtool silence add` (Alertmanager's API v2, served by
`web/api_v2.py`), not by editing YAML, and expects the silence to hold across a restart
or a `kill -9`: every change is committed to `silences.db` in `state_dir` before the API
answers. Matchers are the routing tree's (`notify.matchers.Matcher`), so a silence selects
exactly the alerts a route with the same matchers would. The rules for creating, updating
and expiring follow Alertmanager 0.25 (silence/silence.go): an update that would rewrite
history (other matchers, a new start of an active silence) expires the old silence and
creates a new one; expiring is idempotent; expired silences are kept for `RETENTION`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from ..statedb import StateWriteError, counted_write, transaction
from .matchers import Matcher

GC_INTERVAL = 900.0  # how often expired silences past RETENTION are dropped, as Alertmanager's maintenance
RETENTION = 5 * 86400.0  # Alertmanager's --data.retention default (120h): expired silences kept for the record
log = logging.getLogger("tocsin.notify")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def open_db(state_dir: str) -> tuple[str, sqlite3.Connection]:
    """`silences.db` in `state_dir`, private as the rest of the state (0700 directory, 0600 file)."""
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    path = os.path.join(state_dir, "silences.db")
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))  # created private before SQLite opens it
    return path, sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5)


class SilenceError(ValueError):
    """A silence the API must refuse (400), with Alertmanager's reason."""


class SilenceNotFound(LookupError):
    """No silence with that id (Alertmanager's ErrNotFound: "silence not found")."""

    def __str__(self) -> str:
        return "silence not found"


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float          # unix seconds
    ends_at: float
    created_by: str
    comment: str
    updated_at: float = 0.0
    annotations: dict[str, str] = field(default_factory=dict)

    def state(self, now: float) -> str:
        """Alertmanager's silence state: pending before it starts, expired after it ends."""
        if now < self.starts_at:
            return "pending"
        if now > self.ends_at:
            return "expired"
        return "active"

    def matches(self, labels: dict[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def to_record(self) -> dict[str, Any]:
        return {"id": self.id, "matchers": [[m.name, m.op, m.value] for m in self.matchers],
                "startsAt": self.starts_at, "endsAt": self.ends_at, "updatedAt": self.updated_at,
                "createdBy": self.created_by, "comment": self.comment, "annotations": self.annotations}

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> "Silence":
        return cls(id=data["id"], matchers=tuple(Matcher(n, op, v) for n, op, v in data["matchers"]),
                   starts_at=data["startsAt"], ends_at=data["endsAt"], updated_at=data["updatedAt"],
                   created_by=data["createdBy"], comment=data["comment"], annotations=data.get("annotations") or {})


def validate(silence: Silence) -> None:
    """Alertmanager's validateSilence: what makes a silence impossible to store."""
    if not silence.matchers:
        raise SilenceError("silence invalid: at least one matcher required")
    for i, m in enumerate(silence.matchers):
        if not _LABEL_NAME.match(m.name):
            raise SilenceError(f"silence invalid: invalid label matcher {i}: invalid label name {m.name!r}")
    if all(m.matches({}) for m in silence.matchers):
        raise SilenceError("silence invalid: at least one matcher must not match the empty string")
    if silence.ends_at < silence.starts_at:
        raise SilenceError("silence invalid: end time must not be before start time")


def _can_update(old: Silence, new: Silence, now: float) -> bool:
    """Whether `old` may become `new` in place without changing what it silenced so far."""
    if old.matchers != new.matchers:
        return False
    state = old.state(now)
    if state == "active":
        return int(new.starts_at) == int(old.starts_at) and new.ends_at >= now
    if state == "pending":
        return new.starts_at >= now
    return False


class SilenceStore:
    """The silences, in memory for matching and in `silences.db` for restarts; thread-safe."""

    def __init__(self, state_dir: str) -> None:
        self.path, self._db = open_db(state_dir)
        self._db.execute("CREATE TABLE IF NOT EXISTS silences (id TEXT PRIMARY KEY, ends_at REAL NOT NULL,"
                         " body TEXT NOT NULL)")
        self._lock = threading.Lock()
        self._silences: dict[str, Silence] = {}
        self.version = 0  # bumped on every change: callers can cache what they derive
        self._next_gc = 0.0
        for (body,) in self._db.execute("SELECT body FROM silences"):
            s = Silence.from_record(json.loads(body))
            self._silences[s.id] = s
        self.gc()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ writes

    @counted_write
    def _write(self, put: list[Silence], delete: tuple[str, ...] = ()) -> None:
        with transaction(self._db) as cur:
            for s in put:
                cur.execute("INSERT OR REPLACE INTO silences (id, ends_at, body) VALUES (?, ?, ?)",
                            (s.id, s.ends_at, json.dumps(s.to_record())))
            for sid in delete:
                cur.execute("DELETE FROM silences WHERE id = ?", (sid,))

    def set(self, silence: Silence, now: float | None = None) -> str:
        """Create (empty id) or update a silence; returns its id, which changes when Alertmanager's
        would. Raises SilenceNotFound for an id it does not know, SilenceError for a bad one."""
        now = time.time() if now is None else now
        with self._lock:
            previous = self._silences.get(silence.id) if silence.id else None
            if silence.id and previous is None:
                raise SilenceNotFound(silence.id)
            writes: list[Silence] = []
            if previous is not None:
                if _can_update(previous, silence, now):
                    updated = replace(silence, updated_at=now)
                    validate(updated)
                    self._commit([updated])
                    return updated.id
                if previous.state(now) != "expired":
                    writes.append(_expired(previous, now))
            created = replace(silence, id=str(uuid.uuid4()), updated_at=now,
                              starts_at=max(silence.starts_at, now))
            validate(created)
            self._commit(writes + [created])
            return created.id

    def expire(self, silence_id: str, now: float | None = None) -> None:
        """End a silence now (idempotent for an expired one); SilenceNotFound if unknown."""
        now = time.time() if now is None else now
        with self._lock:
            silence = self._silences.get(silence_id)
            if silence is None:
                raise SilenceNotFound(silence_id)
            if silence.state(now) != "expired":
                self._commit([_expired(silence, now)])

    def _commit(self, silences: list[Silence]) -> None:
        self._write(silences)  # first on disk: a silence the API acknowledged survives kill -9
        for s in silences:
            self._silences[s.id] = s
        self.version += 1

    def gc(self, now: float | None = None) -> None:
        """Forget silences expired more than RETENTION ago (at start, then every GC_INTERVAL)."""
        now = time.time() if now is None else now
        with self._lock:
            self._gc_locked(now)

    def _gc_locked(self, now: float) -> None:
        self._next_gc = now + GC_INTERVAL
        old = [sid for sid, s in self._silences.items() if s.ends_at < now - RETENTION]
        if old:
            try:
                self._write([], tuple(old))
            except StateWriteError as exc:  # kept a while longer: harmless
                log.warning("cannot forget old silences: %s", exc.reason)
                return
            for sid in old:
                del self._silences[sid]
            self.version += 1

    # ------------------------------------------------------------------ reads

    def get(self, silence_id: str) -> Silence | None:
        with self._lock:
            return self._silences.get(silence_id)

    def all(self) -> list[Silence]:
        with self._lock:
            now = time.time()
            if now >= self._next_gc:
                self._gc_locked(now)
            return list(self._silences.values())

    def active(self, now: float | None = None) -> list[Silence]:
        now = time.time() if now is None else now
        return [s for s in self.all() if s.state(now) == "active"]

    def silenced_by(self, labels: dict[str, str], now: float | None = None) -> list[str]:
        """The ids of the active silences that match these labels (sorted)."""
        return sorted(s.id for s in self.active(now) if s.matches(labels))


def _expired(silence: Silence, now: float) -> Silence:
    if silence.state(now) == "pending":
        return replace(silence, starts_at=now, ends_at=now, updated_at=now)
    return replace(silence, ends_at=now, updated_at=now)
