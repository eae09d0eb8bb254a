"""Probe history: per-target rollups (minute, hour, day), the incident log and alert states,
in SQLite under `state_dir`, written off the probe path (`recorder.HistoryRecorder`)."""

from .config import HistoryConfig
from .recorder import HistoryRecorder
from .rollup import DOWN, MAINTENANCE, UP, Rollup

__all__ = ["DOWN", "MAINTENANCE", "UP", "HistoryConfig", "HistoryRecorder", "Rollup"]
