"""One blackbox_exporter module and one target address, as the keys of a tocsin target.

Each prober's options are taken one by one: those tocsin has are translated, those it
has not are returned as notes (`key: why`), so the importer can list them. Options left
at blackbox's default say nothing and are not reported; an option whose blackbox default
differs from tocsin's is written out (a DNS probe with no answer succeeds in blackbox, so
`fail_if_no_answer: false`; ICMP prefers IPv6 in blackbox, so `ip_protocol: ip6`).
"""

from __future__ import annotations

from typing import Any

from ..units import parse_duration

Notes = list[str]

_DNS_TYPES = ("A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT")
_TLS_KEYS = ("insecure_skip_verify", "ca_file", "cert_file", "key_file", "server_name")
# Options that are blackbox's defaults when given with these values: nothing to convert.
_HARMLESS = {
    "fail_if_ssl": False, "fail_if_not_ssl": False, "no_follow_redirects": False, "follow_redirects": True,
    "ip_protocol_fallback": True, "preferred_ip_protocol": "ip4", "valid_status_codes": [], "method": "GET",
}


def timeout_of(module: dict) -> float | None:
    value = module.get("timeout")
    return None if value is None else parse_duration(str(value))


def _tls(raw: Any, where: str, notes: Notes) -> dict:
    out: dict = {}
    for key, value in (raw or {}).items():
        if key in _TLS_KEYS:
            if value not in (None, False, ""):
                out[key] = value
        else:
            notes.append(f"{where}.{key}: tocsin's TLS options are {', '.join(_TLS_KEYS)}")
    return out


def _rest(options: dict, done: set[str], where: str, notes: Notes, why: dict[str, str] | None = None) -> None:
    """Note every option not converted and not at its harmless default."""
    for key, value in options.items():
        if key in done or _HARMLESS.get(key, object()) == value:
            continue
        notes.append(f"{where}.{key}: {(why or {}).get(key, 'no equivalent in tocsin')}")


def http(target: str, options: dict, notes: Notes) -> dict:
    url = target if "://" in target else f"http://{target}"  # as blackbox does
    out: dict = {}
    why = {
        "valid_http_versions": "tocsin speaks HTTP/1.1 and does not check the version",
        "compression": "tocsin decodes gzip, deflate, br and identity",
        "fail_if_ssl": "no equivalent; check probe_http_ssl in a rule",
        "fail_if_not_ssl": "no equivalent; check probe_http_ssl in a rule",
    }
    if options.get("method", "GET") != "GET":
        out["method"] = options["method"]
    headers = {}
    for name, value in (options.get("headers") or {}).items():
        if str(name).lower() in ("host", "content-length", "transfer-encoding"):
            notes.append(f"http.headers.{name}: tocsin sets this header itself (probe the name you want in the URL)")
        else:
            headers[str(name)] = str(value)
    if headers:
        out["headers"] = headers
    for key in ("body", "fail_if_body_matches_regexp", "fail_if_body_not_matches_regexp", "bearer_token",
                "bearer_token_file", "fail_if_header_matches", "fail_if_header_not_matches", "proxy_url"):
        if options.get(key):
            out[key] = options[key]
    if options.get("compression") in ("gzip", "deflate", "br", "identity"):
        out["compression"] = options["compression"]
    out.update(ip_protocol(options))
    if options.get("valid_status_codes"):
        out["valid_status_codes"] = [int(code) for code in options["valid_status_codes"]]
    if options.get("no_follow_redirects") or options.get("follow_redirects") is False:
        out["follow_redirects"] = False
    if options.get("tls_config"):
        tls = _tls(options["tls_config"], "http.tls_config", notes)
        if tls:
            out["tls"] = tls
    basic = options.get("basic_auth")
    if basic:
        auth = {key: basic[key] for key in ("username", "password", "password_file") if basic.get(key)}
        out["basic_auth"] = auth
        _rest(basic, {"username", "password", "password_file"}, "http.basic_auth", notes)
    done = {"method", "headers", "body", "fail_if_body_matches_regexp", "fail_if_body_not_matches_regexp",
            "bearer_token", "bearer_token_file", "valid_status_codes", "no_follow_redirects", "follow_redirects",
            "tls_config", "basic_auth", "fail_if_header_matches", "fail_if_header_not_matches", "proxy_url",
            "preferred_ip_protocol", "ip_protocol_fallback", *(["compression"] if "compression" in out else [])}
    _rest(options, done, "http", notes, why)
    return {"url": url, **({"http": out} if out else {})}


def ip_protocol(options: dict) -> dict:
    """blackbox's `preferred_ip_protocol` (default ip6) and `ip_protocol_fallback`, in tocsin's words."""
    out: dict = {"ip_protocol": options.get("preferred_ip_protocol", "ip6")}
    if options.get("ip_protocol_fallback") is False:
        out["ip_protocol_fallback"] = False
    return out


