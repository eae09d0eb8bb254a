"""What `tocsin probe` prints for one result, and the TLS options its flags stand for.

A timestamp fact (a certificate's expiry, Last-Modified) is a unix time on /metrics; a
person at a terminal wants the date and how far away it is, so those are printed as
`2027-01-01 00:00:00 UTC (in 30 days)`.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

from .result import ProbeResult

# Facts that are unix times, printed as dates.
_TIMESTAMPS = frozenset({"ssl_earliest_cert_expiry", "ssl_leaf_cert_expiry", "ssl_last_chain_expiry_timestamp_seconds",
                         "http_last_modified_timestamp_seconds"})
_DAY = 86400.0


def when(timestamp: float, now: float) -> str:
    """`2027-01-01 00:00:00 UTC (in 30 days)`, or `(3 days ago)`."""
    date = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    days = (timestamp - now) / _DAY
    whole = int(abs(days))
    unit = "day" if whole == 1 else "days"
    if abs(days) < 1:
        relative = "in less than a day" if days >= 0 else "less than a day ago"
    else:
        relative = f"in {whole} {unit}" if days > 0 else f"{whole} {unit} ago"
    return f"{date} ({relative})"


def report_lines(result: ProbeResult, now: float | None = None) -> list[str]:
    """The facts, phases and labels of `result`, one per line, timestamps as dates."""
    current = time.time() if now is None else now
    lines = []
    for name, value in sorted(result.facts.items()):
        lines.append(f"  {name:<30} {when(value, current) if name in _TIMESTAMPS else f'{value:g}'}")
    for phase, seconds in result.phases.items():
        lines.append(f"  phase {phase:<24} {seconds * 1000:.1f} ms")
    for label, text in result.info.items():
        lines.append(f"  {label:<30} {text}")
    return lines


def tls_keys(kind: str, insecure: bool, ca_file: str | None) -> dict[str, Any]:
    """The `http:`/`tcp:` keys for `--insecure`/`--ca-file` (for TCP they imply TLS)."""
    tls: dict[str, Any] = {}
    if insecure:
        tls["insecure_skip_verify"] = True
    if ca_file:
        tls["ca_file"] = ca_file
    if not tls:
        return {}
    if kind == "http":
        return {"tls": tls}
    if kind == "tcp":
        return {"tls": True, "tls_config": tls}
    raise ValueError(f"--insecure and --ca-file apply to http and tcp probes, not {kind}")
