"""Metrics tocsin serves on /metrics: per-target probe series and the daemon's own health.

`exposition` writes the text format; `probe_series` keeps each target's series (rendered
once per result, served by joining strings); `self_metrics` holds the daemon's few own
metrics in a private prometheus-client registry.
"""

from .exposition import MetricSample
from .probe_series import ProbeMetrics
from .self_metrics import SelfMetrics

__all__ = ["ProbeMetrics", "MetricSample", "SelfMetrics"]
