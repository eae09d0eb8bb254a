"""Which requests a browser page may have made: the Host check and the cross-site write check.

The listener usually sits on 127.0.0.1 with no auth, trusted because only local programs
reach it. A web page in a local browser reaches it too, two ways:

- **DNS rebinding** — a page on `attacker.example` re-points that name to 127.0.0.1, and
  the browser then treats the listener's answers as the page's own and lets it read
  them. The request carries `Host: attacker.example`, so the listener accepts only Host
  names it knows for itself: any IP literal (a rebinding needs a name), `localhost` and
  `*.localhost` (browsers resolve those to loopback themselves), the listen address's
  name, this machine's host name, and the names in `web.allowed_hosts` (`*` turns the
  check off, as Prometheus has it). A request without Host (HTTP/1.0) is no browser's.
- **Cross-site writes** — a form on any site can POST to `/-/reload`, and the browser adds
  basic-auth credentials it remembers. Browsers say where a request comes from
  (`Sec-Fetch-Site`, `Origin`); a write is refused when they name another site, as Go's
  `http.CrossOriginProtection` does. For browsers that send neither on a form, writes
  also refuse the three content types a form can send without asking the server first.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_CONTENT_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})


def split_host(value: str) -> tuple[str, str]:
    """('name' lower-cased without brackets or trailing dot, 'port' or '') of a Host value."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        return name, rest.removeprefix(":")
    name, _, port = value.partition(":") if value.count(":") == 1 else (value, "", "")
    return name.rstrip("."), port


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostPolicy:
    """The Host names the listener answers to (see the module's docstring)."""

    def __init__(self, listen_host: str, allowed_hosts: Iterable[str]) -> None:
        allowed = [h.strip().lower().rstrip(".") for h in allowed_hosts]
        self.any = "*" in allowed
        self._suffixes = tuple(h[1:] for h in allowed if h.startswith("*."))  # "*.example.com" -> ".example.com"
        names = {h for h in allowed if not h.startswith("*")} | {"localhost"}
        listen_name = split_host(listen_host)[0] if listen_host else ""
        if listen_name:
            names.add(listen_name)
        hostname = socket.gethostname().lower()
        names.update({hostname, hostname.split(".")[0]})
        self._names = frozenset(names)

    def allows(self, host: str | None) -> bool:
        if self.any or host is None:
            return True
        name, _port = split_host(host)
        if not name:
            return False
        return (name in self._names or name.endswith(".localhost") or name.endswith(self._suffixes)
                or _is_ip_literal(name))


def cross_site_reason(method: str, headers: dict[str, str]) -> tuple[int, str] | None:
    """(status, reason) if this write may come from another site's page, else None.

    `headers` has lower-case names. Safe methods are never refused: they change nothing.
    """
    if method in SAFE_METHODS:
        return None
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site.strip().lower() not in ("same-origin", "none"):
        return 403, f"cross-site request refused (Sec-Fetch-Site: {fetch_site.strip()[:40]})"
    origin = headers.get("origin")
    if fetch_site is None and origin is not None and not _same_origin(origin, headers.get("host")):
        return 403, "cross-site request refused (Origin does not match Host)"
    content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type in FORM_CONTENT_TYPES:
        return 415, (f"writes do not take {content_type} (a form on another site could send it): "
                     "send no body, or another content type")
    return None


def _same_origin(origin: str, host: str | None) -> bool:
    if host is None or origin.strip().lower() == "null":
        return False
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    default = "443" if parts.scheme == "https" else "80"
    origin_name, origin_port = split_host(parts.netloc)
    host_name, host_port = split_host(host)
    return origin_name == host_name and (origin_port or default) == (host_port or default)
