"""The configuration's shape: the parts' options assembled into one immutable `Config`.

Each part owns its options (probes in `probes/`, receivers in `notify/config.py`,
logging in `logs.py`); this module puts them together, makes targets inherit `interval`,
`timeout` and `retry` from `global`, and checks what spans several keys. Validation is
done by pydantic (frozen models, unknown keys rejected), so a file either loads whole or
is refused with every problem listed; a reload never half-applies.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import ssl
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    create_model,
    field_validator,
    model_validator,
)

from .. import redaction
from ..cluster.config import ClusterConfig
from ..errors import ConfigError
from ..fields import Labels, ListenAddress, Model, PositiveDuration, ReadableFile
from ..flapping import FlappingConfig
from ..history.config import HistoryConfig
from ..logs import LoggingConfig
from ..notify.config import AlertingConfig
from ..probes import KINDS, Probe
from ..probes.retry import BackoffWhenDown, RetryConfig
from ..statuspage.config import StatusPageConfig
from ..timeintervals import TimeInterval
from . import long_lists
from .load import MAX_REPORTED, Problem, error_problems, expand_env, format_problems, load_yaml


def _target_name(name: str) -> str:
    if name.startswith("__"):
        raise ValueError("names starting with __ are reserved")
    return name


# ---------------------------------------------------------------------------- global


_BCRYPT_HASH = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
_SHA256_HASH = re.compile(r"sha256:[0-9a-fA-F]{64}")


def _password_hashes(users: dict[str, str]) -> dict[str, str]:
    """Refuse, at `check config`, every entry that could never let anyone in."""
    for user, stored in users.items():
        if not user or ":" in user:
            raise ValueError(f"user {user!r}: a basic-auth user name is non-empty and has no ':'")
        if _BCRYPT_HASH.fullmatch(stored):
            if importlib.util.find_spec("bcrypt") is None:
                raise ValueError(f"user {user!r}: a bcrypt hash needs the bcrypt package, which is not installed")
        elif not _SHA256_HASH.fullmatch(stored):
            # The value is never echoed: it may be a password typed where its hash belongs.
            raise ValueError(f"user {user!r}: not a password hash; give a bcrypt hash ($2a$, $2b$ or $2y$, "
                             "e.g. from `htpasswd -nbBC 10 \"\" PASSWORD | tr -d ':\\n'`) or sha256:<64 hex digits>")
    return users


def _allowed_host(name: str) -> str:
    if not name or any(c in name for c in "/@ \t") or ("*" in name and name != "*" and not name.startswith("*.")):
        raise ValueError(f"{name!r}: give a host name (no port or scheme), '*.domain' for its subdomains, or '*'")
    return name


class WebConfig(Model):
    """The daemon's own HTTP listener: TLS, basic auth (users -> bcrypt or sha256 hashes),
    the Host names it answers to, and how many connections it holds.

    `allowed_hosts`: besides IP literals, `localhost` (and `*.localhost`), the listen
    address's name and this machine's host name, the Host names requests may carry — add
    the DNS names clients use to reach a listener on a non-loopback address (and a reverse
    proxy's public name). Other Host names get 421: a web page that re-points its own DNS
    name at this machine (DNS rebinding) must not read the API. `'*.example.com'` takes
    its subdomains; `'*'` takes any Host, as Prometheus does, and gives that defence up.

    `max_connections`: at the cap a new connection displaces the one idle the longest.
    """

    tls_cert_file: ReadableFile | None = None
    tls_key_file: ReadableFile | None = None
    basic_auth_users: Annotated[dict[str, str], AfterValidator(_password_hashes)] = Field(default_factory=dict)
    allowed_hosts: list[Annotated[str, AfterValidator(_allowed_host)]] = Field(default_factory=list)
    max_connections: int = Field(default=512, ge=1, le=100_000)

    @model_validator(mode="after")
    def _both_or_neither(self) -> "WebConfig":
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file must be given together")
        if self.tls_cert_file is not None and self.tls_key_file is not None:
            _check_key_pair(self.tls_cert_file, self.tls_key_file)
        return self


def _check_key_pair(cert_file: str, key_file: str) -> None:
    """A certificate and key that do not load (or do not match) fail `check config`, not start-up."""
    def no_password() -> bytes:
        raise ValueError("encrypted")

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert_file, key_file, password=no_password)
    except (ssl.SSLError, OSError, ValueError) as exc:
        reason = "the key is encrypted (give an unencrypted key)" if "encrypted" in str(exc) else str(exc)
        raise ValueError(f"tls_cert_file and tls_key_file do not load as a pair: {reason}") from None


class GlobalConfig(Model):
    listen_address: ListenAddress = "127.0.0.1:9469"
    interval: PositiveDuration = 30.0
    timeout: PositiveDuration = 5.0
    evaluation_interval: PositiveDuration = 15.0
    state_dir: str = "./state"
    external_labels: Labels = Field(default_factory=dict)
    retry: RetryConfig = RetryConfig()
    max_concurrent_probes: int = Field(default=4096, ge=1)
    web: WebConfig = WebConfig()
    flapping: FlappingConfig = FlappingConfig()


# ---------------------------------------------------------------------------- targets


# The `global` section the targets being validated inherit from; set by `Config` around the
# validation of its targets (a target validated on its own inherits the defaults).
_inherited: ContextVar[GlobalConfig] = ContextVar("inherited_global")
_DEFAULT_GLOBAL = GlobalConfig()


def _global() -> GlobalConfig:
    return _inherited.get(_DEFAULT_GLOBAL)


class _TargetCommon(Model):
    name: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_target_name)]
    interval: PositiveDuration = Field(default_factory=lambda: _global().interval)
    timeout: PositiveDuration = Field(default_factory=lambda: _global().timeout)
    labels: Labels = Field(default_factory=dict)
    retry: RetryConfig = Field(default_factory=lambda: _global().retry)
    backoff_when_down: BackoffWhenDown | None = None
    maintenance: list[TimeInterval] = Field(default_factory=list)  # no probes inside (maintenance.py)

    @model_validator(mode="after")
    def _inherited_timeout_within_interval(self) -> "_TargetCommon":
        """An inherited timeout is cut to the target's interval; one given is checked, not cut."""
        if "timeout" not in self.model_fields_set and self.timeout > self.interval:
            object.__setattr__(self, "timeout", self.interval)  # still being built; frozen from now on
        return self


# The keys of every probe kind (`url` and `http`, `tcp`, `dns`), from the registry.
_TargetKeys = create_model(  # type: ignore[call-overload]  # fields known only at run time
    "_TargetKeys", __base__=_TargetCommon, __module__=__name__,
    **{key: spec for kind in KINDS.values() for key, spec in kind.target_fields.items()})

_ONE_KIND = "give exactly one of {}".format(
    " or ".join(filter(None, (", ".join(k.key_text for k in list(KINDS.values())[:-1]),
                              list(KINDS.values())[-1].key_text))))


class Target(_TargetKeys):  # type: ignore[misc, valid-type]  # a base built at run time
    """One monitored service: one kind of probe (one of the kinds' keys given) and when to run it.

    `interval`, `timeout` and `retry` are always set: those not given are `global`'s (the
    timeout no longer than the interval). `probe` is what the scheduler runs.
    """

    _probe: Probe = PrivateAttr()

    @model_validator(mode="after")
    def _one_kind(self) -> "Target":
        kinds = [kind for kind in KINDS.values() if getattr(self, kind.key) is not None]
        if len(kinds) != 1:
            raise ValueError(_ONE_KIND)
        for kind in KINDS.values():
            if getattr(self, kind.key) is None:
                for key in kind.target_fields:
                    if getattr(self, key) is not None:
                        raise ValueError(f"{key} options need a {kind.key}")
        kind = kinds[0]
        self._probe = Probe(self.name, kind, kind.settings(lambda key: getattr(self, key)), self.retry)
        return self

    @property
    def probe(self) -> Probe:
        return self._probe

    @property
    def kind(self) -> str:
        return self._probe.kind.name

    @property
    def endpoint(self) -> str:
        """What is probed, for people: the URL, host:port or DNS query."""
        return self._probe.endpoint


# Validated targets of the previous load, by their raw mapping (after ${ENV} expansion) and
# what they inherit: a reload of 10 000 targets that changes one validates one. Targets
# naming any file (secrets, CA, client certificates) are always validated again: the file
# may have changed.
_validated_targets: dict[tuple[Any, ...], Target] = {}
_seen_targets: dict[tuple[Any, ...], Target] = {}


def _reuse_validated(value: Any, handler: ValidatorFunctionWrapHandler) -> Target:
    if not isinstance(value, dict):
        return handler(value)
    try:
        text = json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        return handler(value)
    if '_file"' in text:
        return handler(value)
    inherited = _global()
    key = (inherited.interval, inherited.timeout, inherited.retry, text)
    target = _validated_targets.get(key) or handler(value)
    _seen_targets[key] = target
    return target


# ---------------------------------------------------------------------------- the file


class Config(Model):
    global_: GlobalConfig = Field(default=GlobalConfig(), alias="global")
    logging: LoggingConfig = LoggingConfig()
    targets: list[Annotated[Target, WrapValidator(_reuse_validated)]] = Field(default_factory=list)
    rule_files: list[str] = Field(default_factory=list)
    alerting: AlertingConfig | None = None
    cluster: ClusterConfig = ClusterConfig()
    history: HistoryConfig = HistoryConfig()
    status_page: StatusPageConfig = StatusPageConfig()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, hide_input_in_errors=True)

    @field_validator("targets", mode="wrap")
    @classmethod
    def _inherit_global(cls, targets: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        """Validate the targets against this file's `global` (its defaults if `global` is invalid)."""
        token = _inherited.set(info.data.get("global_") or _DEFAULT_GLOBAL)
        try:
            return handler(targets)
        finally:
            _inherited.reset(token)


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


def _duplicate_names(raw: dict[str, Any]) -> list[Problem]:
    """Target names given twice, read from the file before validation: reported with every other error."""
    targets = raw.get("targets")
    first: dict[str, int] = {}
    problems: list[Problem] = []
    for index, target in enumerate(targets if isinstance(targets, list) else []):
        name = target.get("name") if isinstance(target, dict) else None
        if not isinstance(name, str):
            continue
        if name in first:
            if len(problems) >= MAX_REPORTED:  # the rest are not shown anyway
                break
            problems.append((("targets", index, "name"), f"duplicate target name {name!r} (first at targets[{first[name]}])"))
        else:
            first[name] = index
    return problems


def _cross_checks(config: Config) -> list[Problem]:
    """What spans keys, on the values in force (a target's own or inherited from `global`)."""
    problems: list[Problem] = []
    for index, target in enumerate(config.targets):
        if len(problems) >= MAX_REPORTED:  # the rest are not shown anyway
            break
        if target.timeout > target.interval:
            problems.append((("targets", index, "timeout"), "must not exceed the interval "
                             f"({target.timeout:g}s > {target.interval:g}s)"))
        if target.backoff_when_down and target.backoff_when_down.max_interval < target.interval:
            problems.append((("targets", index, "backoff_when_down", "max_interval"), "must be at least the interval"))
    return problems


def _check_long_lists(raw: dict[str, Any]) -> long_lists.Report:
    """Long lists (a generated `targets`) checked a chunk at a time, inheriting this file's `global`."""
    try:
        inherited = GlobalConfig.model_validate(raw.get("global") or {})
    except ValidationError:
        inherited = _DEFAULT_GLOBAL
    token = _inherited.set(inherited)
    try:
        return long_lists.check(raw, Config, MAX_REPORTED)
    finally:
        _inherited.reset(token)


def parse_config(raw: Any, source: str, keep: Callable[[Any], bool] | None = None) -> Config:
    """Validate an already parsed YAML tree; raise ConfigError listing every problem.

    A tree from `load_yaml` remembers where each key was written, and the errors name the line.
    `keep`: validate only the targets it keeps (one shard's, of a file that lists the whole
    fleet's); a file with any problem is then checked whole, so that the errors name the
    targets by their place in the file.
    """
    if keep is not None:
        try:
            return parse_config(_kept_targets(raw, keep), source)
        except ConfigError:
            return parse_config(raw, source)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    tree = raw
    raw, problems = expand_env(raw)
    problems += _duplicate_names(raw)
    _seen_targets.clear()
    long = _check_long_lists(raw)  # in chunks, the problems bounded: before pydantic sees them whole
    problems += long.problems
    try:
        config = Config.model_validate(long_lists.emptied(raw, long.locs))
    except ValidationError as exc:
        problems += error_problems(exc, Config)
        raise ConfigError(f"{source}: invalid configuration",
                          format_problems(problems, source, tree, long.unlisted, long.unchecked)) from None
    problems += _cross_checks(config)
    if problems:
        raise ConfigError(f"{source}: invalid configuration", format_problems(problems, source, tree, long.unlisted, long.unchecked))
    _validated_targets.clear()  # keep only what this (good) load used
    _validated_targets.update(_seen_targets)
    redaction.install(redaction.collect(config))  # from now on, no log line or page shows them
    return config


def _kept_targets(raw: Any, keep: Callable[[Any], bool]) -> Any:
    if not isinstance(raw, dict) or not isinstance(raw.get("targets"), list):
        return raw
    return {**raw, "targets": [target for target in raw["targets"] if keep(target)]}


def load_config(path: str | os.PathLike[str],
                narrow: Callable[[Any], Callable[[Any], bool] | None] | None = None) -> LoadedConfig:
    """Read, expand and validate a configuration file. Raises ConfigError; never half-loads.

    `narrow(tree)`, given the file as read, may return which targets to keep (see parse_config)."""
    path = Path(path)
    raw = load_yaml(path)
    if raw is None:  # empty, or only comments: a truncated write must not drop every target and rule
        raise ConfigError(f"{path}: the file is empty; expected a configuration (at least `targets:`)")
    keep = narrow(raw) if narrow is not None else None
    return LoadedConfig(path=path.resolve(), config=parse_config(raw, str(path), keep))
