"""Names to addresses without threads: the hosts file, then DNS queries on the event loop.

`getaddrinfo` blocks a thread for as long as the system resolver takes. Behind a resolver
that never answers, the executor's few threads stayed busy long after each probe's
deadline: every other name waited behind them (a target named `localhost` failed every
probe) and shutdown waited for the threads (55 s). Resolution here is what Go's resolver
does, which blackbox_exporter uses: the hosts file first (re-read when it changes), then
DNS over the loop's own sockets, to the servers and search list of resolv.conf. A lookup
holds nothing but a socket, and the probe's deadline cancels it cleanly.

`TOCSIN_NAMESERVERS` (`host:port,…`) replaces resolv.conf's servers: for containers
without one, and for tests that need a resolver of their own on a high port.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver

from .result import ProbeFailure

HOSTS_FILE = "/etc/hosts"
RESOLV_CONF = "/etc/resolv.conf"
_RECHECK = 5.0  # seconds between checks of whether either file changed (as Go does)

Address = tuple[int, str]  # (socket family, address text)


class _Cached:
    """A value built from a file, rebuilt when the file's mtime changes (checked every _RECHECK s)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.checked = float("-inf")
        self.mtime: float | None = -1.0
        self.value: object = None

    def stale(self) -> bool:
        now = time.monotonic()
        if now - self.checked < _RECHECK:
            return False
        self.checked = now
        try:
            mtime: float | None = os.stat(self.path).st_mtime
        except OSError:
            mtime = None
        if mtime == self.mtime:
            return False
        self.mtime = mtime
        return True


_hosts = _Cached(HOSTS_FILE)
_conf = _Cached(RESOLV_CONF)


def _parse_hosts(text: str) -> dict[str, list[Address]]:
    table: dict[str, list[Address]] = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2:
            continue
        try:
            address = ipaddress.ip_address(fields[0].split("%", 1)[0])
        except ValueError:
            continue
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        for name in fields[1:]:
            table.setdefault(name.lower().rstrip("."), []).append((family, fields[0]))
    return table


def hosts_lookup(host: str) -> list[Address]:
    """The hosts file's addresses for `host` (IPv4 first), [] if it has none."""
    if _hosts.stale():
        try:
            with open(_hosts.path, encoding="utf-8", errors="replace") as file:
                _hosts.value = _parse_hosts(file.read())
        except OSError:
            _hosts.value = {}
    table: dict[str, list[Address]] = _hosts.value or {}  # type: ignore[assignment]  # set just above
    name = host.lower().rstrip(".")
    found = table.get(name, [])
    if not found and (name == "localhost" or name.endswith(".localhost")):
        # RFC 6761: localhost names are loopback, also where no hosts file says so (a minimal
        # container); asking DNS for them would only fail, slowly.
        found = [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")]
    return sorted(found, key=lambda entry: entry[0] != socket.AF_INET)


def _nameservers_from_env(text: str) -> list[dns.nameserver.Nameserver]:
    servers: list[dns.nameserver.Nameserver] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        host, _, port = item.rpartition(":")
        servers.append(dns.nameserver.Do53Nameserver(host.strip("[]"), int(port)))
    return servers


def _resolver() -> dns.asyncresolver.Resolver:
    if _conf.stale() or _conf.value is None:
        try:
            resolver = dns.asyncresolver.Resolver(filename=_conf.path)
        except (dns.resolver.NoResolverConfiguration, OSError, ValueError):
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = ["127.0.0.1"]  # what Go and glibc assume without a resolv.conf
        override = os.environ.get("TOCSIN_NAMESERVERS")
        if override:
            resolver.nameservers = _nameservers_from_env(override)
        resolver.lifetime = 3600.0  # the probe's deadline bounds a lookup, not the resolver
        resolver.cache = None  # a probe resolves every time, as blackbox does: it measures DNS too
        _conf.value = resolver
    return _conf.value  # type: ignore[return-value]  # set just above


_FAMILIES = {"A": socket.AF_INET, "AAAA": socket.AF_INET6}


async def lookup(host: str, order: tuple[str, ...] = ("A", "AAAA")) -> list[Address]:
    """The addresses of `host` of the first record type in `order` that has some (IPv4
    first by default; one type only when the other must not be used);
    ProbeFailure("dns") when there are none."""
    found = [entry for entry in hosts_lookup(host) if entry[0] in {_FAMILIES[rdtype] for rdtype in order}]
    if found:
        if order[0] == "AAAA":
            found.sort(key=lambda entry: entry[0] != socket.AF_INET6)
        return found
    resolver = _resolver()
    addresses: list[Address] = []
    try:
        for rdtype in order:
            family = _FAMILIES[rdtype]
            answer = await resolver.resolve(host, rdtype, search=True, raise_on_no_answer=False)
            addresses += [(family, rdata.address) for rdata in answer]
            if addresses:
                break
    except dns.resolver.NXDOMAIN:
        raise ProbeFailure("dns", f"cannot resolve {host!r}: no such host") from None
    except (dns.exception.DNSException, ValueError, UnicodeError) as exc:
        raise ProbeFailure("dns", f"cannot resolve {host!r}: {exc}") from None
    if not addresses:
        raise ProbeFailure("dns", f"no address for {host!r}")
    return addresses