def _query_response(steps: list, notes: Notes) -> dict:
    """blackbox's steps, as tocsin takes them (expect, send, starttls; `${1}` in a send)."""
    out = []
    for position, step in enumerate(steps):
        kept = {key: step[key] for key in ("expect", "send", "starttls") if key in step}
        for key in set(step) - set(kept):
            notes.append(f"tcp.query_response[{position}].{key}: no equivalent in tocsin")
        out.append(kept)
    return {"query_response": out} if out else {}


def tcp(target: str, options: dict, notes: Notes) -> dict:
    out: dict = {"address": target}
    if options.get("tls"):
        out["tls"] = True
    if options.get("tls_config"):
        tls = _tls(options["tls_config"], "tcp.tls_config", notes)
        if tls:
            out["tls_config"] = tls
    out.update(_query_response(list(options.get("query_response") or []), notes))
    out.update(ip_protocol(options))
    _rest(options, {"tls", "tls_config", "query_response", "preferred_ip_protocol", "ip_protocol_fallback"},
          "tcp", notes)
    return {"tcp": out}


def dns(target: str, options: dict, notes: Notes) -> dict | None:
    server = target if target.rsplit(":", 1)[-1].isdigit() and not target.endswith("]") else f"{target}:53"
    query_type = str(options.get("query_type", "ANY")).upper()
    if query_type not in _DNS_TYPES:
        notes.append(f"dns.query_type {query_type}: tocsin queries {', '.join(_DNS_TYPES)}; target not converted")
        return None
    out: dict = {"query": options.get("query_name", ""), "type": query_type, "server": server,
                 "fail_if_no_answer": False}  # blackbox: an empty answer is a success
    if options.get("transport_protocol", "udp") != "udp":
        out["transport"] = options["transport_protocol"]
    if options.get("valid_rcodes"):
        out["valid_rcodes"] = [str(code) for code in options["valid_rcodes"]]
    out.update(ip_protocol(options))
    _rest(options, {"query_name", "query_type", "transport_protocol", "valid_rcodes", "preferred_ip_protocol",
                    "ip_protocol_fallback"}, "dns", notes,
          {"validate_answer_rrs": "tocsin does not match answer records", "validate_authority_rrs":
           "tocsin does not match authority records", "validate_additional_rrs": "tocsin does not match additional records"})
    return {"dns": out}


def icmp(target: str, options: dict, notes: Notes) -> dict:
    out: dict = {"host": target, "ip_protocol": options.get("preferred_ip_protocol", "ip6")}  # blackbox's default
    if options.get("ip_protocol_fallback") is False:
        out["ip_protocol_fallback"] = False
    for key in ("ttl", "payload_size"):
        if options.get(key):
            out[key] = int(options[key])
    if options.get("dont_fragment"):
        out["dont_fragment"] = True
    if options.get("source_ip_address"):
        out["source_ip_address"] = str(options["source_ip_address"])
    done = {"preferred_ip_protocol", "ip_protocol_fallback", "ttl", "payload_size", "source_ip_address",
            "dont_fragment"}
    _rest(options, done, "icmp", notes)
    return {"icmp": out}


def grpc(target: str, options: dict, notes: Notes) -> dict:
    address = target.split("://", 1)[-1]
    if not address.rsplit(":", 1)[-1].isdigit():
        address += ":443" if options.get("tls") else ":80"  # as blackbox does
    out: dict = {"address": address}
    if options.get("service"):
        out["service"] = str(options["service"])
    if options.get("tls"):
        out["tls"] = True
    if options.get("tls_config"):
        tls = _tls(options["tls_config"], "grpc.tls_config", notes)
        if tls.pop("insecure_skip_verify", False):
            notes.append("grpc.tls_config.insecure_skip_verify: grpcio always verifies; give ca_file")
        if tls:
            out["tls_config"] = tls
    if options.get("metadata"):
        out["metadata"] = {str(k): ", ".join(v) if isinstance(v, list) else str(v)
                           for k, v in options["metadata"].items()}
    out.update(ip_protocol(options))
    _rest(options, {"service", "tls", "tls_config", "metadata", "preferred_ip_protocol", "ip_protocol_fallback"},
          "grpc", notes)
    return {"grpc": out}


PROBERS = {"http": http, "tcp": tcp, "dns": dns, "icmp": icmp, "grpc": grpc}


def convert(module: dict, target: str, notes: Notes) -> dict | None:
    """The target keys probing `target` as `module` does, or None (why is in `notes`)."""
    prober = str(module.get("prober", ""))
    if prober not in PROBERS:
        notes.append(f"prober {prober!r}: tocsin has no such kind of probe; target not converted")
        return None
    for key in module:
        if key not in ("prober", "timeout", prober):
            notes.append(f"{key}: no equivalent in tocsin")
    return PROBERS[prober](target, dict(module.get(prober) or {}), notes)
