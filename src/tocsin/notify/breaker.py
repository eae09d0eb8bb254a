"""Per-channel delivery pacing: exponential backoff with jitter, and a circuit breaker.

Closed: deliveries flow; each consecutive failure backs off (initial × 2^n, capped, jittered).
Open (after `failures` consecutive failures): nothing is attempted for `cooldown`, so a dead
receiver costs no sockets and no threads' time. Half-open: one trial delivery; success
closes the circuit, failure opens it for another cool-down.
"""

from __future__ import annotations

import random
import time

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    def __init__(self, failures: int, cooldown: float, initial_backoff: float, max_backoff: float) -> None:
        self.threshold = failures
        self.cooldown = cooldown
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.state = CLOSED
        self.consecutive = 0
        self._not_before = 0.0

    def wait_time(self) -> float:
        """Seconds until the next attempt is allowed (0 = now)."""
        return max(0.0, self._not_before - time.monotonic())

    def begin(self) -> None:
        """Called right before an attempt; an open circuit whose cool-down is over goes half-open."""
        if self.state == OPEN and self.wait_time() == 0:
            self.state = HALF_OPEN

    def success(self) -> bool:
        """Record a success; return True if this closed an open circuit."""
        reopened = self.state != CLOSED
        self.state, self.consecutive, self._not_before = CLOSED, 0, 0.0
        return reopened

    def failure(self) -> bool:
        """Record a failure; return True if this opened the circuit (from closed)."""
        self.consecutive += 1
        now = time.monotonic()
        if self.state == HALF_OPEN or self.consecutive >= self.threshold:
            opened = self.state == CLOSED
            self.state = OPEN
            self._not_before = now + self.cooldown * random.uniform(0.9, 1.1)
            return opened
        backoff = min(self.max_backoff, self.initial_backoff * 2 ** (self.consecutive - 1))
        self._not_before = now + backoff * random.uniform(0.5, 1.0)
        return False

    def defer(self, seconds: float) -> None:
        """The peer said when to come back (Retry-After): no attempt before then, whatever the backoff."""
        self._not_before = max(self._not_before, time.monotonic() + seconds)

    @property
    def is_open(self) -> bool:
        return self.state != CLOSED
