"""Acknowledgements: "I am on it" for one firing alert, until it resolves.

A silence is time-boxed and selects by matchers; an acknowledgement is neither. It names
one alert (its fingerprint) *and the firing it saw* (the alert's startsAt), so it ends by
itself when that firing ends: once the alert resolves, or fires again with a new startsAt
(it resolved while nobody was looking, a restart in between), the acknowledgement is over
and the next firing pages as usual. Who and why are kept, and so is the end, for the
record. Stored in `silences.db` beside the silences, committed before the API answers.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from ..statedb import counted_write, transaction
from .alert import Alert
from .silences import open_db

RETENTION = 5 * 86400.0  # ended acknowledgements kept for the record, as long as expired silences
SAME_FIRING = 1.0        # startsAt within this (seconds) is the same firing (millisecond rounding)


@dataclass(frozen=True)
class Ack:
    id: str
    fingerprint: str
    labels: dict[str, str]
    alert_starts_at: float  # unix seconds: the firing acknowledged
    created_by: str
    comment: str
    created_at: float
    ended_at: float | None = None
    end_reason: str = ""

    @property
    def active(self) -> bool:
        return self.ended_at is None

    def covers(self, alert: Alert) -> bool:
        """Whether this acknowledgement quiets `alert` as it is now."""
        return (self.active and alert.firing and alert.fingerprint == self.fingerprint
                and abs(alert.starts_at.timestamp() - self.alert_starts_at) < SAME_FIRING)

    def to_record(self) -> dict[str, Any]:
        return {"id": self.id, "fingerprint": self.fingerprint, "labels": self.labels,
                "alertStartsAt": self.alert_starts_at, "createdBy": self.created_by, "comment": self.comment,
                "createdAt": self.created_at, "endedAt": self.ended_at, "endReason": self.end_reason}

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> "Ack":
        return cls(id=d["id"], fingerprint=d["fingerprint"], labels=d["labels"], alert_starts_at=d["alertStartsAt"],
                   created_by=d["createdBy"], comment=d["comment"], created_at=d["createdAt"],
                   ended_at=d.get("endedAt"), end_reason=d.get("endReason") or "")


class AckStore:
    """Acknowledgements in memory (by fingerprint) and in `silences.db`; thread-safe."""

    def __init__(self, state_dir: str) -> None:
        self.path, self._db = open_db(state_dir)
        self._db.execute("CREATE TABLE IF NOT EXISTS acks (id TEXT PRIMARY KEY, created_at REAL NOT NULL,"
                         " body TEXT NOT NULL)")
        self._lock = threading.Lock()
        self._acks: dict[str, Ack] = {}
        for (body,) in self._db.execute("SELECT body FROM acks"):
            ack = Ack.from_record(json.loads(body))
            self._acks[ack.id] = ack
        self._forget_old(time.time())

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @counted_write
    def _write(self, put: Iterable[Ack], delete: Iterable[str] = ()) -> None:
        with transaction(self._db) as cur:
            for a in put:
                cur.execute("INSERT OR REPLACE INTO acks (id, created_at, body) VALUES (?, ?, ?)",
                            (a.id, a.created_at, json.dumps(a.to_record())))
            for aid in delete:
                cur.execute("DELETE FROM acks WHERE id = ?", (aid,))

    def acknowledge(self, alert: Alert, created_by: str, comment: str, now: float | None = None) -> Ack:
        """Quiet this firing of `alert` until it resolves; an active acknowledgement of the same
        firing is returned as it is (acknowledging twice changes nothing)."""
        if not alert.firing:
            raise ValueError("the alert is not firing")
        now = time.time() if now is None else now
        with self._lock:
            for ack in self._acks.values():
                if ack.covers(alert):
                    return ack
            ack = Ack(id=str(uuid.uuid4()), fingerprint=alert.fingerprint, labels=dict(alert.labels),
                      alert_starts_at=alert.starts_at.timestamp(), created_by=created_by, comment=comment,
                      created_at=now)
            self._write([ack])
            self._acks[ack.id] = ack
            return ack

    def settle(self, alerts: Iterable[Alert], now: float | None = None) -> None:
        """End the acknowledgements whose firing is over, judged by the alerts known now: the
        alert resolved, or fires again since another startsAt. An alert not known at all (just
        after a start, before the rules sent it) ends nothing."""
        now = time.time() if now is None else now
        current = {a.fingerprint: a for a in alerts}
        with self._lock:
            ended = []
            for ack in self._acks.values():
                alert = current.get(ack.fingerprint)
                if ack.active and alert is not None and not ack.covers(alert):
                    ended.append(replace(ack, ended_at=now, end_reason="resolved" if not alert.firing else "fired again"))
            if ended:
                self._write(ended)
                for ack in ended:
                    self._acks[ack.id] = ack
            self._forget_old(now)

    def _forget_old(self, now: float) -> None:
        old = [a.id for a in self._acks.values() if a.ended_at is not None and a.ended_at < now - RETENTION]
        if old:
            self._write([], old)
            for aid in old:
                del self._acks[aid]

    def active(self) -> list[Ack]:
        with self._lock:
            return [a for a in self._acks.values() if a.active]

    def all(self) -> list[Ack]:
        with self._lock:
            return sorted(self._acks.values(), key=lambda a: a.created_at)

    def acked_by(self, alert: Alert) -> list[str]:
        with self._lock:
            return sorted(a.id for a in self._acks.values() if a.covers(alert))
