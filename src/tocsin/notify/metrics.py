"""The notification metrics, registered once per registry (create once; survive reloads)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class NotifyMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry if registry is not None else CollectorRegistry()
        self.registry = r
        self.sent = Counter("tocsin_notifications_total", "Delivery attempts, by receiver.", ["receiver"], registry=r)
        self.failed = Counter("tocsin_notifications_failed_total", "Delivery attempts that failed, by receiver.",
                              ["receiver"], registry=r)
        self.latency = Histogram("tocsin_notification_latency_seconds", "Duration of delivery attempts.",
                                 ["receiver"], buckets=LATENCY_BUCKETS, registry=r)
        self.expired = Counter("tocsin_notifications_expired_total",
                               "Notifications dropped undelivered (too old, or receiver removed).",
                               ["receiver"], registry=r)
        self.circuit_open = Gauge("tocsin_receiver_circuit_open",
                                  "Whether the receiver's circuit breaker is open (1) or closed (0).",
                                  ["receiver"], registry=r)
        self.lane_stalled = Gauge("tocsin_notify_lane_stalled",
                                  "Whether a delivery lane of the receiver cannot make progress for tocsin's own "
                                  "reasons (its outbox cannot be written or read, its thread ended): 1, else 0.",
                                  ["receiver"], registry=r)
        self.dispatch_stalled = Gauge("tocsin_notify_dispatch_stalled",
                                      "Whether due notifications cannot be committed to the outbox (1), else 0.",
                                      registry=r)
        self.outbox_length = Gauge("tocsin_outbox_length", "Notifications waiting for delivery.", registry=r)
        self.outbox_oldest = Gauge("tocsin_outbox_oldest_seconds",
                                   "Age of the oldest notification waiting for delivery (0 if none).", registry=r)
