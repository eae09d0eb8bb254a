"""The ICMP probe: echo requests over an unprivileged datagram ICMP socket ("ping socket").

A raw socket needs CAP_NET_RAW, which the hardened unit does not grant. Linux offers
`socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)` (and its ICMPv6 twin) to the groups in
`net.ipv4.ping_group_range` instead; upstream systemd opens that range to every group (Debian's
leaves it closed, so `systemd/install.sh` installs a sysctl.d file that opens it).
The kernel sets the echo identifier to the socket's port and delivers only the replies to
it, so two probes of the same host never see each other's replies. Where the range leaves
the daemon's group out, the socket is refused with EACCES: the probe says so, and how to
fix it, rather than reporting the host as down for a reason that is not the host's.

With `packets: N` the probe sends N echoes `packet_interval` apart and reports loss and
round-trip statistics (what blackbox_exporter, which sends one, cannot); it succeeds when
at least one reply came back — loss is for rules to judge, from `probe_icmp_packet_loss_ratio`.

`dont_fragment` (blackbox's option) sets path-MTU discovery to "do" on the socket: the kernel
sends with the DF bit and refuses (EMSGSIZE) a request larger than the known path MTU
instead of fragmenting it, so a probe with a large `payload_size` tells whether that size gets
through unfragmented. Blackbox needs a raw socket and root for it; a ping socket takes the
option like any datagram socket. IPv6 routers never fragment; the sender is told the same.
"""

from __future__ import annotations

import asyncio
import errno
import math
import os
import socket
import struct
import time
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..fields import Duration, Model
from .addresses import preferred_ip_protocol_is_ip_protocol
from .kind import ProbeKind
from .net import CONNECTION_FACTS, CONNECTION_FAMILIES, is_ip
from .net import _address_hash as address_hash  # the same hash as the other kinds report
from .resolver import lookup
from .result import Attempt, ProbeFailure

_IP_RECVTTL = getattr(socket, "IP_RECVTTL", 12)  # Linux's value; Python does not export it everywhere
# Linux's <linux/in.h> and <linux/in6.h>; Python's socket module exports neither
IP_MTU_DISCOVER, IP_PMTUDISC_DO = 10, 2
IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO = 23, 2
_ECHO_REQUEST: dict[int, int] = {socket.AF_INET: 8, socket.AF_INET6: 128}
_ECHO_REPLY: dict[int, int] = {socket.AF_INET: 0, socket.AF_INET6: 129}
_PAYLOAD = b"tocsin icmp probe"


class ICMPConfig(Model):
    host: str = Field(min_length=1, max_length=255)  # a host name or IP address to ping
    # ip4 or ip6: the address family tried first (then the other, unless ip_protocol_fallback is off);
    # not given: IPv4 first, as for the other kinds.
    ip_protocol: Literal["ip4", "ip6"] | None = None  # the family tried first (default ip4)
    ip_protocol_fallback: bool = True  # try the other address family when the first has no address
    packets: int = Field(default=1, ge=1, le=100)  # echo requests per probe; above 1, loss and RTT statistics
    packet_interval: Duration = Field(default=0.1, ge=0.001, le=10.0)  # between two echo requests
    payload_size: int = Field(default=len(_PAYLOAD), ge=0, le=1400)  # bytes of payload in each request
    ttl: int | None = Field(default=None, ge=1, le=255)  # IPv4 TTL / IPv6 hop limit of the requests
    source_ip_address: str | None = None  # send from this local address (a multi-homed host)
    dont_fragment: bool = False  # send with the DF bit: a request larger than the path MTU fails, never fragmented

    @model_validator(mode="before")
    @classmethod
    def _blackbox_spelling(cls, data: Any) -> Any:
        return preferred_ip_protocol_is_ip_protocol(data)

    @field_validator("source_ip_address")
    @classmethod
    def _an_address(cls, value: str | None) -> str | None:
        if value is not None and not is_ip(value):
            raise ValueError("expected an IP address of this host, such as 192.0.2.10")
        return value


def _ping_range_text() -> str:
    try:
        with open("/proc/sys/net/ipv4/ping_group_range", encoding="ascii") as file:
            return " = " + " ".join(file.read().split())
    except OSError:  # hidden from a hardened service (ProcSubset=pid)
        return ""


