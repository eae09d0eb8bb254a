"""`tocsin import blackbox`: blackbox_exporter modules plus the Prometheus jobs using them, as tocsin targets.

In a blackbox setup the modules say how to probe and Prometheus's scrape jobs say what:
each static target of a job with `metrics_path: /probe` is relabelled (usually into
`__param_target`) and probed with the job's `module` parameter, every `scrape_interval`,
within `scrape_timeout`. This module walks the jobs the same way and writes one tocsin
target per probe. Nothing is dropped silently: every option, job or target that cannot be
expressed is listed in the output's header, and a converted target that does not load
here (a CA file that only exists on the old host) is written commented out with the reason.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .. import yamlfile
from ..errors import ConfigError
from ..units import format_duration, parse_duration
from . import blackbox_modules
from .relabel import RelabelError, Rule, relabel

_DEFAULT_MODULE = "http_2xx"  # what blackbox_exporter probes with when a scrape gives no module
_TOCSIN_RESERVED = {"job", "instance", "target", "result", "le"}


@dataclass
class Conversion:
    targets: list[dict] = field(default_factory=list)
    unloadable: list[tuple[dict, list[str]]] = field(default_factory=list)  # converted, but not valid here
    notes: list[str] = field(default_factory=list)  # what was not converted, and why


def _mapping(value: Any, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{what}: expected a mapping")
    return value


def convert(blackbox: Any, prometheus: Any) -> Conversion:
    """Convert parsed blackbox and Prometheus configurations."""
    modules = _mapping(_mapping(blackbox, "blackbox configuration").get("modules"), "modules")
    prometheus = _mapping(prometheus, "Prometheus configuration")
    defaults = _mapping(prometheus.get("global"), "global")
    interval = parse_duration(str(defaults.get("scrape_interval", "1m")))
    timeout = parse_duration(str(defaults.get("scrape_timeout", "10s")))
    out = Conversion()
    used: set[str] = set()
    for job in prometheus.get("scrape_configs") or []:
        _job(_mapping(job, "scrape_configs[]"), modules, interval, timeout, out, used)
    for name in modules:
        if name not in used:
            out.notes.append(f"module {name}: used by no scrape job, so nothing to probe")
    _unique_names(out.targets)
    _validate(out)
    return out


def _job(job: dict, modules: dict, interval: float, timeout: float, out: Conversion, used: set[str]) -> None:
    name = str(job.get("job_name", "?"))
    params = _mapping(job.get("params"), f"job {name}: params")
    path = str(job.get("metrics_path", "/metrics"))
    if path != "/probe" and "module" not in params:
        out.notes.append(f"job {name}: not a blackbox job (metrics_path {path}, no module parameter); not converted")
        return
    for key in job:
        if key.endswith("_sd_configs"):
            out.notes.append(f"job {name}: {key}: targets discovered at run time are not converted; "
                             "list them as static targets")
    for key in params:
        if key not in ("module", "target"):
            out.notes.append(f"job {name}: params.{key}: not converted (tocsin takes a target's options "
                             "from its configuration)")
    if job.get("metric_relabel_configs"):
        out.notes.append(f"job {name}: metric_relabel_configs: tocsin's probe series are not relabelled")
    try:
        rules = [Rule.parse(raw) for raw in job.get("relabel_configs") or []]
    except RelabelError as exc:
        out.notes.append(f"job {name}: relabel_configs: {exc}; job not converted")
        return
    job_interval = parse_duration(str(job.get("scrape_interval", format_duration(interval))))
    job_timeout = parse_duration(str(job.get("scrape_timeout", format_duration(min(timeout, job_interval)))))
    for group in job.get("static_configs") or []:
        group = _mapping(group, f"job {name}: static_configs[]")
        for address in group.get("targets") or []:
            labels = {"__address__": str(address), "job": name, "__metrics_path__": path,
                      "__scheme__": str(job.get("scheme", "http")),
                      **{f"__param_{key}": str((value or [""])[0]) for key, value in params.items()},
                      **{str(k): str(v) for k, v in _mapping(group.get("labels"), "labels").items()}}
            final = relabel(labels, rules)
            if final is not None:
                _target(name, final, modules, job_interval, job_timeout, out, used)


def _target(job: str, labels: dict[str, str], modules: dict, interval: float, timeout: float, out: Conversion,
            used: set[str]) -> None:
    probed = labels.get("__param_target")
    module_name = labels.get("__param_module") or _DEFAULT_MODULE
    where = f"job {job}, module {module_name}"
    if not probed:
        out.notes.append(f"job {job}, address {labels.get('__address__')}: no target parameter after relabelling; "
                         "not converted")
        return
    module = modules.get(module_name)
    if not isinstance(module, dict):
        out.notes.append(f"{where}, target {probed}: no such module in the blackbox configuration; not converted")
        return
    used.add(module_name)
    notes: list[str] = []
    keys = blackbox_modules.convert(module, probed, notes)
    out.notes.extend(f"{where}: {note}" for note in notes if f"{where}: {note}" not in out.notes)
    if keys is None:
        return
    module_timeout = blackbox_modules.timeout_of(module)
    probe_timeout = min(timeout, module_timeout) if module_timeout else timeout
    name = labels.get("instance") or labels["__address__"]
    extra = {k: v for k, v in labels.items() if not k.startswith("__") and k not in _TOCSIN_RESERVED}
    for reserved in sorted(k for k in labels if k in _TOCSIN_RESERVED - {"job", "instance"}):
        out.notes.append(f"{where}, target {probed}: label {reserved}={labels[reserved]!r}: "
                         "the name is tocsin's own; rename it with a relabel rule")
    target: dict = {"name": name, "interval": format_duration(interval), "timeout": format_duration(probe_timeout)}
    if extra:
        target["labels"] = extra
    target.update(keys)
    target["_job"] = job  # for naming duplicates; removed before output
    out.targets.append(target)


def _unique_names(targets: list[dict]) -> None:
    """The same address probed by two jobs (two modules) becomes two targets: name them apart."""
    counts: dict[str, int] = {}
    for target in targets:
        counts[target["name"]] = counts.get(target["name"], 0) + 1
    seen: set[str] = set()
    for target in targets:
        job = target.pop("_job")
        name = target["name"]
        if counts[name] > 1:
            name = f"{name} ({job})"
            while name in seen:
                name += "'"
        seen.add(name)
        target["name"] = name[:200]


def _validate(out: Conversion) -> None:
    """Keep the targets tocsin loads here; the others go out commented, with the loader's reasons."""
    from ..config import parse_config

    valid = []
    for target in out.targets:
        try:
            parse_config({"targets": [target]}, "converted")
        except ConfigError as exc:
            out.unloadable.append((target, [line.replace("converted: targets[0].", "") for line in exc.errors]))
        else:
            valid.append(target)
    out.targets = valid


