"""The gRPC probe: the standard health check, `grpc.health.v1.Health/Check`, with a service name.

grpcio carries the call (HTTP/2, TLS, status codes). The two health messages are one
field each, so they are encoded here rather than through generated protobuf code: the
daemon needs grpcio alone, and grpcio is imported on the first gRPC probe, not at start.
The names and values are blackbox_exporter's: `probe_grpc_status_code` (the call's gRPC
status, 0 when it answered), `probe_grpc_healthcheck_response{serving_status}` (1 for the
status the server gave, 0 for the others, all 0 when it gave none) and `probe_grpc_ssl`.

grpcio does not show the certificates it verified, so with `tls: true` the probe first
makes a TLS handshake of its own to the same address (as the TCP probe does) to report the
chain's expiries and the TLS version, then lets grpcio make the call.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import Field, model_validator

from ..fields import HostPort
from .addresses import IPPreference
from .kind import ProbeKind
from .net import (
    CONNECTION_FACTS,
    CONNECTION_FAMILIES,
    TLS_FACTS,
    TLS_FAMILIES,
    TLS_INFO_GAUGES,
    TLSConfig,
    connect,
    resolve,
    start_tls,
)
from .result import Attempt, ProbeFailure

SERVING_STATUSES = ("UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN")  # the proto's enum, in order
_METHOD = "/grpc.health.v1.Health/Check"


class GRPCConfig(IPPreference):
    address: HostPort  # host:port of the gRPC server
    service: str = Field(default="", max_length=1000)  # "" asks about the server as a whole
    tls: bool = False  # connect with TLS (verified against tls_config.ca_file or the system CAs)
    tls_config: TLSConfig = TLSConfig()  # CA, client certificate, server name
    metadata: dict[str, str] = Field(default_factory=dict)  # sent with the call, e.g. an authorization token

    @model_validator(mode="after")
    def _verifiable(self) -> "GRPCConfig":
        if self.tls and self.tls_config.insecure_skip_verify:
            raise ValueError("tls_config.insecure_skip_verify is not available for gRPC (grpcio always verifies); "
                             "give tls_config.ca_file with the server's CA or self-signed certificate")
        return self


def encode_request(service: str) -> bytes:
    """HealthCheckRequest{service = 1}: a length-delimited field, absent when empty (proto3)."""
    data = service.encode()
    if not data:
        return b""
    length, out = len(data), bytearray(b"\x0a")
    while length >= 0x80:
        out.append(length & 0x7F | 0x80)
        length >>= 7
    out.append(length)
    return bytes(out) + data


def decode_status(data: bytes) -> int:
    """HealthCheckResponse's `status` (field 1, a varint); 0 (UNKNOWN) when absent. Other fields are skipped."""
    status, index = 0, 0

    def varint() -> int:
        nonlocal index
        value = shift = 0
        while True:
            if index >= len(data) or shift > 63:
                raise ValueError("truncated varint")
            byte = data[index]
            index += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    while index < len(data):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            value = varint()
            if field == 1:
                status = value
        elif wire == 2:
            index += varint()
        elif wire == 1:
            index += 8
        elif wire == 5:
            index += 4
        else:
            raise ValueError(f"unexpected wire type {wire}")
    return status


def _credentials(grpc: Any, tls: TLSConfig) -> Any:
    def read(path: str | None) -> bytes | None:
        if path is None:
            return None
        with open(path, "rb") as file:
            return file.read()

    return grpc.ssl_channel_credentials(read(tls.ca_file), read(tls.key_file), read(tls.cert_file))


def _serving(result: Attempt, status_name: str | None) -> None:
    for name in SERVING_STATUSES:
        result.facts[f"grpc_healthcheck_{name}"] = 1.0 if name == status_name else 0.0


