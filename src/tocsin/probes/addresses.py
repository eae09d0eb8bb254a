"""Which of a name's addresses a probe uses: IPv4 or IPv6 first, with or without falling back
to the other, and whether it probes one address or every one.

blackbox_exporter's `preferred_ip_protocol`/`ip_protocol_fallback` pick one address; a
name with several (a DNS round robin, a dual-stack host) then hides a dead one half the
time. `addresses: all` probes each and fails if any fails; `any` succeeds if one does.
blackbox's own spelling, `preferred_ip_protocol`, is accepted for `ip_protocol` in every
kind that has it, so a pasted module means what it meant there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import model_validator

from ..fields import Model
from .resolver import Address
from .result import Attempt


def preferred_ip_protocol_is_ip_protocol(data: Any) -> Any:
    """A model's raw keys with blackbox's `preferred_ip_protocol` renamed `ip_protocol` (both: an error)."""
    if isinstance(data, dict) and "preferred_ip_protocol" in data:
        if "ip_protocol" in data:
            raise ValueError("give ip_protocol or preferred_ip_protocol, not both (they are the same option)")
        data = {("ip_protocol" if key == "preferred_ip_protocol" else key): value for key, value in data.items()}
    return data


class IPPreference(Model):
    """Which family of a name's addresses to use (the kinds that probe one address)."""

    ip_protocol: Literal["ip4", "ip6"] = "ip4"  # which family to try first (blackbox's `preferred_ip_protocol` is accepted too)
    ip_protocol_fallback: bool = True  # use the other family when the first has no address

    @model_validator(mode="before")
    @classmethod
    def _blackbox_spelling(cls, data: Any) -> Any:
        return preferred_ip_protocol_is_ip_protocol(data)

    @property
    def lookup_order(self) -> tuple[str, ...]:
        first, second = ("A", "AAAA") if self.ip_protocol == "ip4" else ("AAAA", "A")
        return (first, second) if self.ip_protocol_fallback else (first,)


class IPOptions(IPPreference):
    addresses: Literal["first", "any", "all"] = "first"


DEFAULT_IP = IPPreference()


async def over_addresses(found: list[Address], policy: str,
                         probe_one: Callable[[Address], Awaitable[Attempt]]) -> Attempt:
    """Probe each address in turn under `policy` ("any" or "all"); the attempt that decided
    is returned, its message naming the address when several were probed."""
    last: Attempt | None = None
    for index, address in enumerate(found):
        last = await probe_one(address)
        decided = last.success if policy == "any" else not last.success
        if decided or index == len(found) - 1:
            if not last.success and len(found) > 1:
                last.message = f"{address[1]}: {last.message}"
            return last
    raise AssertionError("resolve returned no address")  # pragma: no cover - resolve raises first
