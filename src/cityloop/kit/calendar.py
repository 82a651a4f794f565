"""The working calendar: official holidays, 调休 working weekends, work hours, local overrides.

Every deadline in cityloop is computed here (R-DIS-5). Time limits are counted in working
minutes inside the city's work periods, so "1 working day" from 16:10 on a Thursday ends at
16:10 on the next working day, and a week-long holiday does not eat a deadline.
`chinese_calendar` knows 2004–2026; for other years the calendar falls back to Monday–Friday
plus the editable override table, and never crashes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar

DEFAULT_WORK_PERIODS: tuple[tuple[time, time], ...] = (
    (time(8, 30), time(12, 0)),
    (time(14, 0), time(17, 30)),
)


def _official_workday(day: date) -> bool | None:
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return None


@dataclass
class WorkingCalendar:
    timezone: str = "Asia/Shanghai"
    work_periods: Sequence[tuple[time, time]] = DEFAULT_WORK_PERIODS
    overrides: Mapping[date, bool] = field(default_factory=dict)
    # The limit of each stage clock in working minutes (accept, verify, file, …), when known.
    stage_minutes: Mapping[str, int] = field(default_factory=dict)
    # The answers of is_workday so far: a clock weeks long asks about every day it spans.
    _workdays: dict[date, bool] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.tz = ZoneInfo(self.timezone)
        periods = sorted(self.work_periods)
        for start, end in periods:
            if end <= start:
                raise ValueError(f"work period {start}–{end} ends before it starts")
        self.work_periods = tuple(periods)
        self.minutes_per_day = sum(
            _minutes(end) - _minutes(start) for start, end in self.work_periods
        )

    # -- days -----------------------------------------------------------------------------
    def is_workday(self, day: date) -> bool:
        known = self._workdays.get(day)
        if known is None:
            known = self._workdays[day] = self._is_workday(day)
        return known

    def _is_workday(self, day: date) -> bool:
        if day in self.overrides:
            return self.overrides[day]
        official = _official_workday(day)
        if official is not None:
            return official
        return day.weekday() < 5

    def knows_officially(self, day: date) -> bool:
        return _official_workday(day) is not None or day in self.overrides

    def next_workday(self, day: date) -> date:
        day = day + timedelta(days=1)
        for _ in range(3660):
            if self.is_workday(day):
                return day
            day += timedelta(days=1)
        raise ValueError("no working day within ten years: check the calendar overrides")

    # -- working time arithmetic ----------------------------------------------------------
    def _periods_on(self, day: date) -> list[tuple[datetime, datetime]]:
        if not self.is_workday(day):
            return []
        return [
            (datetime.combine(day, s, self.tz), datetime.combine(day, e, self.tz))
            for s, e in self.work_periods
        ]

    def add_working_minutes(self, start: datetime, minutes: float) -> datetime:
        if start.tzinfo is None:
            raise ValueError("add_working_minutes needs an aware datetime")
        if minutes < 0:
            raise ValueError("cannot add a negative working time")
        local = start.astimezone(self.tz)
        remaining = timedelta(minutes=minutes)
        day = local.date()
        cursor = local
        for _ in range(3660):
            for p_start, p_end in self._periods_on(day):
                if cursor >= p_end:
                    continue
                begin = max(cursor, p_start)
                available = p_end - begin
                if remaining <= available:
                    return (begin + remaining).astimezone(start.tzinfo)
                remaining -= available
                cursor = p_end
            day += timedelta(days=1)
            cursor = datetime.combine(day, time(0, 0), self.tz)
        raise ValueError("deadline beyond ten years: check the calendar overrides")

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        return self.add_working_minutes(start, hours * 60)

    def add_working_days(self, start: datetime, days: float) -> datetime:
        return self.add_working_minutes(start, days * self.minutes_per_day)

    def working_minutes_between(self, a: datetime, b: datetime) -> float:
        """Working minutes from a to b (negative when b is before a)."""
        if b < a:
            return -self.working_minutes_between(b, a)
        a_local, b_local = a.astimezone(self.tz), b.astimezone(self.tz)
        first, last = a_local.date(), b_local.date()
        total = self._minutes_on(first, a_local, b_local)
        if last > first:
            total += self._minutes_on(last, a_local, b_local)
        # The days in between are whole: only whether each is a working day matters.
        day = first + timedelta(days=1)
        while day < last:
            if self.is_workday(day):
                total += self.minutes_per_day
            day += timedelta(days=1)
        return total

    def _minutes_on(self, day: date, a_local: datetime, b_local: datetime) -> float:
        total = 0.0
        for p_start, p_end in self._periods_on(day):
            lo, hi = max(p_start, a_local), min(p_end, b_local)
            if hi > lo:
                total += (hi - lo).total_seconds() / 60
        return total


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


LIGHT_GREEN, LIGHT_YELLOW, LIGHT_RED = "green", "yellow", "red"


def traffic_light(elapsed_minutes: float, limit_minutes: float) -> str:
    """Green below 80 % of the limit, yellow up to 100 %, red beyond (R-HD-4)."""
    if limit_minutes <= 0:
        return LIGHT_RED if elapsed_minutes > 0 else LIGHT_GREEN
    ratio = elapsed_minutes / limit_minutes
    if ratio > 1.0:
        return LIGHT_RED
    if ratio >= 0.8:
        return LIGHT_YELLOW
    return LIGHT_GREEN