async def attempt(options: GRPCConfig, deadline: float, _correlation_id: str) -> Attempt:
    import asyncio

    import grpc  # type: ignore[import-untyped]  # grpcio ships no type information
    import grpc.aio  # type: ignore[import-untyped]

    result = Attempt(False)
    _serving(result, None)
    host, _, port_text = options.address.rpartition(":")
    host, port = host.strip("[]"), int(port_text)
    try:
        address, _family = await resolve(host, result, options)
        if options.tls:
            conn = await connect(address, port, result)
            try:
                await start_tls(conn, options.tls_config, host, result)
            finally:
                conn.close()
        target = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        channel_options: list[tuple[str, Any]] = [("grpc.enable_retries", 0), ("grpc.default_authority", f"{host}:{port}")]
        started = time.monotonic()
        if options.tls:
            channel_options.append(("grpc.ssl_target_name_override", options.tls_config.server_name or host))
            channel = grpc.aio.secure_channel(target, _credentials(grpc, options.tls_config), options=channel_options)
        else:
            channel = grpc.aio.insecure_channel(target, options=channel_options)
        try:
            check = channel.unary_unary(_METHOD, request_serializer=encode_request, response_deserializer=decode_status)
            remaining = max(0.001, deadline - asyncio.get_running_loop().time())
            try:
                status = await check(options.service, timeout=remaining,
                                     metadata=tuple(options.metadata.items()) or None)
            except grpc.aio.AioRpcError as error:
                result.phases["check"] = time.monotonic() - started
                raise _failure(grpc, error, result) from None
        finally:
            await channel.close()
        result.phases["check"] = time.monotonic() - started
    except ProbeFailure as failure:
        result.reason, result.message = failure.reason, failure.message
        return result
    name = SERVING_STATUSES[status] if 0 <= status < len(SERVING_STATUSES) else None
    _serving(result, name)
    result.facts["grpc_ssl"] = 1.0 if options.tls else 0.0
    if name != "SERVING":
        result.reason, result.message = "not_serving", f"health check of {options.service or 'the server'!r}: {name or status}"
        return result
    result.success = True
    return result


def _failure(grpc: Any, error: Any, result: Attempt) -> ProbeFailure:
    code = error.code()
    result.facts["grpc_status_code"] = float(code.value[0])
    details = (error.details() or "")[:300]
    if code == grpc.StatusCode.UNAVAILABLE:
        return ProbeFailure("connect", f"gRPC server unavailable: {details}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return ProbeFailure("timeout", "deadline exceeded during the gRPC health check")
    if code == grpc.StatusCode.NOT_FOUND:
        return ProbeFailure("not_serving", f"the server does not know the service: {details}")
    return ProbeFailure("not_serving", f"health check failed with gRPC status {code.name}: {details}")


KIND = ProbeKind(
    name="grpc", key="grpc", key_text="grpc", target_fields={"grpc": (GRPCConfig | None, None)},
    settings=lambda get: get("grpc"), attempt=attempt, endpoint=lambda options: options.address,
    target_keys=lambda endpoint: {"grpc": {"address": endpoint}},
    families={
        **CONNECTION_FAMILIES,
        "probe_grpc_duration_seconds": ("gauge", "Duration of gRPC request by phase"),
        "probe_grpc_ssl": ("gauge", "Indicates if SSL was used for the connection"),
        "probe_grpc_status_code": ("gauge", "Response gRPC status code"),
        "probe_grpc_healthcheck_response": ("gauge", "Response HealthCheck response"),
        **TLS_FAMILIES,
    },
    facts=(*CONNECTION_FACTS, "grpc_ssl", "grpc_status_code"), optional_facts=TLS_FACTS,
    phase_family="probe_grpc_duration_seconds", phases=("resolve", "check"),
    labelled_facts=tuple((f"grpc_healthcheck_{name}", "probe_grpc_healthcheck_response", ("serving_status", name))
                         for name in SERVING_STATUSES),
    info_gauges=TLS_INFO_GAUGES,
)
