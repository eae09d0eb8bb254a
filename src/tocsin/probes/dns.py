"""The DNS probe: one query to a server, checked for its response code and answers.

dnspython builds and parses the messages; the probe's deadline bounds the exchange. The
server's name is resolved and its socket opened before the query, each timed, so the
phases (resolve, connect, request) and the address facts are blackbox_exporter's.
`probe_dns_query_succeeded` is 1 whenever a response came back (NXDOMAIN included), as in
blackbox; whether the response is the one wanted is `probe_success`.
"""

from __future__ import annotations

import socket
import time
from typing import Literal

import dns.asyncbackend
import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype
import dns.resolver
from pydantic import Field

from ..fields import HostPort
from .addresses import IPOptions
from .kind import ProbeKind
from .net import CONNECTION_FACTS, CONNECTION_FAMILIES, resolve
from .result import Attempt, ProbeFailure, in_progress


class DNSConfig(IPOptions):
    query: str
    type: Literal["A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT"] = "A"
    server: HostPort | None = None
    transport: Literal["udp", "tcp"] = "udp"
    valid_rcodes: list[str] = Field(default_factory=lambda: ["NOERROR"])
    fail_if_no_answer: bool = True


def _default_server() -> str:
    try:
        return str(dns.resolver.get_default_resolver().nameservers[0])
    except (dns.resolver.NoResolverConfiguration, IndexError):
        return "127.0.0.1"


async def _query(options: DNSConfig, server: str, family: int, port: int, result: Attempt) -> dns.message.Message:
    backend = dns.asyncbackend.get_backend("asyncio")
    query = dns.message.make_query(options.query, options.type)
    started = time.monotonic()
    if options.transport == "tcp":
        stream = await backend.make_socket(family, socket.SOCK_STREAM, 0, None, (server, port))
        result.phases["connect"] = time.monotonic() - started
        try:
            started = time.monotonic()
            response = await dns.asyncquery.tcp(query, server, port=port, sock=stream)
        finally:
            await stream.close()
    else:
        datagram = await backend.make_socket(family, socket.SOCK_DGRAM, 0, None, (server, port))
        result.phases["connect"] = time.monotonic() - started
        try:
            started = time.monotonic()
            response = await dns.asyncquery.udp(query, server, port=port, sock=datagram, ignore_unexpected=True)
        finally:
            await datagram.close()
    result.phases["request"] = time.monotonic() - started
    return response


async def attempt(options: DNSConfig, _deadline: float, _correlation_id: str) -> Attempt:
    result = in_progress(Attempt(False))
    assert result is not None
    if options.server:
        host, _, port_text = options.server.rpartition(":")
        server, port = host.strip("[]"), int(port_text)
    else:
        server, port = _default_server(), 53
    try:
        address, family = await resolve(server, result, options)
        response = await _query(options, address, family, port, result)
    except ProbeFailure as failure:
        result.reason, result.message = failure.reason, failure.message
        return result
    except (OSError, dns.exception.DNSException, ValueError) as exc:
        result.reason, result.message = "connect", f"DNS query to {server}:{port} failed: {exc}"
        return result
    result.facts["dns_query_succeeded"] = 1.0  # an answer came back; whether it is right is below
    rcode = dns.rcode.to_text(response.rcode())
    result.facts.update({
        "dns_answer_rrs": float(sum(len(r) for r in response.answer)),
        "dns_authority_rrs": float(sum(len(r) for r in response.authority)),
        "dns_additional_rrs": float(sum(len(r) for r in response.additional)),
    })
    if options.type == "SOA":
        serials = [rdata.serial for rrset in response.answer if rrset.rdtype == dns.rdatatype.SOA for rdata in rrset]
        result.facts["dns_serial"] = float(serials[-1]) if serials else 0.0
    if rcode not in options.valid_rcodes:
        result.reason, result.message = "rcode", f"response code {rcode}"
    elif options.fail_if_no_answer and not response.answer:
        result.reason, result.message = "no_answer", f"no {options.type} answer for {options.query}"
    else:
        result.success = True
    return result


def _target_keys(endpoint: str) -> dict:
    """`name` or `name@server:port`."""
    query, _, server = endpoint.partition("@")
    return {"dns": {"query": query, **({"server": server} if server else {})}}


KIND = ProbeKind(
    name="dns", key="dns", key_text="dns", target_fields={"dns": (DNSConfig | None, None)},
    settings=lambda get: get("dns"), attempt=attempt, endpoint=lambda options: options.query,
    target_keys=_target_keys,
    families={
        **CONNECTION_FAMILIES,
        "probe_dns_duration_seconds": ("gauge", "Duration of each phase of the DNS query."),
        "probe_dns_answer_rrs": ("gauge", "Resource records in the answer section."),
        "probe_dns_authority_rrs": ("gauge", "Resource records in the authority section."),
        "probe_dns_additional_rrs": ("gauge", "Resource records in the additional section."),
        "probe_dns_query_succeeded": ("gauge", "Whether a response came back (whatever its code)."),
        "probe_dns_serial": ("gauge", "Serial of the SOA record answered (SOA queries only)."),
    },
    facts=(*CONNECTION_FACTS, "dns_answer_rrs", "dns_authority_rrs", "dns_additional_rrs", "dns_query_succeeded"),
    optional_facts=("dns_serial",),
    phase_family="probe_dns_duration_seconds", phases=("resolve", "connect", "request"),
)
