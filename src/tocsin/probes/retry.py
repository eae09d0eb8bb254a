"""Run a probe's attempts with exponential backoff and jitter, all inside one deadline.

The deadline is the probe's whole budget: a retry is only started if it could still
finish, and no attempt outlives the deadline whatever the target does. The options of
retrying, and of polling a target that is down less often, live here with the loop.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import Field

from ..fields import Duration, Model, PositiveDuration
from .result import Attempt, ProbeResult, in_progress, interrupted

AttemptFn = Callable[[Any, float, str], Awaitable[Attempt]]


class RetryConfig(Model):
    """Retries happen inside the probe's total deadline, never beyond it."""

    attempts: int = Field(default=1, ge=1, le=20)
    initial_backoff: Duration = 0.2
    max_backoff: Duration = 2.0
    multiplier: float = Field(default=2.0, ge=1.0)
    jitter: bool = True


class BackoffWhenDown(Model):
    """Poll a failing target less often (interval × multiplier per failure, up to max_interval)."""

    max_interval: PositiveDuration
    multiplier: float = Field(default=2.0, gt=1.0)


def backoff_delay(retry: RetryConfig, failures: int, rng: random.Random = random._inst) -> float:
    """Delay before the next attempt after `failures` failed ones (>= 1)."""
    delay = min(retry.max_backoff, retry.initial_backoff * retry.multiplier ** (failures - 1))
    if retry.jitter:
        delay = rng.uniform(delay / 2, delay)  # "equal jitter": never zero, never synchronised
    return delay


async def _bounded(attempt_fn: AttemptFn, settings: Any, deadline: float, correlation_id: str) -> Attempt:
    in_progress(None)
    try:
        async with asyncio.timeout_at(deadline):
            return await attempt_fn(settings, deadline, correlation_id)
    except TimeoutError:
        return interrupted("timeout", "deadline exceeded")
    except Exception as exc:  # noqa: BLE001 - a probe never raises for a target's fault, whatever the kind missed
        return Attempt(False, "error", f"{type(exc).__name__}: {str(exc)[:200]}")


async def run_attempts(attempt_fn: AttemptFn, settings: Any, retry: RetryConfig, deadline: float,
                       correlation_id: str, target: str, kind: str) -> ProbeResult:
    """Call `attempt_fn(settings, …)` until it succeeds, attempts run out, or the next try would
    miss the deadline; the result is reported for `target`, a probe of `kind`."""
    loop = asyncio.get_running_loop()
    started_wall, started = time.time(), loop.time()
    first = last = await _bounded(attempt_fn, settings, deadline, correlation_id)
    used = 1
    while not last.success and used < retry.attempts:
        delay = backoff_delay(retry, used)
        if loop.time() + delay >= deadline:
            break
        await asyncio.sleep(delay)
        last = await _bounded(attempt_fn, settings, deadline, correlation_id)
        used += 1
    return ProbeResult(
        target=target, kind=kind, success=last.success, reason=last.reason,
        message=last.message, duration=loop.time() - started, attempts=used,
        first_attempt_success=first.success, correlation_id=correlation_id,
        started_at=started_wall, timeout=deadline - started, facts=last.facts,
        phases=last.phases, info=last.info)
