"""The DNS probe: one query to a server, checked for its response code and answers.

dnspython builds and parses the messages; the probe's deadline bounds the exchange.
"""

from __future__ import annotations

import time
from typing import Literal

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import dns.resolver
from pydantic import Field

from ..fields import HostPort, Model
from .kind import ProbeKind
from .net import is_ip
from .resolver import lookup
from .result import Attempt, ProbeFailure


class DNSConfig(Model):
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


async def attempt(options: DNSConfig, _deadline: float, _correlation_id: str) -> Attempt:
    result = Attempt(False)
    if options.server:
        host, _, port_text = options.server.rpartition(":")
        server, port = host.strip("[]"), int(port_text)
    else:
        server, port = _default_server(), 53
    started = time.monotonic()
    try:
        if not is_ip(server):  # dnspython takes addresses only; resolve without a thread
            server = (await lookup(server))[0][1]
        query = dns.message.make_query(options.query, options.type)
        if options.transport == "tcp":
            response = await dns.asyncquery.tcp(query, server, port=port)
        else:
            response = await dns.asyncquery.udp(query, server, port=port, ignore_unexpected=True)
    except ProbeFailure as failure:
        result.reason, result.message = failure.reason, failure.message
        return result
    except (OSError, dns.exception.DNSException, ValueError) as exc:
        result.reason, result.message = "connect", f"DNS query to {server}:{port} failed: {exc}"
        return result
    result.phases["request"] = time.monotonic() - started
    rcode = dns.rcode.to_text(response.rcode())
    result.facts.update({
        "dns_answer_rrs": float(sum(len(r) for r in response.answer)),
        "dns_authority_rrs": float(sum(len(r) for r in response.authority)),
        "dns_additional_rrs": float(sum(len(r) for r in response.additional)),
    })
    if rcode not in options.valid_rcodes:
        result.reason, result.message = "rcode", f"response code {rcode}"
    elif options.fail_if_no_answer and not response.answer:
        result.reason, result.message = "no_answer", f"no {options.type} answer for {options.query}"
    else:
        result.success = True
    result.facts["dns_query_succeeded"] = 1.0 if result.success else 0.0
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
        "probe_dns_duration_seconds": ("gauge", "Duration of the DNS request."),
        "probe_dns_answer_rrs": ("gauge", "Resource records in the answer section."),
        "probe_dns_authority_rrs": ("gauge", "Resource records in the authority section."),
        "probe_dns_additional_rrs": ("gauge", "Resource records in the additional section."),
        "probe_dns_query_succeeded": ("gauge", "Whether the DNS query got a valid answer."),
    },
    facts=("dns_answer_rrs", "dns_authority_rrs", "dns_additional_rrs", "dns_query_succeeded"),
    phase_family="probe_dns_duration_seconds", phases=("request",),
)
