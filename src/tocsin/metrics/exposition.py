"""The Prometheus text format, written by hand: label escaping, label sets, values.

Every `/metrics` line tocsin renders itself (probe series, rule series, ALERTS) goes
through these functions, so values and labels read exactly as Prometheus prints them.
"""

from __future__ import annotations

import math

from ..gofmt import format_label_set

LabelPairs = tuple[tuple[str, str], ...]
# (metric name, label pairs, value): a sample as the sample store and /metrics receive it
MetricSample = tuple[str, LabelPairs, float]


def format_labels(labels: LabelPairs) -> str:
    """`{a="x",b="y"}`, or nothing for no labels."""
    return format_label_set(labels, separator=",") if labels else ""


def format_value(value: float) -> str:
    """Integers without a decimal point, `NaN`, `+Inf`, `-Inf`, other floats as repr()."""
    if value == 0.0:
        return "0"
    if value == 1.0:
        return "1"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def family_header(name: str, kind: str, help_text: str) -> str:
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"