def open_socket(family: int, ttl: int | None = None, dont_fragment: bool = False) -> socket.socket:
    """A non-blocking ping socket of `family` that reports each reply's TTL / hop limit.

    Raises ProbeFailure("error") with the remedy when the kernel refuses it.
    """
    proto = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
    try:
        sock = socket.socket(family, socket.SOCK_DGRAM, proto)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise ProbeFailure("error", (
                f"the kernel refuses unprivileged ICMP sockets to this process (group {os.getgid()} is not in "
                f"net.ipv4.ping_group_range{_ping_range_text()}); allow it with "
                "`sysctl -w net.ipv4.ping_group_range='0 2147483647'` (upstream systemd's default; "
                "systemd/install.sh installs it in /etc/sysctl.d)")) from None
        if exc.errno in (errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT):
            raise ProbeFailure("connect", f"ICMP over {'IPv6' if family == socket.AF_INET6 else 'IPv4'} "
                                          f"is not available here: {exc.strerror}") from None
        raise ProbeFailure("error", f"cannot open an ICMP socket: {exc.strerror or exc}") from None
    try:
        sock.setblocking(False)
        if family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_IP, _IP_RECVTTL, 1)
            if ttl is not None:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
            if dont_fragment:
                sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
        else:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
            if ttl is not None:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
            if dont_fragment:
                sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO)
    except OSError:
        sock.close()
        raise
    return sock


async def _address(options: ICMPConfig, attempt: Attempt) -> tuple[int, str]:
    """The address to ping and its family, by the ip_protocol preference; records the resolve facts."""
    started = time.monotonic()
    host = options.host.strip("[]")
    candidates: list[tuple[int, str]]
    if is_ip(host):
        candidates = [(socket.AF_INET6 if ":" in host else socket.AF_INET, host)]
    else:
        candidates = await lookup(host)
    if options.ip_protocol is not None:
        preferred = socket.AF_INET6 if options.ip_protocol == "ip6" else socket.AF_INET
        ordered = sorted(candidates, key=lambda entry: entry[0] != preferred)
        if not options.ip_protocol_fallback:
            ordered = [entry for entry in ordered if entry[0] == preferred]
        if not ordered:
            raise ProbeFailure("dns", f"{options.host} has no {options.ip_protocol} address "
                                      "(ip_protocol_fallback is off)")
        candidates = ordered
    family, address = candidates[0]
    elapsed = time.monotonic() - started
    attempt.phases["resolve"] = elapsed
    attempt.facts["dns_lookup_time_seconds"] = elapsed
    attempt.facts["ip_protocol"] = 6 if family == socket.AF_INET6 else 4
    attempt.facts["ip_addr_hash"] = address_hash(address)
    return family, address


def _echo(family: int, sequence: int, payload: bytes) -> bytes:
    # Identifier and checksum are the kernel's to fill in on a ping socket.
    return struct.pack("!BBHHH", _ECHO_REQUEST[family], 0, 0, 0, sequence) + payload


def _hop_limit(ancillary: list[tuple[int, int, bytes]]) -> float | None:
    for level, kind, data in ancillary:
        if (level, kind) in ((socket.IPPROTO_IP, socket.IP_TTL), (socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT)):
            return float(struct.unpack("=i", data[:4])[0])
    return None


class _Replies:
    """Reads echo replies off the socket as they arrive: sequence -> (arrival, hop limit)."""

    def __init__(self, sock: socket.socket, family: int, payload: bytes) -> None:
        self.sock, self.family, self.payload = sock, family, payload
        self.arrived: dict[int, tuple[float, float | None]] = {}
        self.changed = asyncio.Event()

    def on_readable(self) -> None:
        while True:
            try:
                data, ancillary, _flags, _peer = self.sock.recvmsg(2048, socket.CMSG_SPACE(4) * 2)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # an ICMP error queued for the socket (unreachable): no reply, keep listening
                return
            now = time.monotonic()
            if len(data) < 8 or data[0] != _ECHO_REPLY[self.family] or data[8:] != self.payload:
                continue
            sequence = struct.unpack("!H", data[6:8])[0]
            self.arrived.setdefault(sequence, (now, _hop_limit(ancillary)))
            self.changed.set()


async def attempt(options: ICMPConfig, deadline: float, _correlation_id: str) -> Attempt:
    result = Attempt(False)
    loop = asyncio.get_running_loop()
    try:
        family, address = await _address(options, result)
        started = time.monotonic()
        sock = open_socket(family, options.ttl, options.dont_fragment)
        result.phases["setup"] = time.monotonic() - started
        if options.source_ip_address is not None:
            try:
                sock.bind((options.source_ip_address, 0))
            except OSError as exc:
                sock.close()
                raise ProbeFailure("connect", f"cannot send from {options.source_ip_address}: "
                                              f"{exc.strerror or exc}") from None
        try:
            await _ping(sock, family, address, options, deadline, result, loop)
        finally:
            loop.remove_reader(sock.fileno())
            sock.close()
    except ProbeFailure as failure:
        result.reason, result.message = failure.reason, failure.message
    return result


