"""Probes: one module per kind, all behind one signature.

`run_probe(target, deadline)` is the only entry point the scheduler uses; each kind
module supplies `attempt(target, deadline, correlation_id) -> Attempt`, and the retry
loop around it lives in one place.
"""

from __future__ import annotations

import random

from ..config import Target
from . import dns, http, tcp
from .result import REASONS, Attempt, ProbeResult
from .retry import AttemptFn, run_attempts

ATTEMPTS: dict[str, AttemptFn] = {"http": http.attempt, "tcp": tcp.attempt, "dns": dns.attempt}


def new_correlation_id() -> str:
    """32 hex digits: usable as a W3C trace id, so target logs can be joined to ours.

    Trace ids need to be unique, not secret: the process's PRNG serves without a syscall.
    """
    return f"{random.getrandbits(128) or 1:032x}"


async def run_probe(target: Target, deadline: float, correlation_id: str | None = None) -> ProbeResult:
    """Probe `target` until `deadline` (event-loop time). Never raises for the target's fault."""
    return await run_attempts(ATTEMPTS[target.kind], target, deadline, correlation_id or new_correlation_id())


__all__ = ["REASONS", "Attempt", "ProbeResult", "run_probe", "new_correlation_id"]
