"""Password guessing on the listener, slowed per client address.

Basic auth with bcrypt is slow on purpose, but nothing stopped a client from trying
passwords as fast as the listener answers. Each client address has a token bucket of
failed attempts: `BURST` wrong passwords at once, then one more every `REFILL_S`
seconds. An address whose bucket is empty gets 429 with `Retry-After`, without its
password being checked (no bcrypt work either), and the refusal is counted in
`tocsin_web_auth_refused_total`.

The legitimate user is not locked out by someone else's guessing: buckets are per
address (IPv6 per /64, which one client usually holds whole), so guessing from other
addresses changes nothing for theirs; and on a shared address (NAT) credentials already
verified still pass (`Authenticator.known_good`), since they cost no bcrypt to recognise.
A request with no credentials at all (a browser's first try) is not a failed guess.
Buckets are kept for at most `MAX_CLIENTS` addresses, least recently failing first out,
and a full bucket is not kept at all.
"""

from __future__ import annotations

import ipaddress
import itertools
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter

BURST = 10
REFILL_S = 6.0  # ten more guesses a minute
MAX_CLIENTS = 10_000


def client_key(address: str) -> str:
    """The address a bucket belongs to: IPv4 as is, IPv6 by its /64 (IPv4-mapped as IPv4)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


class GuessLimiter:
    """Token buckets of failed basic-auth attempts, per client address; thread-safe."""

    def __init__(self, registry: CollectorRegistry | None = None, burst: int = BURST, refill_s: float = REFILL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = burst
        self.refill_s = refill_s
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)
        self._lock = threading.Lock()
        self.refused = Counter("tocsin_web_auth_refused_total",
                               "Requests answered 429 because their client address gave wrong basic-auth "
                               "credentials too often.", registry=registry or CollectorRegistry())

    def _tokens(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - at) / self.refill_s)

    def retry_after(self, address: str) -> int:
        """Seconds until `address` may try a password again; 0 if it may now."""
        key = client_key(address)
        now = self.clock()
        with self._lock:
            if key not in self._buckets:
                return 0
            tokens = self._tokens(key, now)
        if tokens >= 1:
            return 0
        return max(1, math.ceil((1 - tokens) * self.refill_s))

    def failed(self, address: str) -> None:
        """`address` gave wrong credentials: one token less."""
        key = client_key(address)
        now = self.clock()
        with self._lock:
            tokens = max(0.0, self._tokens(key, now) - 1)
            self._buckets[key] = (tokens, now)
            self._buckets.move_to_end(key)
            while len(self._buckets) > MAX_CLIENTS:
                self._buckets.popitem(last=False)
            # Full buckets are the default: forget the oldest ones that refilled, so the table
            # holds only recent guessers.
            refilled = [k for k, (t, at) in itertools.islice(self._buckets.items(), 8)
                        if t + (now - at) / self.refill_s >= self.burst]
            for old in refilled:
                del self._buckets[old]