async def _ping(sock: socket.socket, family: int, address: str, options: ICMPConfig, deadline: float,
                result: Attempt, loop: asyncio.AbstractEventLoop) -> None:
    payload = (_PAYLOAD * (options.payload_size // len(_PAYLOAD) + 1))[:options.payload_size]
    replies = _Replies(sock, family, payload)
    loop.add_reader(sock.fileno(), replies.on_readable)
    # Stop waiting for lost replies a little before the deadline, so what was measured is reported
    # instead of a bare timeout.
    cutoff = deadline - max(0.005, 0.05 * (deadline - loop.time()))
    first = int.from_bytes(os.urandom(2), "big")
    sent: dict[int, float] = {}
    for index in range(options.packets):
        if index:
            await asyncio.sleep(options.packet_interval)
        if loop.time() >= cutoff:
            break
        sequence = (first + index) & 0xFFFF
        try:
            sent[sequence] = time.monotonic()
            sock.sendto(_echo(family, sequence, payload), (address, 0))
        except OSError as exc:
            sent.pop(sequence, None)
            if not sent:
                raise ProbeFailure("connect", f"cannot send an echo request to {address}: {exc.strerror or exc}") from None
    while len(replies.arrived) < len(sent) and loop.time() < cutoff:
        replies.changed.clear()
        try:
            await asyncio.wait_for(replies.changed.wait(), timeout=max(0.0, cutoff - loop.time()))
        except TimeoutError:
            break
    _report(result, sent, replies.arrived, options, address)


def _report(result: Attempt, sent: dict[int, float], arrived: dict[int, tuple[float, float | None]],
            options: ICMPConfig, address: str) -> None:
    rtts = [arrived[seq][0] - at for seq, at in sent.items() if seq in arrived]
    if options.packets > 1 or "packets" in options.model_fields_set:
        received = len(rtts)
        result.facts["icmp_packets_sent"] = float(len(sent))
        result.facts["icmp_packets_received"] = float(received)
        result.facts["icmp_packet_loss_ratio"] = 1.0 - received / len(sent) if sent else 1.0
        if rtts:
            mean = sum(rtts) / received
            result.facts.update({
                "icmp_rtt_min_seconds": min(rtts), "icmp_rtt_avg_seconds": mean, "icmp_rtt_max_seconds": max(rtts),
                "icmp_rtt_stddev_seconds": math.sqrt(sum((rtt - mean) ** 2 for rtt in rtts) / received),
            })
    if not rtts:
        result.reason, result.message = "timeout", f"no echo reply from {address} ({len(sent)} sent)"
        return
    result.phases["rtt"] = sum(rtts) / len(rtts)
    hop_limits = [arrived[seq][1] for seq in sent if seq in arrived and arrived[seq][1] is not None]
    if hop_limits:
        result.facts["icmp_reply_hop_limit"] = float(hop_limits[-1] or 0.0)
    result.success = True


def _target_keys(endpoint: str) -> dict:
    return {"icmp": {"host": endpoint}}


_STATS = ("min", "avg", "max", "stddev")

KIND = ProbeKind(
    name="icmp", key="icmp", key_text="icmp", target_fields={"icmp": (ICMPConfig | None, None)},
    settings=lambda get: get("icmp"), attempt=attempt, endpoint=lambda options: options.host,
    target_keys=_target_keys,
    families={
        **CONNECTION_FAMILIES,
        "probe_icmp_duration_seconds": ("gauge", "Duration of the ICMP request by phase (rtt: mean round trip)."),
        "probe_icmp_reply_hop_limit": ("gauge", "Hop limit (TTL for IPv4) of the last echo reply."),
        "probe_icmp_packets_sent": ("gauge", "Echo requests sent by the last probe."),
        "probe_icmp_packets_received": ("gauge", "Echo replies received by the last probe."),
        "probe_icmp_packet_loss_ratio": ("gauge", "Share of the echo requests of the last probe left unanswered."),
        "probe_icmp_rtt_seconds": ("gauge", "Round-trip time of the last probe's echoes, by statistic."),
    },
    facts=CONNECTION_FACTS,
    optional_facts=("icmp_reply_hop_limit", "icmp_packets_sent", "icmp_packets_received", "icmp_packet_loss_ratio"),
    phase_family="probe_icmp_duration_seconds", phases=("resolve", "setup", "rtt"),
    labelled_facts=tuple((f"icmp_rtt_{stat}_seconds", "probe_icmp_rtt_seconds", ("stat", stat)) for stat in _STATS),
)
