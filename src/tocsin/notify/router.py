"""Alertmanager's routing tree and inhibit rules, compiled from the config.

Routing: an alert enters at the root (which matches everything); it descends into the
first child whose matchers match, and keeps trying later siblings only while the matching
child says `continue: true`. A node none of whose children match takes the alert itself.
Children inherit receiver, group_by and the three timers from their parent.

Inhibition: a target alert is muted while a *firing* source alert (not itself) matches the
source matchers and has the same values (missing = empty) for the `equal` labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..gofmt import format_label_set
from .alert import fingerprint
from .config import AlertingConfig, InhibitRule, RouteConfig
from .matchers import Matcher, matches_all, parse_matcher_list

ROOT_DEFAULTS = {"group_wait": 30.0, "group_interval": 300.0, "repeat_interval": 4 * 3600.0}


@dataclass
class Route:
    id: str                       # unique: the matcher path plus sibling index
    key: str                      # Alertmanager's route key: the matcher path
    receiver: str
    matchers: list[Matcher]
    continue_: bool
    group_by: tuple[str, ...]
    group_all: bool
    group_wait: float
    group_interval: float
    repeat_interval: float
    routes: list["Route"] = field(default_factory=list)

    def match(self, labels: dict[str, str]) -> list["Route"]:
        """The routes (leaves of the walk) that take an alert with these labels."""
        if not matches_all(self.matchers, labels):
            return []
        found: list[Route] = []
        for child in self.routes:
            hits = child.match(labels)
            found += hits
            if hits and not child.continue_:
                break
        return found or [self]

    def group_labels(self, labels: dict[str, str]) -> dict[str, str]:
        if self.group_all:
            return dict(labels)
        return {name: labels[name] for name in self.group_by if name in labels}

    def group_key(self, group_labels: dict[str, str]) -> str:
        """`{}/{severity="critical"}:{alertname="X"}` - the form Alertmanager sends as groupKey."""
        return f"{self.key}:{format_label_set(sorted(group_labels.items()), separator=',')}"


def build_route(cfg: RouteConfig, parent: Route | None = None, index: int = 0) -> Route:
    matchers = parse_matcher_list(cfg.matchers)
    inner = "{" + ",".join(str(m) for m in matchers) + "}"
    if parent is None:
        key, route_id = "{}", "{}"
    else:
        key, route_id = f"{parent.key}/{inner}", f"{parent.id}/{inner}/{index}"

    def inherit(name: str) -> float:
        value = getattr(cfg, name)
        if value is not None:
            return value
        return getattr(parent, name) if parent else ROOT_DEFAULTS[name]

    group_by = tuple(cfg.group_by) if cfg.group_by is not None else (parent.group_by if parent else ())
    route = Route(id=route_id, key=key, receiver=cfg.receiver or (parent.receiver if parent else ""),
                  matchers=matchers, continue_=cfg.continue_, group_by=group_by, group_all="..." in group_by,
                  group_wait=inherit("group_wait"), group_interval=inherit("group_interval"),
                  repeat_interval=inherit("repeat_interval"))
    route.routes = [build_route(child, route, i) for i, child in enumerate(cfg.routes)]
    return route


class Inhibitor:
    """Decides which alerts are muted, given the alerts firing now."""

    def __init__(self, rules: list[InhibitRule]) -> None:
        self.rules = [(parse_matcher_list(r.source_matchers), parse_matcher_list(r.target_matchers), tuple(r.equal))
                      for r in rules]

    def muter(self, firing: list[dict[str, str]]):
        """A function `labels -> bool` (muted?) for the current set of firing alerts' labels."""
        if not self.rules:
            return lambda _labels: False
        index = []
        for source, target, equal in self.rules:
            by_equal: dict[tuple[str, ...], set[str]] = {}
            for labels in firing:
                if matches_all(source, labels):
                    by_equal.setdefault(tuple(labels.get(n, "") for n in equal), set()).add(fingerprint(labels))
            index.append((target, equal, by_equal))

        def muted(labels: dict[str, str]) -> bool:
            fp = None
            for target, equal, by_equal in index:
                if not by_equal or not matches_all(target, labels):
                    continue
                sources = by_equal.get(tuple(labels.get(n, "") for n in equal))
                if sources:
                    fp = fp or fingerprint(labels)
                    if sources - {fp}:
                        return True
            return False

        return muted


def build(config: AlertingConfig) -> tuple[Route, Inhibitor]:
    return build_route(config.route), Inhibitor(config.inhibit_rules)
