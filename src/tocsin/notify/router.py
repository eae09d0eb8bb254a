"""Alertmanager's routing tree and inhibit rules, compiled from the config.

Routing: an alert enters at the root (which matches everything); it descends into the
first child whose matchers match, and keeps trying later siblings only while the matching
child says `continue: true`. A node none of whose children match takes the alert itself.
Children inherit receiver, group_by and the three timers from their parent, as Alertmanager
0.25 does: an empty `receiver` or `group_by: []` is "not given" (so inherits, `...`
included), and the time intervals are not inherited.

Keys: a route's key is its parent's key, `/`, and its matchers sorted by name, value and type
(legacy `match` and `match_re` among them); a group's key is the route key, `:`, and the group
labels as prometheus/common prints a label set. Receivers (PagerDuty's dedup key, webhooks'
`groupKey`) see these strings, so they are Alertmanager's to the byte.

Inhibition: a target alert is muted while a *firing* source alert (not itself) matches the
source matchers and has the same values (missing = empty) for the `equal` labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..gofmt import go_label_set
from .alert import fingerprint
from .config import AlertingConfig, InhibitRule, RouteConfig
from .matchers import Matcher, format_matchers, matches_all, parse_matcher_list, sorted_matchers

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
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()
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
        """`{}/{severity="critical"}:{alertname="X", team="a\\tb"}` - Alertmanager's groupKey."""
        return f"{self.key}:{go_label_set(group_labels)}"


def legacy_matchers(match: dict[str, str], match_re: dict[str, str]) -> list[Matcher]:
    """Alertmanager's deprecated `match` / `match_re` maps as matchers. A `match_re` value
    becomes the anchored source Alertmanager compiled (`^(?:x)$`), which its route keys show."""
    return ([Matcher(name, "=", value) for name, value in match.items()]
            + [Matcher(name, "=~", f"^(?:{value})$") for name, value in match_re.items()])


def route_matchers(cfg: RouteConfig) -> list[Matcher]:
    """The route's matchers as Alertmanager orders them: `match`, `match_re` and `matchers`
    together, sorted."""
    return sorted_matchers(legacy_matchers(cfg.match, cfg.match_re) + parse_matcher_list(cfg.matchers))


def build_route(cfg: RouteConfig, parent: Route | None = None, index: int = 0) -> Route:
    matchers = route_matchers(cfg)
    inner = format_matchers(matchers)
    if parent is None:
        key, route_id = inner, inner
    else:
        key, route_id = f"{parent.key}/{inner}", f"{parent.id}/{inner}/{index}"

    def inherit(name: str) -> float:
        value = getattr(cfg, name)
        if value is not None:
            return value
        return getattr(parent, name) if parent else ROOT_DEFAULTS[name]

    names = tuple(n for n in cfg.group_by or () if n != "...")
    group_by, group_all = (parent.group_by, parent.group_all) if parent else ((), False)
    if names:
        group_by, group_all = names, False
    elif "..." in (cfg.group_by or ()):
        group_all = True
    route = Route(id=route_id, key=key, receiver=cfg.receiver or (parent.receiver if parent else ""),
                  matchers=matchers, continue_=cfg.continue_, group_by=group_by, group_all=group_all,
                  group_wait=inherit("group_wait"), group_interval=inherit("group_interval"),
                  repeat_interval=inherit("repeat_interval"),
                  mute_time_intervals=tuple(cfg.mute_time_intervals),
                  active_time_intervals=tuple(cfg.active_time_intervals))
    route.routes = [build_route(child, route, i) for i, child in enumerate(cfg.routes)]
    return route


class Inhibitor:
    """Decides which alerts are muted, given the alerts firing now."""

    def __init__(self, rules: list[InhibitRule]) -> None:
        self.rules = [(legacy_matchers(r.source_match, r.source_match_re) + parse_matcher_list(r.source_matchers),
                       legacy_matchers(r.target_match, r.target_match_re) + parse_matcher_list(r.target_matchers),
                       tuple(r.equal)) for r in rules]

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
