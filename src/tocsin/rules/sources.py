"""The rule files a configuration names, each kept at its last good version.

A file that fails to load (unreadable, invalid, or gone from disk while `rule_files` still
names it) keeps the groups of its last good version and reports why: a half-done
deployment or a typo must not drop rules, and with them resolve the alerts they fire, as
the reload that broke them. A file's rules go when `rule_files` stops naming it, or when
its last good version had no groups.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..config import LoadedConfig
from .files import GroupSpec, RuleFileError, load_rule_file, names_file, resolve_rule_files

log = logging.getLogger("tocsin.rules")


class RuleSources:
    """Reads the rule files of a configuration, keeping each one's last good version."""

    def __init__(self) -> None:
        self._last_good: dict[str, list[GroupSpec]] = {}

    def read(self, loaded: LoadedConfig) -> tuple[list[GroupSpec], list[str]]:
        files, warnings = resolve_rule_files(loaded.path, loaded.config.rule_files)
        errors = [f"{loaded.path}: rule_files: {w}" for w in warnings]
        """The groups of every file `loaded` names, and the problems found (one per line)."""
        for path, groups in self._last_good.items():
            if path not in files and groups and names_file(loaded.path, loaded.config.rule_files, path):
                errors.append(f"{path}: rule file is missing; keeping its previous version "
                              "(to remove its rules, take it out of rule_files or empty its groups)")
                files.append(path)
        specs: list[GroupSpec] = []
        good: dict[str, list[GroupSpec]] = {}
        for path in files:
            try:
                groups = load_rule_file(path, loaded.global_.evaluation_interval)
            except RuleFileError as exc:
                if Path(path).exists():
                    errors += exc.errors
                if path in self._last_good:
                    log.error("rule file %s is invalid; keeping its previous version", path)
                    groups = self._last_good[path]
                else:
                    continue
            good[path] = groups
            specs += groups
        self._last_good = good
        return specs, errors
