"""The cookies one probe's redirects set, sent back along the same chain.

blackbox_exporter gives each probe a fresh cookie jar (Go's net/http/cookiejar), so a login
redirect that sets a session cookie and redirects to a page needing it succeeds; without a
jar that page answers 403. This is the part of RFC 6265 such a chain uses: host-only and
Domain cookies, Path, Secure, Max-Age and Expires for deletion. The jar lives for one
attempt and is bounded (a server cannot make it grow past MAX_COOKIES × MAX_COOKIE_BYTES).
"""

from __future__ import annotations

import email.utils
import time

from .http_request import Endpoint

MAX_COOKIES = 50
MAX_COOKIE_BYTES = 4096


def _default_path(request_path: str) -> str:
    directory = request_path.split("?", 1)[0].rsplit("/", 1)[0]
    return directory if directory.startswith("/") else "/"


def _domain_matches(host: str, domain: str) -> bool:
    return host == domain or (host.endswith("." + domain) and not host.replace(".", "").isdigit())


def _path_matches(request_path: str, cookie_path: str) -> bool:
    path = request_path.split("?", 1)[0]
    return (path == cookie_path or (path.startswith(cookie_path)
                                    and (cookie_path.endswith("/") or path[len(cookie_path)] == "/")))


def _expired(attributes: dict[str, str]) -> bool:
    if "max-age" in attributes:
        try:
            return int(attributes["max-age"]) <= 0
        except ValueError:
            return False
    if "expires" in attributes:
        try:
            return email.utils.parsedate_to_datetime(attributes["expires"]).timestamp() <= time.time()
        except (TypeError, ValueError, IndexError):
            return False
    return False


class CookieJar:
    __slots__ = ("_cookies",)

    def __init__(self) -> None:
        # (domain, path, name) -> (value, host_only, secure)
        self._cookies: dict[tuple[str, str, str], tuple[str, bool, bool]] = {}

    def store(self, endpoint: Endpoint, set_cookies: list[str]) -> None:
        host = endpoint.host.lower()
        for line in set_cookies:
            if len(line) > MAX_COOKIE_BYTES:
                continue
            pair, *rest = line.split(";")
            name, sep, value = pair.partition("=")
            name = name.strip()
            if not sep or not name:
                continue
            attributes = {}
            for item in rest:
                attribute_name, _, attribute = item.partition("=")
                attributes[attribute_name.strip().lower()] = attribute.strip()
            domain, host_only = host, True
            if attributes.get("domain"):
                domain = attributes["domain"].lstrip(".").lower()
                if not _domain_matches(host, domain):
                    continue  # a server may not set cookies for another site
                host_only = domain == host and host.replace(".", "").isdigit()
            path = attributes.get("path") or ""
            if not path.startswith("/"):
                path = _default_path(endpoint.target)
            key = (domain, path, name)
            if _expired(attributes):
                self._cookies.pop(key, None)
            elif key in self._cookies or len(self._cookies) < MAX_COOKIES:
                self._cookies[key] = (value.strip(), host_only, "secure" in attributes)

    def header(self, endpoint: Endpoint) -> str:
        """The Cookie header's value for a request to `endpoint`, "" when none applies."""
        if not self._cookies:
            return ""
        host = endpoint.host.lower()
        sent = []
        for (domain, path, name), (value, host_only, secure) in self._cookies.items():
            if secure and not endpoint.tls:
                continue
            if (host == domain if host_only else _domain_matches(host, domain)) and _path_matches(endpoint.target, path):
                sent.append((len(path), f"{name}={value}"))
        sent.sort(key=lambda item: -item[0])  # longer paths first (RFC 6265 5.4)
        return "; ".join(text for _, text in sent)
