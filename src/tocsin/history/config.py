"""`history:` in the configuration: how long each resolution of the rollups is kept."""

from __future__ import annotations

from pydantic import Field, model_validator

from ..fields import Duration, Model

MAX_HOURS_KEPT = 400 * 86400.0  # a year and a bit: the hour table stays bounded whatever is asked


class HistoryConfig(Model):
    """Per-minute rollups for `minutes` (default 48h), per-hour and per-day for `hours` (90d).

    Minutes answer "what happened in the last hour"; hours and days answer the 90-day bar,
    the 7- and 30-day uptime and the weekly chart. Rows older than these are pruned a few
    targets at a time, so the database stays at a size set by the number of targets.
    """

    minutes: Duration = Field(default=48 * 3600.0, ge=3600.0, le=14 * 86400.0)  # per-minute rollups kept this long (1h to 14d)
    hours: Duration = Field(default=90 * 86400.0, ge=86400.0, le=MAX_HOURS_KEPT)  # per-hour and per-day rollups kept this long

    @model_validator(mode="after")
    def _hours_cover_minutes(self) -> "HistoryConfig":
        if self.hours < self.minutes:
            raise ValueError("hours must be at least minutes")
        return self
