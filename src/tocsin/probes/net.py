"""Connection set-up shared by the HTTP and TCP probes: resolve, connect, TLS.

Each step records its phase duration and turns the OS's many exceptions into one of the
bounded failure reasons, so both probes report the same thing for the same fault. The
gauges these steps record, and the TLS options, are declared here for both kinds.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass

from ..fields import Model, ReadableFile
from .addresses import DEFAULT_IP, IPPreference
from .resolver import Address, lookup
from .result import Attempt, ProbeFailure
from .tls_chain import record_handshake

# The facts `resolve` records, and those `start_tls` records (the expiries only when the
# server presented a chain, the version as the label of an info gauge).
CONNECTION_FAMILIES = {
    "probe_dns_lookup_time_seconds": ("gauge", "Time spent resolving the target's name."),
    "probe_ip_protocol": ("gauge", "IP protocol (4 or 6) of the address probed."),
    "probe_ip_addr_hash": ("gauge", "Hash of the address probed; changes when the address does."),
}
CONNECTION_FACTS = ("dns_lookup_time_seconds", "ip_protocol", "ip_addr_hash")
TLS_FAMILIES = {
    "probe_ssl_earliest_cert_expiry": ("gauge", "Earliest expiry (unix time) in the certificate chain the server presented."),
    "probe_ssl_leaf_cert_expiry": ("gauge", "Expiry (unix time) of the server's own (leaf) certificate."),
    "probe_ssl_last_chain_expiry_timestamp_seconds": (
        "gauge", "Earliest expiry (unix time) in the chain the certificate was verified by."),
    "probe_ssl_last_chain_info": ("gauge", "The verified chain's leaf certificate, as labels."),
    "probe_tls_version_info": ("gauge", "TLS version negotiated, as a label."),
}
TLS_FACTS = ("ssl_earliest_cert_expiry", "ssl_leaf_cert_expiry", "ssl_last_chain_expiry_timestamp_seconds")
TLS_INFO_GAUGES = (
    ("tls_version", "probe_tls_version_info", "version"),
    (("last_chain_fingerprint", "last_chain_subject", "last_chain_issuer", "last_chain_sans"),
     "probe_ssl_last_chain_info", ("fingerprint_sha256", "subject", "issuer", "subjectalternative")),
)


class TLSConfig(Model):
    insecure_skip_verify: bool = False
    ca_file: ReadableFile | None = None
    cert_file: ReadableFile | None = None
    key_file: ReadableFile | None = None
    server_name: str | None = None


@dataclass(slots=True)
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def close(self) -> None:
        """Close without waiting: a hostile peer must not hold the probe in a TLS shutdown."""
        transport = self.writer.transport
        if transport.is_closing():
            return
        if transport.get_extra_info("ssl_object") is not None:
            transport.abort()
        else:
            transport.close()


def is_ip(host: str) -> bool:
    # A host may come from a redirect and be any length: only short ones are cached (an
    # IPv6 literal with a zone is well under 64 characters).
    return len(host) <= 64 and _is_ip_text(host)


@functools.lru_cache(maxsize=1024)
def _is_ip_text(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


@functools.lru_cache(maxsize=1024)
def _address_hash(address: str) -> float:
    """FNV-1a (32 bits) of the address's bytes: the value blackbox_exporter reports for the
    same address, so a dashboard's `changes(probe_ip_addr_hash)` reads the same."""
    digest = 0x811C9DC5
    for byte in ipaddress.ip_address(address.split("%", 1)[0]).packed:
        digest = ((digest ^ byte) * 0x01000193) & 0xFFFFFFFF
    return float(digest)


def record_address(address: str, family: int, attempt: Attempt) -> None:
    """The facts of the address probed (the last one when several are)."""
    attempt.facts["ip_protocol"] = 6 if family == socket.AF_INET6 else 4
    attempt.facts["ip_addr_hash"] = _address_hash(address)


async def resolve_all(host: str, attempt: Attempt, ip: IPPreference = DEFAULT_IP) -> list[Address]:
    """Every address of `host` of the protocol to use, without a thread; a literal address
    is itself whatever the preference."""
    started = time.monotonic()
    found: list[Address]
    if is_ip(host):
        found = [(socket.AF_INET6 if ":" in host else socket.AF_INET, host)]
    else:
        found = await lookup(host, ip.lookup_order)
    elapsed = time.monotonic() - started
    attempt.phases["resolve"] = attempt.phases.get("resolve", 0.0) + elapsed
    attempt.facts["dns_lookup_time_seconds"] = attempt.facts.get("dns_lookup_time_seconds", 0.0) + elapsed
    family, address = found[0]
    record_address(address, family, attempt)
    return found


async def resolve(host: str, attempt: Attempt, ip: IPPreference = DEFAULT_IP) -> tuple[str, int]:
    """Resolve `host` to one address (IPv4 first unless `ip` says otherwise)."""
    family, address = (await resolve_all(host, attempt, ip))[0]
    return address, family


async def connect(address: str, port: int, attempt: Attempt) -> Connection:
    started = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection(address, port, limit=256 * 1024)
    except ConnectionRefusedError:
        raise ProbeFailure("connect", f"connection refused by {address}:{port}") from None
    except OSError as exc:
        raise ProbeFailure("connect", f"cannot connect to {address}:{port}: {exc.strerror or exc}") from None
    attempt.phases["connect"] = attempt.phases.get("connect", 0.0) + time.monotonic() - started
    return Connection(reader, writer)


@functools.lru_cache(maxsize=256)
def tls_context(tls: TLSConfig) -> ssl.SSLContext:
    """One context per distinct TLS configuration: building one loads the CA store (~ms)."""
    context = ssl.create_default_context(cafile=tls.ca_file)
    if tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if tls.cert_file:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    return context


async def start_tls(conn: Connection, tls: TLSConfig, server_name: str, attempt: Attempt) -> None:
    """Upgrade to TLS and record the leaf and chain expiries the server presented."""
    started = time.monotonic()
    try:
        await conn.writer.start_tls(tls_context(tls), server_hostname=tls.server_name or server_name)
    except ssl.SSLCertVerificationError as exc:
        raise ProbeFailure("tls", f"certificate verification failed: {exc.verify_message}") from None
    except (ssl.SSLError, ConnectionError) as exc:
        raise ProbeFailure("tls", f"TLS handshake failed: {exc}") from None
    attempt.phases["tls"] = attempt.phases.get("tls", 0.0) + time.monotonic() - started
    ssl_object = conn.writer.get_extra_info("ssl_object")
    if ssl_object is None:  # pragma: no cover - start_tls succeeded, so this exists
        return
    record_handshake(ssl_object, attempt)


def classify_read_error(exc: BaseException) -> ProbeFailure:
    """Map an exception raised while reading a response to a reason."""
    if isinstance(exc, ProbeFailure):
        return exc
    if isinstance(exc, asyncio.IncompleteReadError):
        return ProbeFailure("reset", f"connection closed after {len(exc.partial)} bytes of a response")
    if isinstance(exc, asyncio.LimitOverrunError):
        return ProbeFailure("bad_response", "response headers too long")
    if isinstance(exc, ssl.SSLError):
        return ProbeFailure("tls", f"TLS error: {exc}")
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return ProbeFailure("reset", f"connection reset: {exc.strerror or exc}")
    if isinstance(exc, OSError):
        return ProbeFailure("connect", f"socket error: {exc.strerror or exc}")
    return ProbeFailure("error", f"{type(exc).__name__}: {exc}")
