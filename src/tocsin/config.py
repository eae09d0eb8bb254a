"""The configuration: YAML in, typed immutable objects out, or every problem at once.

Operators edit this file by hand and apply it with SIGHUP, so a mistake must be reported
as `FILE: key.path: what was expected` and must never half-apply. Validation is done by
pydantic (frozen models, unknown keys rejected); this module adds the Prometheus
duration/size grammar, `${ENV}` expansion, secrets read from `*_file`, and the defaults
that targets inherit from `global`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    WrapValidator,
    field_validator,
    model_validator,
)

from .errors import ConfigError
from .fields import (
    Duration,
    HostPort,
    Labels,
    Model,
    PositiveDuration,
    ReadableFile,
    Regexp,
    SecretFromFile,
    Size,
)
from .logs import LoggingConfig
from .notify.config import AlertingConfig

_ENV_REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

def _target_name(name: str) -> str:
    if name.startswith("__"):
        raise ValueError("names starting with __ are reserved")
    return name


# ---------------------------------------------------------------------------- global


class WebConfig(Model):
    tls_cert_file: ReadableFile | None = None
    tls_key_file: ReadableFile | None = None
    basic_auth_users: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _both_or_neither(self) -> "WebConfig":
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file must be given together")
        return self


class RetryConfig(Model):
    """Retries happen inside the probe's total deadline, never beyond it."""

    attempts: int = Field(default=1, ge=1, le=20)
    initial_backoff: Duration = 0.2
    max_backoff: Duration = 2.0
    multiplier: float = Field(default=2.0, ge=1.0)
    jitter: bool = True


class BackoffWhenDown(Model):
    """Poll a failing target less often (interval × multiplier per failure, up to max_interval)."""

    max_interval: PositiveDuration
    multiplier: float = Field(default=2.0, gt=1.0)


class GlobalConfig(Model):
    listen_address: HostPort = "127.0.0.1:9469"
    interval: PositiveDuration = 30.0
    timeout: PositiveDuration = 5.0
    evaluation_interval: PositiveDuration = 15.0
    state_dir: str = "./state"
    external_labels: Labels = Field(default_factory=dict)
    retry: RetryConfig = RetryConfig()
    max_concurrent_probes: int = Field(default=4096, ge=1)
    web: WebConfig = WebConfig()


# ---------------------------------------------------------------------------- probes


class TLSConfig(Model):
    insecure_skip_verify: bool = False
    ca_file: ReadableFile | None = None
    cert_file: ReadableFile | None = None
    key_file: ReadableFile | None = None
    server_name: str | None = None


class BasicAuth(Model):
    username: str
    password: SecretStr | None = None
    password_file: SecretFromFile | None = None


class HTTPConfig(Model):
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    valid_status_codes: list[Annotated[int, Field(ge=100, le=599)]] | None = None
    follow_redirects: bool = True
    max_redirects: int = Field(default=5, ge=0, le=50)
    max_body_bytes: Size = 2**20
    fail_if_body_matches_regexp: list[Regexp] = Field(default_factory=list)
    fail_if_body_not_matches_regexp: list[Regexp] = Field(default_factory=list)
    tls: TLSConfig = TLSConfig()
    basic_auth: BasicAuth | None = None
    bearer_token: SecretStr | None = None
    bearer_token_file: SecretFromFile | None = None
    keep_alive: bool = False  # a health check should exercise connect and TLS every time

    @field_validator("headers")
    @classmethod
    def _no_hop_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name in headers:
            if name.lower() in ("host", "content-length", "transfer-encoding"):
                raise ValueError(f"header {name!r} is set by tocsin itself")
        return headers


class TCPConfig(Model):
    address: HostPort
    tls: bool = False
    tls_config: TLSConfig = TLSConfig()
    send: str | None = None
    expect: Regexp | None = None


class DNSConfig(Model):
    query: str
    type: Literal["A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT"] = "A"
    server: HostPort | None = None
    transport: Literal["udp", "tcp"] = "udp"
    valid_rcodes: list[str] = Field(default_factory=lambda: ["NOERROR"])
    fail_if_no_answer: bool = True


class Target(Model):
    """One monitored service. `interval`, `timeout` and `retry` default to `global`'s."""

    name: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_target_name)]
    url: str | None = None
    interval: PositiveDuration | None = None
    timeout: PositiveDuration | None = None
    labels: Labels = Field(default_factory=dict)
    retry: RetryConfig | None = None
    backoff_when_down: BackoffWhenDown | None = None
    http: HTTPConfig | None = None
    tcp: TCPConfig | None = None
    dns: DNSConfig | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is None:
            return url
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http:// or https:// URL with a host")
        try:
            parts.port
        except ValueError:
            raise ValueError("invalid port in URL") from None
        return url

    @model_validator(mode="after")
    def _one_kind(self) -> "Target":
        kinds = [k for k in ("url", "tcp", "dns") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("give exactly one of url (HTTP), tcp or dns")
        if self.http is not None and self.url is None:
            raise ValueError("http options need a url")
        return self

    @property
    def kind(self) -> str:
        return "http" if self.url else "tcp" if self.tcp else "dns"

    @property
    def http_options(self) -> HTTPConfig:
        return self.http or _DEFAULT_HTTP


_DEFAULT_HTTP = HTTPConfig()




# Validated targets of the previous load, by their raw mapping (after ${ENV} expansion): a
# reload of 10 000 targets that changes one validates one. Targets naming any file
# (secrets, CA, client certificates) are always validated again: the file may have changed.
_validated_targets: dict[str, Target] = {}
_seen_targets: dict[str, Target] = {}


def _reuse_validated(value: Any, handler: Any) -> Target:
    if not isinstance(value, dict):
        return handler(value)
    try:
        key = json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        return handler(value)
    if '_file"' in key:
        return handler(value)
    target = _validated_targets.get(key) or handler(value)
    _seen_targets[key] = target
    return target


class Config(Model):
    global_: GlobalConfig = Field(default=GlobalConfig(), alias="global")
    logging: LoggingConfig = LoggingConfig()
    targets: list[Annotated[Target, WrapValidator(_reuse_validated)]] = Field(default_factory=list)
    rule_files: list[str] = Field(default_factory=list)
    alerting: AlertingConfig | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, hide_input_in_errors=True)

    @field_validator("targets")
    @classmethod
    def _unique_names(cls, targets: list[Target]) -> list[Target]:
        seen: set[str] = set()
        for target in targets:
            if target.name in seen:
                raise ValueError(f"duplicate target name {target.name!r}")
            seen.add(target.name)
        return targets


