"""Receivers pasted from an Alertmanager 0.25 file: its key names work, its lists of one item
work, and what tocsin cannot honour is refused with the reason (never silently dropped)."""

from __future__ import annotations

import pytest
from test_notify_receivers import alert, start

from conftest import wait_for
from notify_sinks import HTTPSink, validate_pagerduty_v2, validate_slack
from tocsin.config import parse_config
from tocsin.errors import ConfigError


def _receiver(receiver: dict):
    raw = {"alerting": {"route": {"receiver": receiver["name"]}, "receivers": [receiver]}}
    return parse_config(raw, "am.yml").alerting.receivers[0]


def _errors(receiver: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        _receiver(receiver)
    return info.value.errors


def test_alertmanager_spellings_read_as_tocsins(tmp_path):
    secret = tmp_path / "url"
    secret.write_text("https://hooks.slack.invalid/services/T0/B0/x\n")
    pairs = [
        ({"name": "r", "slack_configs": [{"api_url": "https://hooks.slack.invalid/a", "send_resolved": True}]},
         {"name": "r", "slack": {"webhook_url": "https://hooks.slack.invalid/a", "send_resolved": True}}),
        ({"name": "r", "slack": {"api_url_file": str(secret)}},
         {"name": "r", "slack": {"webhook_url_file": str(secret)}}),
        ({"name": "r", "webhook_configs": [{"url": "http://127.0.0.1:1/", "max_alerts": 3}]},
         {"name": "r", "webhook": {"url": "http://127.0.0.1:1/", "max_alerts": 3}}),
        ({"name": "r", "pagerduty_configs": [{"routing_key": "k", "class": "availability"}]},
         {"name": "r", "pagerduty": {"routing_key": "k", "class": "availability"}}),
        ({"name": "r", "email_configs": [{"to": "a@example.com, b@example.com", "from": "t@example.com",
                                          "smarthost": "smtp.example.com:587",
                                          "tls_config": {"insecure_skip_verify": True}}]},
         {"name": "r", "email": {"to": ["a@example.com", "b@example.com"], "from": "t@example.com",
                                 "smarthost": "smtp.example.com:587", "insecure_skip_verify": True}}),
    ]
    for alertmanagers, tocsins in pairs:
        assert _receiver(alertmanagers) == _receiver(tocsins), alertmanagers
    assert _receiver(pairs[3][0]).pagerduty.class_ == "availability"


@pytest.mark.parametrize("receiver, reason", [
    ({"name": "r", "slack": {"api_urll": "https://x/"}}, "unknown key (did you mean api_url?)"),
    ({"name": "r", "slack_config": [{"api_url": "https://x/"}]}, "unknown key (did you mean slack_configs?)"),
    ({"name": "r", "slack_configs": [{"api_url": "https://x/"}, {"api_url": "https://y/"}]},
     "slack_configs: give one item"),
    ({"name": "r", "slack": {"api_url": "https://x/", "webhook_url": "https://y/"}},
     "give webhook_url or api_url (Alertmanager's name for it), not both"),
    ({"name": "r", "pagerduty": {"service_key": "k"}}, "service_key is a key of PagerDuty's Events API v1"),
    ({"name": "r", "email": {"to": "a@x", "from": "b@x", "smarthost": "x:25", "tls_config": {"cert_file": "c"}}},
     "tls_config: cert_file not supported for e-mail"),
    ({"name": "r", "slack_configs": [{"api_url": "https://x/", "title": "{{ .Status }}"}]}, "title: unknown key"),
])
def test_what_cannot_be_honoured_is_refused_with_the_reason(receiver, reason):
    errors = _errors(receiver)
    assert any(reason in e for e in errors), errors


def test_a_slack_receiver_written_the_alertmanager_way_posts_to_its_api_url(tmp_path):
    sink = HTTPSink(validate=validate_slack)
    notifier = start(tmp_path, {"name": "chat", "slack_configs": [{"api_url": sink.url + "/services/T/B/X",
                                                                     "channel": "#ops"}]})
    try:
        notifier.submit([alert()])
        body = wait_for(lambda: sink.bodies(), timeout=5, what="slack")[0]
        assert body["channel"] == "#ops" and sink.received[0].path == "/services/T/B/X"
    finally:
        notifier.stop()
        sink.stop()


def test_pagerduty_class_reaches_the_event(tmp_path):
    sink = HTTPSink(validate=validate_pagerduty_v2, status=202)
    notifier = start(tmp_path, {"name": "pager", "pagerduty_configs": [
        {"routing_key": "R0UT1NGKEY0123456789012345678901", "url": sink.url + "/v2/enqueue",
         "class": "availability"}]})
    try:
        notifier.submit([alert()])
        body = wait_for(lambda: sink.bodies(), timeout=5, what="pagerduty")[0]
        assert body["payload"]["class"] == "availability"
    finally:
        notifier.stop()
        sink.stop()
