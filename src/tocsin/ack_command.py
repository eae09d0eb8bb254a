"""`tocsin ack ALERT`: acknowledge firing alerts on a running daemon, from a shell.

ALERT is a fingerprint (as `/api/v2/alerts` and `amtool alert query -o json` show it), an
alert name, or matchers in Alertmanager's syntax (`alertname=TargetDown,target="db"`);
every firing alert it selects is acknowledged through `POST /api/v1/alerts/<fp>/ack`, so
the daemon records who and why, and the acknowledgement ends when the alert resolves.
The password for a listener with basic auth comes from $TOCSIN_PASSWORD, never from the
command line (where `ps` would show it).
"""

from __future__ import annotations

import argparse
import base64
import getpass
import json
import os
import re
import sys
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

_FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")


def register(sub: Any, default_config: str) -> None:
    """Add the `ack` subcommand to the `tocsin` parser's subcommands."""
    ack = sub.add_parser("ack", help="acknowledge firing alerts until they resolve")
    ack.add_argument("alert", metavar="ALERT", help="a fingerprint, an alert name, or matchers (a=\"b\",c=~\"d\")")
    ack.add_argument("--comment", "-c", default="", help="why (shown with the acknowledgement)")
    ack.add_argument("--author", "-a", default=os.environ.get("USER", ""), help="who (default: $USER)")
    ack.add_argument("--url", help="the daemon's listener (default: from the configuration's listen_address)")
    ack.add_argument("--config", default=default_config, help=f"configuration file (default {default_config})")
    ack.add_argument("--user", help="basic auth user; the password is read from $TOCSIN_PASSWORD or asked")
    ack.set_defaults(func=run)


def _base_url(args: argparse.Namespace) -> str | None:
    if args.url:
        return args.url.rstrip("/")
    from .config import load_config
    from .errors import ConfigError

    try:
        loaded = load_config(args.config)
    except ConfigError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        return None
    host, _, port = loaded.global_.listen_address.rpartition(":")
    host = "127.0.0.1" if host in ("", "0.0.0.0") else host  # noqa: S104 - the address it listens on, not a bind
    scheme = "https" if loaded.global_.web.tls_cert_file else "http"
    return f"{scheme}://{host}:{port}"


def _call(method: str, url: str, headers: dict[str, str], body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={**headers, **({"Content-Type": "application/json"} if data else {})})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the operator's own daemon
        return json.loads(response.read() or b"null")


def run(args: argparse.Namespace) -> int:
    base = _base_url(args)
    if base is None:
        return 1
    headers: dict[str, str] = {}
    if args.user:
        password = os.environ.get("TOCSIN_PASSWORD")
        if password is None:
            password = getpass.getpass(f"password for {args.user}: ")
        headers["Authorization"] = "Basic " + base64.b64encode(f"{args.user}:{password}".encode()).decode()
    try:
        if _FINGERPRINT.match(args.alert):
            fingerprints = [args.alert]
        else:
            text = args.alert if re.search(r"[=~]", args.alert) else f'alertname="{args.alert}"'
            alerts = _call("GET", f"{base}/api/v2/alerts?{urlencode({'filter': text})}", headers)
            fingerprints = [a["fingerprint"] for a in alerts]
        if not fingerprints:
            print(f"no firing alert matches {args.alert}", file=sys.stderr)
            return 1
        for fp in fingerprints:
            answer = _call("POST", f"{base}/api/v1/alerts/{fp}/ack", headers,
                           {"createdBy": args.author, "comment": args.comment})
            ack = answer["data"]
            labels = ",".join(f"{k}={v}" for k, v in sorted(ack["labels"].items()))
            print(f"acknowledged {fp} {{{labels}}} as {ack['id']}")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace").strip()
        print(f"{exc.code} from {base}: {detail}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"cannot reach {base}: {exc}", file=sys.stderr)
        return 1
    return 0
