"""Basic auth for the listener: bcrypt or `sha256:` hashes, the same work for every user name.

Why the care: a rejection must not tell an attacker whether the user name exists, so a
name that is not configured is checked against a configured hash all the same (and the
result thrown away). bcrypt is slow on purpose (tens to hundreds of ms), and a scraper
sends the same credentials every few seconds: verdicts are kept in a small cache keyed
by a keyed hash of user and password, as Prometheus's exporter toolkit does, so a scrape
pays for bcrypt once, not every time. The hashes' format is checked when the
configuration is loaded (`WebConfig`), so here a hash is either bcrypt or sha256.

A guesser is slowed per address (guessing.py), but each new address still pays one bcrypt
check: from many addresses at once, that is all the cores. So at most `MAX_BCRYPT` bcrypt
checks run at once, over all clients; one more is not queued (a queue would hold the
listener's few worker threads, and with them every other request) but answered 503 with
`Retry-After` (`Busy`), and counted in `tocsin_web_auth_busy_total`. Credentials already
verified, or already known wrong, cost no bcrypt and are answered as ever, so a scraper
whose password was checked before keeps its access through such a flood.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping

import bcrypt
from prometheus_client import CollectorRegistry, Counter

CACHE_SIZE = 256
GOOD_SIZE = 64  # credentials verified good: kept apart, so wrong guesses cannot push them out
# bcrypt checks at once, over all clients (bcrypt runs outside the GIL, a core each): half the cores.
MAX_BCRYPT = max(1, (os.cpu_count() or 2) // 2)
BUSY_RETRY_S = 1  # a bcrypt check takes tens to hundreds of milliseconds


class Busy(Exception):
    """Every bcrypt slot is taken: the request is answered 503, to be retried after BUSY_RETRY_S."""


def check_password(stored: str, password: bytes) -> bool:
    """`stored` is a bcrypt hash ($2a$/$2b$/$2y$) or `sha256:<hex>`; anything else never matches."""
    if stored.startswith("$2"):
        try:
            return bcrypt.checkpw(password, stored.encode())
        except ValueError:  # not a bcrypt hash after all (the configuration check should have said so)
            return False
    if stored.startswith("sha256:"):
        return hmac.compare_digest(hashlib.sha256(password).hexdigest(), stored.removeprefix("sha256:").lower())
    return False


def _cost(stored: str) -> int:
    """How expensive checking against `stored` is: bcrypt's cost, or 0 for sha256."""
    if stored.startswith("$2"):
        try:
            return int(stored.split("$")[2])
        except (IndexError, ValueError):
            return 0
    return 0


def parse_basic(header: str | None) -> tuple[str, bytes] | None:
    """(user, password) from an `Authorization: Basic …` header, or None if it is not one."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    try:
        return user.decode("utf-8"), password
    except UnicodeDecodeError:
        return None


class Authenticator:
    """Checks `Authorization` headers against the configured users; thread-safe."""

    def __init__(self, users: Mapping[str, str], registry: CollectorRegistry | None = None,
                 max_bcrypt: int | None = None) -> None:
        self._users = dict(users)
        self._bcrypt_slots = threading.BoundedSemaphore(max_bcrypt or MAX_BCRYPT)
        self.busy = Counter("tocsin_web_auth_busy_total",
                            "Requests answered 503 because as many bcrypt password checks as allowed at once "
                            "were running already.", registry=registry or CollectorRegistry())
        # An unknown user is checked against the most expensive configured hash: the same work.
        self._decoy = max(self._users.values(), key=_cost) if self._users else ""
        self._cache_key = os.urandom(32)  # the cache holds keyed hashes, never a password
        self._cache: OrderedDict[bytes, bool] = OrderedDict()
        self._good: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self._users)

    def _key(self, credentials: tuple[str, bytes]) -> bytes:
        user, password = credentials
        return hmac.new(self._cache_key, user.encode() + b"\0" + password, hashlib.sha256).digest()

    def known_good(self, authorization: str | None) -> bool:
        """Whether these credentials were verified before: known without any bcrypt work, so
        they may pass while their client address is refused for others' guessing."""
        credentials = parse_basic(authorization)
        if credentials is None:
            return False
        key = self._key(credentials)
        with self._lock:
            return key in self._good

    def check(self, authorization: str | None) -> bool:
        """Whether the credentials are good; raises Busy when they would need a bcrypt check
        and MAX_BCRYPT are running already."""
        if not self._users:
            return True
        credentials = parse_basic(authorization)
        if credentials is None:
            return False
        user, password = credentials
        key = self._key(credentials)
        with self._lock:
            if key in self._good:
                self._good.move_to_end(key)
                return True
            verdict = self._cache.get(key)
            if verdict is not None:
                self._cache.move_to_end(key)
                return verdict
        stored = self._users.get(user)
        target = stored if stored is not None else self._decoy  # an unknown user: the same work, the same slots
        if _cost(target):
            if not self._bcrypt_slots.acquire(blocking=False):
                self.busy.inc()
                raise Busy
            try:
                verdict = check_password(target, password) and stored is not None
            finally:
                self._bcrypt_slots.release()
        else:
            verdict = check_password(target, password) and stored is not None
        with self._lock:
            if verdict:
                self._good[key] = None
                while len(self._good) > GOOD_SIZE:
                    self._good.popitem(last=False)
            else:
                self._cache[key] = verdict
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
        return verdict
