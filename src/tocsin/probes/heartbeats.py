"""The heartbeats push targets receive: the last one of each target, kept across restarts.

A push target is a job that cannot be probed (a cron backup, a batch): it reports itself
to the listener, and its probe only reads what it last reported. The listener's threads
write here (`push`), the event loop reads (`last`), so one lock guards the table. Each
push is written to `state_dir/heartbeats.json` (to a temporary file renamed over the old
one, so a crash leaves one whole version): a restart must not turn a target that pushed a
minute ago into one that "never pushed", nor forget a job that reported down.

The store also holds what the listener needs to accept a push — each push target's
token digest — set by the daemon from every loaded configuration (`configure`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

log = logging.getLogger("tocsin.push")

FILE_NAME = "heartbeats.json"
MAX_MESSAGE = 1000  # characters of `msg` kept: it becomes the target's failure message


@dataclass(frozen=True, slots=True)
class Heartbeat:
    at: float  # unix time the push arrived
    up: bool
    message: str = ""


def token_digest(token: str) -> bytes:
    """Tokens are compared as SHA-256 digests: equal lengths, so the comparison time says nothing."""
    return hashlib.sha256(token.encode()).digest()


class HeartbeatStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, Heartbeat] = {}
        self._tokens: dict[str, bytes] = {}  # push target -> token digest
        self._path: Path | None = None
        self._listeners: list[Callable[[str], object]] = []
        self.opened_at = time.time()  # the reference of a target that never pushed

    def open(self, state_dir: str | os.PathLike[str]) -> None:
        """Keep heartbeats in `state_dir` from now on, and load those kept there (idempotent)."""
        path = Path(state_dir) / FILE_NAME
        with self._lock:
            if path == self._path:
                return
            self._path = path
            try:
                path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # state is private, as rules.db
                saved = json.loads(path.read_text(encoding="utf-8"))
                self._last.update({name: Heartbeat(float(item["at"]), bool(item["up"]), str(item.get("message", "")))
                                   for name, item in saved.items()})
            except FileNotFoundError:
                pass
            except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
                log.warning("cannot read the saved heartbeats in %s (push targets start as never pushed): %s", path, exc)

    def configure(self, tokens: dict[str, bytes]) -> None:
        """The push targets of the configuration now loaded: name -> token digest."""
        with self._lock:
            self._tokens = dict(tokens)

    def authorise(self, name: str, token: str | None) -> Literal["ok", "unknown", "unauthorised"]:
        with self._lock:
            expected = self._tokens.get(name)
        if expected is None:
            return "unknown"
        if token is None or not hmac.compare_digest(token_digest(token), expected):
            return "unauthorised"
        return "ok"

    def subscribe(self, listener: Callable[[str], object]) -> None:
        """Call `listener(target)` after each push (on the listener's thread: hand it on, do not block)."""
        self._listeners.append(listener)

    def push(self, name: str, up: bool, message: str = "") -> Heartbeat:
        beat = Heartbeat(time.time(), up, message[:MAX_MESSAGE])
        with self._lock:
            self._last[name] = beat
            # Only targets still configured are kept: a removed target's heartbeat goes with it.
            kept = {key: asdict(value) for key, value in self._last.items() if key in self._tokens}
            path = self._path
        if path is not None:
            self._save(path, kept)
        for listener in self._listeners:
            listener(name)
        return beat

    def last(self, name: str) -> Heartbeat | None:
        with self._lock:
            return self._last.get(name)

    @staticmethod
    def _save(path: Path, table: dict) -> None:
        temporary = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
        try:
            temporary.write_text(json.dumps(table), encoding="utf-8")
            temporary.chmod(0o600)
            os.replace(temporary, path)
        except OSError as exc:
            # The push is still taken (the target is up now); only a restart would forget it.
            log.warning("cannot save heartbeats to %s: %s", path, exc.strerror or exc)
            temporary.unlink(missing_ok=True)


# The daemon's store: the listener writes it, the push probes read it.
STORE = HeartbeatStore()
