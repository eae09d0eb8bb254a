"""Run a probe's attempts with exponential backoff and jitter, all inside one deadline.

The deadline is the probe's whole budget: a retry is only started if it could still
finish, and no attempt outlives the deadline whatever the target does.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Awaitable, Callable

from ..config import RetryConfig, Target
from .result import Attempt, ProbeResult

AttemptFn = Callable[[Target, float, str], Awaitable[Attempt]]


def backoff_delay(retry: RetryConfig, failures: int, rng: random.Random = random._inst) -> float:  # type: ignore[attr-defined]
    """Delay before the next attempt after `failures` failed ones (>= 1)."""
    delay = min(retry.max_backoff, retry.initial_backoff * retry.multiplier ** (failures - 1))
    if retry.jitter:
        delay = rng.uniform(delay / 2, delay)  # "equal jitter": never zero, never synchronised
    return delay


async def _bounded(attempt_fn: AttemptFn, target: Target, deadline: float, correlation_id: str) -> Attempt:
    try:
        async with asyncio.timeout_at(deadline):
            return await attempt_fn(target, deadline, correlation_id)
    except TimeoutError:
        return Attempt(False, "timeout", "deadline exceeded")


async def run_attempts(attempt_fn: AttemptFn, target: Target, deadline: float, correlation_id: str) -> ProbeResult:
    """Call `attempt_fn` until it succeeds, attempts run out, or the next try would miss the deadline."""
    loop = asyncio.get_running_loop()
    started_wall, started = time.time(), loop.time()
    retry = target.retry or RetryConfig()
    first = last = await _bounded(attempt_fn, target, deadline, correlation_id)
    used = 1
    while not last.success and used < retry.attempts:
        delay = backoff_delay(retry, used)
        if loop.time() + delay >= deadline:
            break
        await asyncio.sleep(delay)
        last = await _bounded(attempt_fn, target, deadline, correlation_id)
        used += 1
    return ProbeResult(
        target=target.name, kind=target.kind, success=last.success, reason=last.reason,
        message=last.message, duration=loop.time() - started, attempts=used,
        first_attempt_success=first.success, correlation_id=correlation_id,
        started_at=started_wall, timeout=deadline - started, facts=last.facts,
        phases=last.phases, info=last.info)
