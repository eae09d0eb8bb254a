"""The public page and badges without credentials, the history API's answers and refusals,
and secrets kept off the target page — over a real daemon."""

from __future__ import annotations

import hashlib

import requests

from conftest import free_port, scaled, wait_for
from probed_service import Service


def test_public_page_badges_history_api_and_secrets(daemon_factory):
    service = Service()
    digest = hashlib.sha256(b"pw").hexdigest()
    try:
        daemon = daemon_factory(f"""
global: {{listen_address: "127.0.0.1:{{port}}", interval: 300ms, timeout: 250ms, state_dir: "{{dir}}/state",
          web: {{basic_auth_users: {{admin: "sha256:{digest}"}}}}}}
status_page: {{title: "Shop", public: true, targets: ["web-*"]}}
targets:
  - {{name: web-up, url: "http://shopper:hunter2secret@127.0.0.1:{service.server.server_address[1]}/up"}}
  - {{name: db, tcp: {{address: "127.0.0.1:{free_port()}"}}}}
""", start=False)
        daemon.start(wait_ready=False)
        auth = ("admin", "pw")

        def get(path: str, **kwargs: object) -> requests.Response:
            return requests.get(daemon.url + path, timeout=scaled(5), **kwargs)

        wait_for(lambda: get("/-/ready", auth=auth).ok, timeout=20, what="daemon ready")
        wait_for(lambda: get("/api/v1/targets/web-up/history?range=1h", auth=auth).json()["data"]["total"]["count"]
                 >= 3, what="results recorded")
        wait_for(lambda: get("/api/v1/incidents?target=db", auth=auth).json()["data"], what="db's incident")

        # Public without credentials: /status and the shown targets' badges; nothing else.
        public = get("/status")
        assert public.status_code == 200 and "web-up" in public.text
        assert "db" not in public.text.replace("<tbody", "") and "127.0.0.1" not in public.text
        health = get("/badges/web-up/health.svg")
        assert health.status_code == 200 and health.headers["content-type"] == "image/svg+xml"
        assert ">up<" in health.text
        assert get("/badges/db/health.svg").status_code == 401
        assert get("/").status_code == 401 and get("/targets/web-up").status_code == 401
        assert get("/api/v1/targets/web-up/history").status_code == 401
        uptime = get("/badges/web-up/uptime/24h.svg").text
        assert "100.0 %" in uptime
        assert "ms<" in get("/badges/web-up/response-time.svg").text
        assert get("/badges/web-up/uptime/1y.svg", auth=auth).status_code == 404

        # The history API: points, uptime, and plain refusals.
        history = get("/api/v1/targets/web-up/history?range=2h&step=10m", auth=auth).json()["data"]
        assert len(history["points"]) == 12 and history["step_seconds"] == 600
        assert history["uptime"]["24h"] == 1.0 and history["total"]["failures"] == 0
        refused = get("/api/v1/targets/web-up/history?range=7d&step=1m", auth=auth)
        assert refused.status_code == 400 and "minutes are kept" in refused.json()["error"]
        assert get("/api/v1/targets/nope/history", auth=auth).status_code == 404
        [incident] = get("/api/v1/incidents?target=db", auth=auth).json()["data"]
        assert incident["open"] and incident["reason"] == "connection refused" and incident["end"] is None

        # The target page shows the configuration with the URL's password hidden.
        page = get("/targets/web-up", auth=auth)
        assert page.status_code == 200 and "Configuration" in page.text
        assert "hunter2secret" not in page.text and "shopper" in page.text
        assert "hunter2secret" not in get("/", auth=auth).text
        assert get("/targets/nope", auth=auth).status_code == 404
        assert get("/alerts/0123456789abcdef", auth=auth).status_code == 404
        assert daemon.stop() == 0
    finally:
        service.stop()
