"""Alertmanager 0.25's time intervals: when a route's notifications are muted (or active).

`alerting.time_intervals` names lists of intervals; a route's `mute_time_intervals` mutes
its notifications while the flush time is inside any of them, `active_time_intervals` mutes
them while it is inside none. An interval is the conjunction of the fields given (`times`,
`weekdays`, `days_of_month`, `months`, `years`), each a list of ranges any of which may hold,
read in `location` (UTC when not given). People copy these blocks from Alertmanager configs,
so the grammar and the edge cases are Alertmanager's (timeinterval/timeinterval.go):

- a range is `a:b` or a single `a`, case-insensitive; weekdays by name only (sunday..saturday);
  months by name or number (never range-checked, as there); days of month 1..31 or -31..-1
  counting from the month's end, a range clamped to the month, one that starts after the
  month's last day skipped;
- a field given as an empty list never matches (Alertmanager keeps it as a non-nil slice);
- times are `HH:MM` to `HH:MM` (`24:00` allowed as an end), start included, end excluded;
- Alertmanager 0.25 counts a month's days as whole 24 h in its length, so a month that loses an
  hour to daylight saving time has a day less for negative `days_of_month` (fixed in later
  releases; kept here so that the same config mutes at the same instants).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import BeforeValidator, Field, model_validator

from .fields import Model

WEEKDAYS = {name: i for i, name in enumerate(
    ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"))}
MONTHS = {name: i + 1 for i, name in enumerate(
    ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
     "november", "december"))}
_ATOI = re.compile(r"[+-]?[0-9]+")   # Go's strconv.Atoi: ASCII digits, an optional sign
_TIME = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]|24:00")


def _atoi(text: str, what: str) -> int:
    if not _ATOI.fullmatch(text) or len(text) > 19:
        raise ValueError(f"{text} is not a valid {what}")
    return int(text)


def _range(value: Any, member: Callable[[str], int]) -> tuple[int, int]:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError("expected a range such as 'monday:friday' or '1:5'")
    text = str(value).lower()
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 2:
            raise ValueError(f"couldn't parse range {text}, invalid format")
        return member(parts[0]), member(parts[1])
    single = member(text)
    return single, single


def _weekdays(value: Any) -> tuple[int, int]:
    def member(text: str) -> int:
        if text not in WEEKDAYS:
            raise ValueError(f"{text} is not a valid weekday")
        return WEEKDAYS[text]
    begin, end = _range(value, member)
    if begin > end:
        raise ValueError("start day cannot be before end day")
    return begin, end


def _days_of_month(value: Any) -> tuple[int, int]:
    begin, end = _range(value, lambda text: _atoi(text, "day of the month"))
    for day in (begin, end):
        if day == 0 or not -31 <= day <= 31:
            raise ValueError(f"{day} is not a valid day of the month: out of range")
    if begin < 0 < end:
        raise ValueError("end day must be negative if start day is negative")
    if (28 + begin if begin < 0 else begin) > (28 + end if end < 0 else end):
        raise ValueError(f"end day {end} is always before start day {begin}")
    return begin, end


def _months(value: Any) -> tuple[int, int]:
    begin, end = _range(value, lambda text: MONTHS[text] if text in MONTHS else _atoi(text, "month"))
    if begin > end:
        raise ValueError("end month is before start month")
    return begin, end


def _years(value: Any) -> tuple[int, int]:
    begin, end = _range(value, lambda text: _atoi(text, "year"))
    if begin > end:
        raise ValueError(f"end year {end} is before start year {begin}")
    return begin, end


def _clock(value: Any) -> int:
    if not isinstance(value, str) or not _TIME.fullmatch(value):
        raise ValueError(f"couldn't parse timestamp {value}, invalid format (expected HH:MM)")
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def load_location(name: str) -> tzinfo:
    """Go's time.LoadLocation: '' and 'UTC' are UTC, 'Local' the machine's zone, else the tz database."""
    if name in ("", "UTC"):
        return timezone.utc
    if name == "Local":
        return _local_zone()
    try:
        return ZoneInfo(name)
    except (ValueError, OSError) as exc:  # ZoneInfoNotFoundError is a KeyError, caught below
        raise ValueError(f"unknown time zone {name}") from exc
    except KeyError:
        raise ValueError(f"unknown time zone {name}") from None


def _local_zone() -> tzinfo:
    """Go's time.Local: $TZ when set ('' is UTC), else /etc/localtime, else UTC; with its rules,
    so an instant in summer is read in summer time even if loaded in winter."""
    name = os.environ.get("TZ")
    try:
        if name is not None:
            return ZoneInfo(name.removeprefix(":")) if name not in ("", ":", "UTC") else timezone.utc
        with open("/etc/localtime", "rb") as file:
            return ZoneInfo.from_file(file, key="Local")
    except (OSError, ValueError, KeyError):
        return timezone.utc


class TimeRange(Model):
    start_time: str | None = None  # HH:MM, inclusive
    end_time: str | None = None  # HH:MM, exclusive (24:00 for the end of the day)

    @model_validator(mode="after")
    def _order(self) -> "TimeRange":
        if not self.start_time or not self.end_time:
            raise ValueError("both start and end times must be provided")
        if _clock(self.start_time) >= _clock(self.end_time):
            raise ValueError("start time cannot be equal or greater than end time")
        return self

    @property
    def minutes(self) -> tuple[int, int]:
        assert self.start_time and self.end_time
        return _clock(self.start_time), _clock(self.end_time)


def _location(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a time zone name such as 'Europe/Berlin'")
    load_location(value)
    return value


class TimeInterval(Model):
    """One interval: every field given must hold at the instant."""

    times: list[TimeRange] | None = None  # times of day, in `location`
    weekdays: list[Annotated[tuple[int, int], BeforeValidator(_weekdays)]] | None = None  # e.g. monday:friday, saturday
    days_of_month: list[Annotated[tuple[int, int], BeforeValidator(_days_of_month)]] | None = None  # e.g. 1:5, -1 (the last day)
    months: list[Annotated[tuple[int, int], BeforeValidator(_months)]] | None = None  # e.g. january:march, 12
    years: list[Annotated[tuple[int, int], BeforeValidator(_years)]] | None = None  # e.g. 2026:2027
    location: Annotated[str, BeforeValidator(_location)] | None = None  # a time zone such as Europe/Berlin (default UTC; Local: the host's)

    def contains(self, instant: datetime) -> bool:
        local = instant.astimezone(load_location(self.location or ""))
        if self.times is not None:
            minute = local.hour * 60 + local.minute
            if not any(start <= minute < end for start, end in (t.minutes for t in self.times)):
                return False
        if self.days_of_month is not None and not _day_in(self.days_of_month, local):
            return False
        if self.months is not None and not any(b <= local.month <= e for b, e in self.months):
            return False
        weekday = (local.weekday() + 1) % 7  # Go's time.Weekday: Sunday is 0
        if self.weekdays is not None and not any(b <= weekday <= e for b, e in self.weekdays):
            return False
        return self.years is None or any(b <= local.year <= e for b, e in self.years)


def days_in_month(local: datetime) -> int:
    """Alertmanager 0.25's count: the month's real length in hours over 24, truncated."""
    zone = local.tzinfo
    start = datetime(local.year, local.month, 1, tzinfo=zone)
    following = datetime(local.year + local.month // 12, local.month % 12 + 1, 1, tzinfo=zone)
    return int((following.astimezone(timezone.utc) - start.astimezone(timezone.utc)) / timedelta(hours=24))


def _day_in(ranges: list[tuple[int, int]], local: datetime) -> bool:
    days = days_in_month(local)
    for begin, end in ranges:
        begin = days + begin + 1 if begin < 0 else begin
        end = days + end + 1 if end < 0 else end
        if begin > days:
            continue
        begin, end = max(-days, min(begin, days)), max(-days, min(end, days))
        if begin <= local.day <= end:
            return True
    return False


class NamedTimeInterval(Model):
    name: str = Field(min_length=1)  # what routes' mute_time_intervals and active_time_intervals name
    time_intervals: list[TimeInterval] = Field(default_factory=list)  # the instant is in the interval when it is in any of these


def in_intervals(instant: datetime, names: tuple[str, ...] | list[str],
                 table: dict[str, list[TimeInterval]]) -> bool:
    """Whether the instant is inside any interval of the named lists (names were checked at load)."""
    return any(interval.contains(instant) for name in names for interval in table.get(name, ()))


def muted_at(instant: datetime, mute: tuple[str, ...], active: tuple[str, ...],
             table: dict[str, list[TimeInterval]]) -> bool:
    """Alertmanager's two time stages for one route: outside every active interval (when some
    are given), or inside a mute interval, its notifications are not sent."""
    if active and not in_intervals(instant, active, table):
        return True
    return bool(mute) and in_intervals(instant, mute, table)
