"""Which of a name's addresses a probe uses: IPv4 or IPv6 first, with or without falling back
to the other, and whether it probes one address or every one.

blackbox_exporter's `preferred_ip_protocol`/`ip_protocol_fallback` pick one address; a
name with several (a DNS round robin, a dual-stack host) then hides a dead one half the
time. `addresses: all` probes each and fails if any fails; `any` succeeds if one does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

from ..fields import Model
from .resolver import Address
from .result import Attempt


class IPOptions(Model):
    ip_protocol: Literal["ip4", "ip6"] = "ip4"  # which family to try first
    ip_protocol_fallback: bool = True  # use the other family when the first has no address
    addresses: Literal["first", "any", "all"] = "first"

    @property
    def lookup_order(self) -> tuple[str, ...]:
        first, second = ("A", "AAAA") if self.ip_protocol == "ip4" else ("AAAA", "A")
        return (first, second) if self.ip_protocol_fallback else (first,)


DEFAULT_IP = IPOptions()


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
