"""The options of an HTTP target (`http:`), as blackbox users write them.

Validated at load time so that nothing a probe sends is decided from unchecked text: header
names and values fit on the wire, the bearer token has no line break, and blackbox's own
spellings (`tls_config`, header regexps, `compression`, `proxy_url`) mean what they mean there.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator

from ..fields import Model, Regexp, SecretFromFile, Size
from .addresses import IPOptions
from .net import TLSConfig

_REQUEST_TARGET_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))  # printable ASCII but space
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _http_url(url: str) -> str:
    if any(ord(c) <= 0x20 or ord(c) >= 0x7F for c in url):
        raise ValueError("URL contains a space, a control or a non-ASCII character (percent-encode it;"
                         " an international host name in its xn-- form)")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL with a host")
    try:
        _ = parts.port  # a property that raises for a port out of range or not a number
    except ValueError:
        raise ValueError("invalid port in URL") from None
    return url


HTTPURL = Annotated[str, AfterValidator(_http_url)]


def _header_value_problem(value: str) -> str | None:
    """Why `value` cannot be sent as a header value (CR or LF would end the header and let
    the rest be read as headers or a request of its own), None if it can."""
    for char in value:
        if char in "\r\n":
            return "contains a line break (CR or LF)"
        if (ord(char) < 0x20 and char != "\t") or ord(char) == 0x7F:
            return "contains a control character"
        if ord(char) > 0xFF:
            return "contains a character outside Latin-1"
    return None


class BasicAuth(Model):
    username: str
    password: SecretStr | None = None
    password_file: SecretFromFile | None = None

    @field_validator("username")
    @classmethod
    def _username_fits(cls, username: str) -> str:
        if ":" in username or any(ord(c) < 0x20 or ord(c) == 0x7F for c in username):
            raise ValueError("username may not contain ':' or control characters")
        return username


class HeaderMatch(Model):
    """blackbox's `fail_if_header_(not_)matches` entry: a header, an RE2 pattern searched in
    each of its values, and whether a missing header passes."""

    header: str
    regexp: Regexp
    allow_missing: bool = False


def _proxy_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError("expected an http:// proxy URL with a host")
    return url


class HTTPConfig(IPOptions):
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    valid_status_codes: list[Annotated[int, Field(ge=100, le=599)]] | None = None
    follow_redirects: bool = True
    max_redirects: int = Field(default=5, ge=0, le=50)
    allow_insecure_redirects: bool = False  # follow a redirect from https to http
    max_body_bytes: Size = 2**20
    fail_if_body_matches_regexp: list[Regexp] = Field(default_factory=list)
    fail_if_body_not_matches_regexp: list[Regexp] = Field(default_factory=list)
    fail_if_header_matches: list[HeaderMatch] = Field(default_factory=list)
    fail_if_header_not_matches: list[HeaderMatch] = Field(default_factory=list)
    # Asked for with Accept-Encoding and decoded; a body not so encoded fails, as in blackbox.
    compression: Literal["gzip", "deflate", "br", "identity"] | None = None
    proxy_url: Annotated[str, AfterValidator(_proxy_url)] | None = None
    tls: TLSConfig = TLSConfig()  # also accepted as `tls_config`, blackbox's name
    basic_auth: BasicAuth | None = None
    bearer_token: SecretStr | None = None
    bearer_token_file: SecretFromFile | None = None
    keep_alive: bool = False  # a health check should exercise connect and TLS every time

    @model_validator(mode="before")
    @classmethod
    def _tls_config_is_tls(cls, data: Any) -> Any:
        if isinstance(data, dict) and "tls_config" in data:
            if "tls" in data:
                raise ValueError("give tls or tls_config, not both (they are the same option)")
            data = {("tls" if key == "tls_config" else key): value for key, value in data.items()}
        return data

    @field_validator("headers")
    @classmethod
    def _headers_fit_on_the_wire(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if name.lower() in ("host", "content-length", "transfer-encoding"):
                raise ValueError(f"header {name!r} is set by tocsin itself")
            if not name or not set(name) <= _TOKEN_CHARS:
                raise ValueError(f"invalid header name {name!r}")
            problem = _header_value_problem(value)
            if problem:
                raise ValueError(f"value of header {name!r} {problem}")
        return headers

    @model_validator(mode="after")
    def _bearer_token_fits(self) -> "HTTPConfig":
        problem = _header_value_problem(self.secret("bearer_token") or "")
        if problem:  # the token itself is never put in the message
            raise ValueError(f"bearer token {problem}")
        return self


_DEFAULT_HTTP = HTTPConfig()
