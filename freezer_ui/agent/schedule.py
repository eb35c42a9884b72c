"""When is a job due?  ``job_schedule`` (freezer-api v2) turned into instants.

Pure functions, no I/O: the agent asks :func:`next_run` for the next instant a job should start
and runs it when that instant is not in the future.  Rules (docs/agent.md, "Schedules"):

* ``schedule_interval`` ``"N minutes|hours|days|weeks|months|seconds"``: the first run at
  ``schedule_start_date`` (or at once), then ``N units`` after the previous *start*.
  ``"continuous"``: again as soon as the previous run ended.
* cron-like fields (``schedule_year``, ``schedule_month``, ``schedule_day``, ``schedule_week``,
  ``schedule_day_of_week``, ``schedule_hour``, ``schedule_minute``, ``schedule_second``), in
  APScheduler's syntax because that is what freezer-scheduler feeds them to: ``*``, ``*/n``,
  ``a``, ``a-b``, ``a-b/n``, lists with ``,``; day of week ``mon``..``sun`` or ``0``..``6``
  (0 = Monday).  Unset fields finer than the finest given one default to their minimum, the
  others to ``*`` (APScheduler's rule), so ``schedule_hour="3"`` means 03:00:00 every day.
* ``schedule_date``: one run at that instant.
* none of these: one run at once.
* nothing is due after ``schedule_end_date``.

Dates without a zone are UTC: an agent and a dashboard in different zones must agree.
Missed runs (agent down) are coalesced into one run, as APScheduler's default does.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

_UTC = timezone.utc

CRON_FIELDS = ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")
_RANGES = {
    "year": (1970, 2999),
    "month": (1, 12),
    "day": (1, 31),
    "week": (1, 53),
    "day_of_week": (0, 6),
    "hour": (0, 23),
    "minute": (0, 59),
    "second": (0, 59),
}
_DAY_NAMES = {name: i for i, name in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))}
_UNITS = {
    "second": "seconds",
    "seconds": "seconds",
    "minute": "minutes",
    "minutes": "minutes",
    "hour": "hours",
    "hours": "hours",
    "day": "days",
    "days": "days",
    "week": "weeks",
    "weeks": "weeks",
    "month": "months",
    "months": "months",
}
# How far ahead a cron search looks before giving up (a "Feb 30" never matches).
_CRON_HORIZON_DAYS = 366 * 8


class ScheduleError(ValueError):
    """The schedule cannot be understood (the agent refuses the job with this message)."""


def parse_date(text: Any) -> datetime | None:
    """An ISO 8601 schedule date as an aware UTC datetime; ``None`` for empty."""
    if text in (None, ""):
        return None
    if not isinstance(text, str):
        raise ScheduleError(f"bad date {text!r}")
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ScheduleError(f"bad date {text!r} (ISO 8601 expected)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=_UTC)
    return value.astimezone(_UTC)


def parse_interval(text: str) -> tuple[int, str] | None:
    """``"6 hours"`` -> ``(6, "hours")``; ``"continuous"`` -> ``(0, "continuous")``."""
    value = text.strip().lower()
    if not value:
        return None
    if value == "continuous":
        return 0, "continuous"
    match = re.fullmatch(r"(\d+)\s*([a-z]+)", value)
    if not match or match.group(2) not in _UNITS:
        raise ScheduleError(
            f"bad schedule_interval {text!r} (e.g. '6 hours', '1 days', '2 weeks', 'continuous')"
        )
    count = int(match.group(1))
    if count < 1:
        raise ScheduleError(f"bad schedule_interval {text!r}: the count must be at least 1")
    return count, _UNITS[match.group(2)]


def add_interval(start: datetime, count: int, unit: str) -> datetime:
    if unit == "months":
        # Calendar months, clamped to the month's last day (Jan 31 + 1 month = Feb 28/29).
        month0 = start.month - 1 + count
        year, month = start.year + month0 // 12, month0 % 12 + 1
        day = min(start.day, calendar.monthrange(year, month)[1])
        return start.replace(year=year, month=month, day=day)
    return start + timedelta(**{unit: count})


def _parse_cron_field(name: str, expr: str) -> frozenset[int]:
    low, high = _RANGES[name]
    values: set[int] = set()
    for part in expr.lower().replace(" ", "").split(","):
        if not part:
            raise ScheduleError(f"bad schedule_{name} {expr!r}")
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) < 1:
                raise ScheduleError(f"bad step in schedule_{name} {expr!r}")
            step = int(step_text)
        if part == "*":
            first, last = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            first, last = _cron_value(name, a, expr), _cron_value(name, b, expr)
        else:
            first = _cron_value(name, part, expr)
            # "5/10" means from 5 to the end of the range in steps of 10 (APScheduler).
            last = high if step > 1 else first
        if not (low <= first <= last <= high):
            raise ScheduleError(f"schedule_{name} {expr!r} is outside {low}..{high}")
        values.update(range(first, last + 1, step))
    return frozenset(values)


def _cron_value(name: str, text: str, expr: str) -> int:
    if name == "day_of_week" and text in _DAY_NAMES:
        return _DAY_NAMES[text]
    if not text.isdigit():
        raise ScheduleError(f"bad schedule_{name} {expr!r}")
    return int(text)


class Cron:
    """A parsed set of cron-like ``schedule_*`` fields."""

    def __init__(self, fields: Mapping[str, str]) -> None:
        given = [name for name in CRON_FIELDS if str(fields.get(name) or "").strip()]
        if not given:
            raise ScheduleError("no cron field given")
        finest = max(CRON_FIELDS.index(name) for name in given)
        self.sets: dict[str, frozenset[int]] = {}
        for index, name in enumerate(CRON_FIELDS):
            expr = str(fields.get(name) or "").strip()
            if not expr:
                # APScheduler: finer than the finest given field -> its minimum, else "*";
                # week and day_of_week never constrain unless given.
                if index > finest and name not in ("week", "day_of_week"):
                    expr = str(_RANGES[name][0])
                else:
                    expr = "*"
            self.sets[name] = _parse_cron_field(name, expr)

    def _day_ok(self, day: datetime) -> bool:
        s = self.sets
        return (
            day.year in s["year"]
            and day.month in s["month"]
            and day.day in s["day"]
            and day.isocalendar()[1] in s["week"]
            and day.weekday() in s["day_of_week"]
        )

    def next_after(self, after: datetime) -> datetime | None:
        """The first matching instant strictly after ``after`` (UTC), or None."""
        after = after.astimezone(_UTC).replace(microsecond=0)
        day = after.replace(hour=0, minute=0, second=0)
        hours, minutes, seconds = (sorted(self.sets[k]) for k in ("hour", "minute", "second"))
        for _ in range(_CRON_HORIZON_DAYS):
            if self._day_ok(day):
                for h in hours:
                    if day.date() == after.date() and h < after.hour:
                        continue
                    for m in minutes:
                        for s in seconds:
                            candidate = day.replace(hour=h, minute=m, second=s)
                            if candidate > after:
                                return candidate
            day += timedelta(days=1)
        return None


def cron_fields(schedule: Mapping[str, Any]) -> dict[str, str]:
    return {
        name: str(schedule.get(f"schedule_{name}") or "")
        for name in CRON_FIELDS
        if str(schedule.get(f"schedule_{name}") or "").strip()
    }


def is_recurring(schedule: Mapping[str, Any]) -> bool:
    """Whether the job runs again after a run (interval or cron), rather than once."""
    return bool(str(schedule.get("schedule_interval") or "").strip() or cron_fields(schedule))


def _epoch(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return datetime.fromtimestamp(value, tz=_UTC)
    return None


def next_run(schedule: Mapping[str, Any], now: datetime) -> datetime | None:
    """When the job should next start, from its schedule and ``time_started``/``time_ended``
    (epoch seconds, -1 = never); ``None`` = never again.  A past instant means "due now"."""
    start = parse_date(schedule.get("schedule_start_date"))
    end = parse_date(schedule.get("schedule_end_date"))
    last_start = _epoch(schedule.get("time_started"))
    last_end = _epoch(schedule.get("time_ended"))
    created = _epoch(schedule.get("time_created"))
    interval_text = str(schedule.get("schedule_interval") or "")
    interval = parse_interval(interval_text)
    cron = cron_fields(schedule)
    when: datetime | None
    if interval is not None:
        count, unit = interval
        if last_start is None:
            when = start or now
        elif unit == "continuous":
            # Right after the previous run ended (or now, if its end was never recorded).
            when = last_end or now
        else:
            when = add_interval(last_start, count, unit)
        if start is not None and when < start:
            when = start
    elif cron:
        base = last_start or (created - timedelta(seconds=1) if created else now)
        if start is not None and base < start:
            base = start - timedelta(seconds=1)
        when = Cron(cron).next_after(base)
    else:
        date = parse_date(schedule.get("schedule_date"))
        if date is not None:
            when = date if last_start is None or last_start < date else None
        else:
            # No schedule at all: one run, at once (freezer-scheduler does the same).
            when = (start or now) if last_start is None else None
    if when is not None and end is not None and when > end:
        return None
    return when


def validate(schedule: Mapping[str, Any]) -> None:
    """Raise :class:`ScheduleError` for a schedule the agent cannot follow."""
    parse_date(schedule.get("schedule_start_date"))
    parse_date(schedule.get("schedule_end_date"))
    parse_date(schedule.get("schedule_date"))
    parse_interval(str(schedule.get("schedule_interval") or ""))
    cron = cron_fields(schedule)
    if cron:
        Cron(cron)
