"""Alerting and recording rules, Prometheus-compatible.

files (rule files: load, validate, `tocsin check rules`) → group (evaluate a group: recording
and alerting rules, the alert state machine in alerting) → sending (which alerts go to the
notifier, as `tocsin.notify.alert.Alert`) ; store (the samples rules read), persist (alert state
across restarts), manager (the daemon's handle: load, schedule, evaluate, persist),
exposition (/metrics and /api/v1/alerts), unit_tests (`tocsin test rules`).
"""
