"""Probes: one module per kind, all behind one signature, listed in one registry.

Each kind module describes itself with a `ProbeKind` (its target keys and options, its
`attempt(settings, deadline, correlation_id) -> Attempt`, the gauges it reports); `KINDS`
below lists them, and the configuration schema, metrics and views are built from it: a
new kind is one module plus one line here. `run_probe(probe, deadline)` is the only entry
point the scheduler uses; the retry loop around the attempts lives in one place.
"""

from __future__ import annotations

import random

from . import dns, grpc, http, icmp, push, tcp
from .kind import Probe, ProbeKind
from .result import REASONS, Attempt, ProbeResult
from .retry import run_attempts

KINDS: dict[str, ProbeKind] = {kind.name: kind for kind in (http.KIND, tcp.KIND, dns.KIND, icmp.KIND, grpc.KIND, push.KIND)}


def new_correlation_id() -> str:
    """32 hex digits: usable as a W3C trace id, so target logs can be joined to ours.

    Trace ids need to be unique, not secret: the process's PRNG serves without a syscall.
    """
    return f"{random.getrandbits(128) or 1:032x}"


async def run_probe(probe: Probe, deadline: float, correlation_id: str | None = None) -> ProbeResult:
    """Probe until `deadline` (event-loop time). Never raises for the target's fault."""
    return await run_attempts(probe.kind.attempt, probe.settings, probe.retry, deadline,
                              correlation_id or new_correlation_id(), probe.name, probe.kind.name)


__all__ = ["KINDS", "REASONS", "Attempt", "Probe", "ProbeKind", "ProbeResult", "new_correlation_id", "run_probe"]
