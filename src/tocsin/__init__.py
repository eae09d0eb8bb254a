"""tocsin: probes, Prometheus metrics, alert rules and notifications in one daemon."""

__version__ = "0.1.0"
