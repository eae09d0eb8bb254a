"""Prometheus-style durations (`1h30m`, `500ms`) and sizes (`10MiB`).

Operators already write durations this way in Prometheus and Alertmanager files, so
tocsin accepts exactly that grammar: units from largest to smallest, each at most once.
Like Prometheus, a duration must fit Go's `time.Duration` (an int64 of nanoseconds, about
292 years) and a size an int64 of bytes: `10000000000y` is an error in the file, not an
overflow when the scheduler or the event loop gets it.
"""

from __future__ import annotations

import re

_DURATION_UNITS = {"y": 365 * 86400.0, "w": 7 * 86400.0, "d": 86400.0, "h": 3600.0,
                   "m": 60.0, "s": 1.0, "ms": 0.001}
# ASCII digits and nothing around, as prometheus/common's model.ParseDuration: Python's \d would
# take fullwidth digits, and a stripped ' 5m' would be an error in Prometheus and Alertmanager.
_DURATION_RE = re.compile(r"(?:([0-9]+)y)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?"
                          r"(?:([0-9]+)ms)?")
_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?$", re.IGNORECASE)
MAX_DURATION_NS = 2**63 - 1  # Go's time.Duration
MAX_SIZE = 2**63 - 1  # Go's int64
_SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def shown(value: object, limit: int = 40) -> str:
    """`repr(value)`, cut to `limit` characters: an error message echoes the input, not megabytes of it."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def parse_duration(text: str) -> float:
    """Return seconds for a Prometheus duration such as `1h30m` or `250ms`; `0` is allowed."""
    if not isinstance(text, str):
        raise ValueError("expected a duration such as 30s, 5m or 1h30m")
    match = _DURATION_RE.fullmatch(text)
    if not match or not any(match.groups()):
        if text == "0":
            return 0.0
        raise ValueError(f"expected a duration such as 30s, 5m or 1h30m, got {shown(text)}")
    units = ("y", "w", "d", "h", "m", "s", "ms")
    total_ms = 0
    for value, unit in zip(match.groups(), units, strict=True):
        if value:
            if len(value) > 20:  # already out of range; and int() refuses strings of 4300 digits
                raise ValueError(f"duration out of range: {shown(text)}")
            total_ms += int(value) * int(_DURATION_UNITS[unit] * 1000)
    if total_ms * 1_000_000 > MAX_DURATION_NS:
        raise ValueError(f"duration out of range: {shown(text)} (at most 292y)")
    return total_ms / 1000


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
        if value > MAX_SIZE:
            raise ValueError(f"size out of range: {value} (at most 8EiB)")
        return value
    if isinstance(value, str):
        match = _SIZE_RE.match(value.strip())
        if match:
            unit = (match.group(2) or "B").lower()
            number = float(match.group(1))  # inf for 400 digits: refused below, with int()'s overflow
            if not number * _SIZE_UNITS[unit] <= MAX_SIZE:
                raise ValueError(f"size out of range: {shown(value)} (at most 8EiB)")
            return int(number * _SIZE_UNITS[unit])
    raise ValueError(f"expected a size such as 1MiB or a number of bytes, got {shown(value)}")
