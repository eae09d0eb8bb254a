"""What makes a kind of probe: its options, its attempt, the gauges it reports, its endpoint.

Everything that differs between HTTP, TCP and DNS is described once, here, by a
`ProbeKind` each kind module builds; the configuration schema, the metrics and the views
read it instead of testing `kind == "http"`. The registry (`probes/__init__.py`) lists the
kinds, so a new kind is one module plus one line there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .result import Attempt
from .retry import RetryConfig

# name -> (type, help), as on /metrics
Families = Mapping[str, tuple[str, str]]


@dataclass(frozen=True, eq=False)
class ProbeKind:
    """One kind of probe. Compared by identity: there is one object per kind."""

    name: str  # the `kind` label value and what the API and `tocsin probe` show
    # The target key whose presence selects this kind, and how error messages name it.
    key: str
    key_text: str
    # The keys this kind adds to a target, as pydantic field definitions: name -> (type, default).
    # All but `key` refine it and make no sense without it.
    target_fields: Mapping[str, tuple[Any, Any]]
    # The probe's own settings from the target's values of `target_fields` (a getter by key):
    # the attempt receives these, never the target.
    settings: Callable[[Callable[[str], Any]], Any]
    attempt: Callable[[Any, float, str], Awaitable[Attempt]]
    endpoint: Callable[[Any], str]  # what is probed, for people: URL, host:port, query
    # The inverse, for `tocsin probe ENDPOINT`: the target keys that probe `endpoint`.
    target_keys: Callable[[str], dict[str, Any]]
    families: Families  # the `probe_*` families this kind can report, in /metrics order
    facts: tuple[str, ...] = ()  # reported by every result (0 when the attempt did not get that far)
    optional_facts: tuple[str, ...] = ()  # reported only when the attempt measured them
    # The per-phase duration family and its phases (an attempt's `phases` keys).
    phase_family: str | None = None
    phases: tuple[str, ...] = ()
    # Label-carrying facts: (Attempt.info key, family, label name), a sample of value 1; or
    # (keys, family, label names) for a sample with several labels, reported when the first key is.
    info_gauges: tuple[tuple[str, str, str] | tuple[tuple[str, ...], str, tuple[str, ...]], ...] = ()
    # Facts reported as one sample of a labelled family, when measured: (fact, family, (label, value)),
    # e.g. ("icmp_rtt_min_seconds", "probe_icmp_rtt_seconds", ("stat", "min")).
    labelled_facts: tuple[tuple[str, str, tuple[str, str]], ...] = ()
    # Derived: (fact, family name) for facts and optional facts, the `probe_` prefix added once.
    fact_families: tuple[tuple[str, str], ...] = field(init=False)
    optional_fact_families: tuple[tuple[str, str], ...] = field(init=False)

    def __repr__(self) -> str:
        return f"ProbeKind({self.name!r})"

    def __post_init__(self) -> None:
        object.__setattr__(self, "fact_families", tuple((f, "probe_" + f) for f in self.facts))
        object.__setattr__(self, "optional_fact_families", tuple((f, "probe_" + f) for f in self.optional_facts))


@dataclass(frozen=True, slots=True)
class Probe:
    """Everything needed to probe one target, built once per target at load time."""

    name: str
    kind: ProbeKind
    settings: Any  # what `kind.attempt` takes
    retry: RetryConfig

    @property
    def endpoint(self) -> str:
        return self.kind.endpoint(self.settings)


def set_option(keys: dict[str, Any], kind: ProbeKind, option: str) -> None:
    """Set `option` (`a.b=VALUE`, the value read as YAML) in the kind's options within a target's
    `keys`, as `tocsin probe --set` does: its key's section, or, where the key is a plain value
    (HTTP's `url`), the section of its other key (`http`)."""
    import yaml

    name, equals, text = option.partition("=")
    if not equals or not name.strip():
        raise ValueError(f"--set {option!r}: give KEY=VALUE, such as packets=3")
    section = kind.key
    if not isinstance(keys.get(section, {}), dict):
        section = next((key for key in kind.target_fields if key != kind.key), section)
    node = keys.setdefault(section, {})
    if not isinstance(node, dict):
        raise ValueError(f"--set {name}: {section} takes no options here")
    *parents, leaf = name.strip().split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"--set {name}: {part} is not a section")
    node[leaf] = yaml.safe_load(text) if text else ""
