"""The DNS probe: one query to a server, checked for its response code and answers.

dnspython builds and parses the messages; the probe's deadline bounds the exchange.
"""

from __future__ import annotations

import time

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import dns.resolver

from ..config import Target
from .result import Attempt


def _default_server() -> str:
    try:
        return dns.resolver.get_default_resolver().nameservers[0]
    except (dns.resolver.NoResolverConfiguration, IndexError):
        return "127.0.0.1"


async def attempt(target: Target, deadline: float, correlation_id: str) -> Attempt:
    options = target.dns
    assert options is not None
    result = Attempt(False)
    if options.server:
        host, _, port_text = options.server.rpartition(":")
        server, port = host.strip("[]"), int(port_text)
    else:
        server, port = _default_server(), 53
    query = dns.message.make_query(options.query, options.type)
    started = time.monotonic()
    try:
        if options.transport == "tcp":
            response = await dns.asyncquery.tcp(query, server, port=port)
        else:
            response = await dns.asyncquery.udp(query, server, port=port, ignore_unexpected=True)
    except (OSError, dns.exception.DNSException) as exc:
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
