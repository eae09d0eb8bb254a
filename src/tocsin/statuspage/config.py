"""`status_page:` in the configuration: the title, the grouping, and the public page."""

from __future__ import annotations

import fnmatch

from pydantic import Field

from ..fields import Model


class StatusPageConfig(Model):
    """The status pages. `/` is the operators' overview (behind `web.basic_auth_users` when
    set); `/status` is the page for end users: only the targets matching `targets` (globs on
    the name), no endpoints, configuration or failure reasons unless `show_reasons`. With
    `public: true`, `/status` and those targets' badges answer without credentials.
    `group_by`: a target label whose values head the groups of both pages."""

    title: str = Field(default="tocsin", max_length=200)  # the pages' heading and window title
    public: bool = False  # /status and its targets' badges answer without credentials
    targets: list[str] = Field(default_factory=lambda: ["*"])  # globs on target names: what /status shows
    group_by: str | None = None  # a target label whose values head the groups of both pages
    show_reasons: bool = False  # /status shows why a target is down ("HTTP 500")

    def shows(self, name: str) -> bool:
        """Whether the public page shows target `name`."""
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.targets)
