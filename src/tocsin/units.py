"""Prometheus-style durations (`1h30m`, `500ms`) and sizes (`10MiB`).

Operators already write durations this way in Prometheus and Alertmanager files, so
tocsin accepts exactly that grammar: units from largest to smallest, each at most once.
"""

from __future__ import annotations

import re

_DURATION_UNITS = {"y": 365 * 86400.0, "w": 7 * 86400.0, "d": 86400.0, "h": 3600.0,
                   "m": 60.0, "s": 1.0, "ms": 0.001}
_DURATION_RE = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_duration(text: str) -> float:
    """Return seconds for a Prometheus duration such as `1h30m` or `250ms`; `0` is allowed."""
    if not isinstance(text, str):
        raise ValueError("expected a duration such as 30s, 5m or 1h30m")
    match = _DURATION_RE.match(text.strip())
    if text.strip() in ("", ) or not match or not any(match.groups()):
        if text.strip() == "0":
            return 0.0
        raise ValueError(f"expected a duration such as 30s, 5m or 1h30m, got {text!r}")
    units = ("y", "w", "d", "h", "m", "s", "ms")
    return sum(int(value) * _DURATION_UNITS[unit] for value, unit in zip(match.groups(), units, strict=True) if value)


def format_duration(seconds: float) -> str:
    """Inverse of `parse_duration` for display (`90` -> `1m30s`)."""
    if seconds == 0:
        return "0s"
    millis = int(round(seconds * 1000))
    out = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, millis = divmod(millis, size)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)


def parse_size(value: int | str) -> int:
    """Return bytes for an integer or a string such as `10MiB`, `512KB` or `1024`."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 1MiB or a number of bytes")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("expected a non-negative size")
        return value
    if isinstance(value, str):
        match = _SIZE_RE.match(value.strip())
        if match:
            unit = (match.group(2) or "B").lower()
            return int(float(match.group(1)) * _SIZE_UNITS[unit])
    raise ValueError(f"expected a size such as 1MiB or a number of bytes, got {value!r}")
