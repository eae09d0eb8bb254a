"""Recording and alerting rules, with Prometheus's semantics, over the probes' samples.

    files       rule files: load, validate (`tocsin check rules`)
    rule        what every rule shares: how it queries the engine
    recording   recording rules
    alerting    alerting rules: the alert state machine (AlertState)
    group       a group's evaluation, and what a reload keeps
    sending     which alerts go to the notifier when, as `tocsin.notify.alert.Alert`
    store       the samples rules read (bounded)
    persist     alert state across restarts (SQLite)
    exposition  /metrics (ALERTS, tocsin_rule_*) and the /api/v1/alerts view
    manager     the daemon's handle: load, schedule, evaluate, persist
    unit_tests  `tocsin test rules` (promtool's unit-test format)
"""