class LoadedConfig(BaseModel):
    """A validated configuration plus where it came from (rule file globs resolve against it)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    path: Path
    config: Config

    @property
    def global_(self) -> GlobalConfig:
        return self.config.global_

    @property
    def targets(self) -> list[Target]:
        return self.config.targets


# ---------------------------------------------------------------------------- loading


# libyaml's parser when PyYAML has it (10x faster on a file of 10 000 targets); same results.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_SafeLoader):  # type: ignore[misc, valid-type]
    """Safe loading that refuses duplicate keys: a silently shadowed key is a lost setting."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path: Path) -> Any:
    """Parse a YAML file safely; syntax errors become ConfigError with file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}".replace("\n", " ")) from None


def format_loc(loc: tuple[Any, ...]) -> str:
    """`('targets', 2, 'http', 'x')` -> `targets[2].http.x` (pydantic's union/tag parts dropped)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and not part.startswith(("function-", "constrained-")) and "[" not in part:
            out += f".{part}" if out else part
    return out or "(top level)"


_FRIENDLY = {
    "extra_forbidden": "unknown key",
    "missing": "required key is missing",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "string_type": "expected a string",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "list_type": "expected a list",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
}


def _message(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind in _FRIENDLY:
        return _FRIENDLY[kind]
    if kind == "literal_error":
        return "expected " + error["msg"].removeprefix("Input should be ")
    message = error["msg"]
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def expand_env(node: Any, path: str = "") -> tuple[Any, list[str]]:
    """Replace `${NAME}` in every string by the environment variable; `$$` is a literal `$`."""
    errors: list[str] = []
    if isinstance(node, str):
        def substitute(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name = match.group(1)
            if name not in os.environ:
                errors.append(f"{path or '(top level)'}: environment variable {name} is not set")
                return ""
            return os.environ[name]
        return (_ENV_REF.sub(substitute, node) if "$" in node else node), errors
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            out[key], errs = expand_env(value, f"{path}.{key}" if path else str(key))
            errors += errs
        return out, errors
    if isinstance(node, list):
        items = []
        for index, value in enumerate(node):
            item, errs = expand_env(value, f"{path}[{index}]")
            items.append(item)
            errors += errs
        return items, errors
    return node, errors


def _apply_global_defaults(config: Config) -> Config:
    g = config.global_
    targets = []
    for target in config.targets:
        interval = target.interval or g.interval
        timeout = target.timeout or min(g.timeout, interval)
        targets.append(target.model_copy(update={"interval": interval, "timeout": timeout,
                                                 "retry": target.retry or g.retry}))
    return config.model_copy(update={"targets": targets})


def _cross_checks(config: Config) -> list[str]:
    errors = []
    for index, target in enumerate(config.targets):
        if target.timeout and target.interval and target.timeout > target.interval:
            errors.append(f"targets[{index}].timeout: must not exceed the interval "
                          f"({target.timeout:g}s > {target.interval:g}s)")
        if target.backoff_when_down and target.interval and target.backoff_when_down.max_interval < target.interval:
            errors.append(f"targets[{index}].backoff_when_down.max_interval: must be at least the interval")
    return errors


def parse_config(raw: Any, source: str) -> Config:
    """Validate an already parsed YAML tree; raise ConfigError listing every problem."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    raw, errors = expand_env(raw)
    messages = [f"{source}: {e}" for e in errors]
    _seen_targets.clear()
    try:
        config = Config.model_validate(raw)
        _validated_targets.clear()  # keep only what this (good) load used
        _validated_targets.update(_seen_targets)
    except ValidationError as exc:
        messages += [f"{source}: {format_loc(e['loc'])}: {_message(e)}" for e in exc.errors()]
        raise ConfigError(f"{source}: invalid configuration", messages) from None
    messages += [f"{source}: {e}" for e in _cross_checks(config)]
    if messages:
        raise ConfigError(f"{source}: invalid configuration", messages)
    return _apply_global_defaults(config)


def load_config(path: str | os.PathLike[str]) -> LoadedConfig:
    """Read, expand and validate a configuration file. Raises ConfigError; never half-loads."""
    path = Path(path)
    raw = load_yaml(path)
    return LoadedConfig(path=path.resolve(), config=parse_config(raw, str(path)))