def _plain(value: Any) -> Any:
    """The parsed files' mappings remember their lines (dict and list subclasses): plain types for the dump."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def render(out: Conversion, sources: tuple[str, str]) -> str:
    """The tocsin configuration text: the not-converted list as a comment header, then `targets:`."""
    lines = [f"# Converted by `tocsin import blackbox` from {sources[0]} and {sources[1]}.",
             "# Prometheus scrapes tocsin under a job of its own: the blackbox jobs' `job` labels are not kept."]
    if out.notes or out.unloadable:
        lines.append(f"# Not converted ({len(out.notes) + len(out.unloadable)}):")
        lines += [f"#   - {note}" for note in out.notes]
        lines += [f"#   - target {target['name']}: does not load here ({'; '.join(errors)}); written commented out"
                  for target, errors in out.unloadable]
    text = "\n".join(lines) + "\n"
    text += yaml.safe_dump({"targets": _plain(out.targets)}, sort_keys=False, allow_unicode=True, width=1000)
    for target, _errors in out.unloadable:
        dumped = yaml.safe_dump(_plain([target]), sort_keys=False, allow_unicode=True, width=1000)
        text += "".join(f"# {line}\n" for line in dumped.splitlines())
    return text


def command(blackbox_path: str, prometheus_path: str) -> int:
    """Print the converted targets; the count of what was not converted goes to stderr as well."""
    try:
        out = convert(yamlfile.load(Path(blackbox_path)), yamlfile.load(Path(prometheus_path)))
    except (ConfigError, ValueError) as exc:
        print(f"tocsin import blackbox: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(render(out, (blackbox_path, prometheus_path)))
    missing = len(out.notes) + len(out.unloadable)
    print(f"{len(out.targets)} targets converted" + (f"; {missing} things not converted, listed at the top"
                                                      if missing else ""), file=sys.stderr)
    return 0
