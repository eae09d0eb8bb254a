"""The status pages in a real headless Chromium, over a real daemon probing an up, a
flapping and a down target; and the history surviving kill -9.

Screenshots at 1280 and 400 px are left in the test's tmp dir for a person to look at.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from chromium import Chromium
from conftest import require_tool, scaled, wait_for
from probed_service import Service
from tocsin.history.summary import uptime_percent

RULES = """groups:
  - name: status
    rules:
      - alert: TargetDown
        expr: probe_success{target!="web-flapping"} == 0
        for: 1s
        annotations: {summary: "{{ $labels.target }} is down"}
"""


@pytest.fixture
def service():
    s = Service()
    yield s
    s.stop()


def _config(service: Service) -> str:
    return f"""
global: {{listen_address: "127.0.0.1:{{port}}", interval: 300ms, timeout: 250ms, evaluation_interval: 300ms,
          state_dir: "{{dir}}/state", flapping: {{window: 11}}}}
status_page: {{title: "Example status", group_by: team, public: true, targets: ["web-*"]}}
targets:
  - {{name: web-up, url: "{service.url}/up", labels: {{team: shop}}}}
  - {{name: web-flapping, url: "{service.url}/flap", labels: {{team: shop}}}}
  - {{name: api-down, url: "{service.url}/down", labels: {{team: platform}}}}
rule_files: [rules.yml]
"""


def _api(daemon, path: str) -> object:
    return requests.get(daemon.url + path, timeout=scaled(5)).json()["data"]


def _links(browser: Chromium) -> list[str]:
    return browser.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")


def test_status_pages_in_a_real_browser(daemon_factory, tmp_path: Path, service: Service):
    chromium = require_tool("chromium")
    (tmp_path / "rules.yml").write_text(RULES)
    daemon = daemon_factory(_config(service))
    wait_for(lambda: any(a["state"] == "firing" and a["labels"]["target"] == "api-down"
                         for a in _api(daemon, "/api/tocsin/alerts")), timeout=20, what="api-down firing")
    wait_for(lambda: _api(daemon, "/api/v1/incidents?target=web-flapping"), what="a flapping incident")
    wait_for(lambda: any(t["name"] == "web-flapping" and t["flapping"] for t in daemon.targets()), timeout=20,
             what="web-flapping judged flapping")  # global.flapping, Icinga's weighted changes
    browser = Chromium(chromium, tmp_path / "profile", timeout=scaled(30))
    try:
        browser.set_width(1280)
        browser.navigate(daemon.url + "/")
        browser.screenshot(tmp_path / "overview-1280.png")
        states = browser.evaluate("Object.fromEntries(Array.from(document.querySelectorAll('tr[data-target]'))"
                                  ".map(r => [r.dataset.target, r.className]))")
        assert states == {"web-up": "up", "web-flapping": "flapping", "api-down": "down"}
        groups = browser.evaluate("Array.from(document.querySelectorAll('section h2')).map(h => h.textContent)")
        assert "team: platform" in groups and "team: shop" in groups
        reason = browser.evaluate("document.querySelector('tr[data-target=\"api-down\"] td[data-label=Reason]')"
                                  ".textContent")
        assert reason == "HTTP 500"

        # The uptime the page prints is the history API's (retried: the figures move every second).
        def same_uptime() -> bool:
            browser.navigate(daemon.url + "/")
            shown = browser.evaluate("Object.fromEntries(Array.from(document.querySelectorAll('tr[data-target]'))"
                                     ".map(r => [r.dataset.target, Array.from(r.querySelectorAll('td.uptime'))"
                                     ".map(td => td.textContent)]))")
            api = {name: [uptime_percent(_api(daemon, f"/api/v1/targets/{name}/history?range=1h")["uptime"][s])
                          for s in ("24h", "7d", "30d")] for name in shown}
            return shown == api and shown["web-up"][0] == "100.0 %" and shown["api-down"][0] == "0.0 %"

        wait_for(same_uptime, timeout=10, interval=0.2, what="the page's uptime equal to the API's")

        alert_links = browser.evaluate("Array.from(document.querySelectorAll('a[href^=\"/alerts/\"]'))"
                                       ".map(a => [a.textContent, a.href])")
        assert ["TargetDown", alert_links[0][1]] in alert_links
        generator = next(a["generatorURL"] for a in _api(daemon, "/api/tocsin/alerts")
                         if a["labels"]["target"] == "api-down")
        pages = {daemon.url + "/", daemon.url + "/status", daemon.url + urlsplit(generator)._replace(
            scheme="", netloc="").geturl(), *(href for _, href in alert_links)}
        pages |= {f"{daemon.url}/targets/{name}" for name in states}

        browser.set_width(400)
        browser.navigate(daemon.url + "/")
        browser.screenshot(tmp_path / "overview-400.png")
        seen_links: set[str] = set()
        for page in sorted(pages):
            browser.navigate(page)
            width = browser.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert width[1] == 400 and width[0] <= width[1], (page, width)
            seen_links |= set(_links(browser))
        browser.navigate(daemon.url + "/targets/api-down")
        browser.screenshot(tmp_path / "target-400.png")
        assert browser.evaluate("document.querySelectorAll('svg.chart polyline, svg.chart circle').length") >= 2
        assert browser.evaluate("document.querySelector('table.incidents tbody tr').textContent").count("HTTP 500")
        browser.navigate(alert_links[0][1])
        assert "TargetDown" in browser.evaluate("document.querySelector('h1').textContent")
        assert browser.evaluate("document.body.textContent").count("probe_success{target!=\"web-flapping\"} == 0")
        browser.set_width(1280)
        browser.navigate(daemon.url + "/targets/web-flapping")
        browser.screenshot(tmp_path / "target-1280.png")
        browser.navigate(daemon.url + "/status")
        public = browser.evaluate("document.body.textContent")
        assert "web-up" in public and "api-down" not in public and service.url not in public
    finally:
        browser.close()

    # Every link on every page answers 200 (badges, APIs, pages).
    assert any("/badges/" in link for link in seen_links)
    for link in sorted(seen_links | pages):
        assert requests.get(link, timeout=scaled(5)).status_code == 200, link
    # A link to an alert that has gone leaves the reader on a page, not a bare text line.
    missing = requests.get(daemon.url + "/alerts/0123456789abcdef", timeout=scaled(5))
    assert missing.status_code == 404 and "name='viewport'" in missing.text and "No such alert" in missing.text
    assert daemon.stop() == 0


def test_history_survives_kill_9(daemon_factory, tmp_path: Path, service: Service):
    """At most the last second of results is lost; the restarted daemon keeps adding to it."""
    (tmp_path / "rules.yml").write_text(RULES)
    daemon = daemon_factory(_config(service))

    def recorded() -> int:
        return _api(daemon, "/api/v1/targets/web-up/history?range=1h&step=1m")["total"]["count"]

    wait_for(lambda: recorded() >= 10, timeout=20, what="ten results recorded")
    time.sleep(scaled(1))
    killed_at = time.time()
    daemon.proc.send_signal(signal.SIGKILL)
    daemon.proc.wait()
    probed = sum(1 for t, path in service.times if path == "/up" and t < killed_at - scaled(1.0))
    up_requests = sum(1 for _, path in service.times if path == "/up")
    daemon.start()
    after = recorded()
    # web-up's results up to a second before the kill are on disk (one in flight may be lost too).
    assert probed - 1 <= after <= up_requests, (after, probed, up_requests)
    wait_for(lambda: recorded() > after + 3, what="the restarted daemon adding to the history")
    assert daemon.stop() == 0
