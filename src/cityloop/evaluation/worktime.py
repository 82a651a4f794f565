"""Working-time arithmetic for many events at once, exactly as `kit.calendar` counts it.

`WorkingCalendar.working_minutes_between` walks day by day, which is right but slow when a
rollup derives millions of stage durations. `WorkTime` numbers every working microsecond from
an anchor day (cumulative per day, cached), so a duration is a subtraction and a deadline is a
binary search. Tests hold it equal to the calendar on holidays, 调休 weekends and lunch breaks.
"""

from __future__ import annotations

import bisect
from datetime import date, datetime, time, timedelta

from cityloop.kit.calendar import WorkingCalendar

_US_PER_MINUTE = 60_000_000


def _us(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class WorkTime:
    def __init__(self, calendar: WorkingCalendar, anchor: date = date(2015, 1, 1)) -> None:
        self.calendar = calendar
        self.tz = calendar.tz
        self._periods: tuple[tuple[time, time], ...] = tuple(calendar.work_periods)
        self._period_us = [
            _us(datetime.combine(anchor, e) - datetime.combine(anchor, s)) for s, e in self._periods
        ]
        self._day_us = sum(self._period_us)
        # Work periods as microseconds since midnight.
        self._bounds = [
            (
                _us(datetime.combine(anchor, s) - datetime.combine(anchor, time(0))),
                _us(datetime.combine(anchor, e) - datetime.combine(anchor, time(0))),
            )
            for s, e in self._periods
        ]
        self._anchor = anchor
        # _cum[i]: working microseconds from the anchor to the start of anchor + i days.
        self._cum: list[int] = [0]
        self._workday: list[bool] = []

    # -- the day table ----------------------------------------------------------------------
    def _extend_to(self, index: int) -> None:
        if index < 0:
            self._rebase(index)
            return
        while len(self._workday) <= index:
            day = self._anchor + timedelta(days=len(self._workday))
            works = self.calendar.is_workday(day)
            self._workday.append(works)
            self._cum.append(self._cum[-1] + (self._day_us if works else 0))

    def _rebase(self, index: int) -> None:
        """Move the anchor back far enough to cover a day before it."""
        shift = -index + 366
        self._anchor -= timedelta(days=shift)
        old = len(self._workday)
        self._cum, self._workday = [0], []
        self._extend_to(old + shift)

    def _index(self, day: date) -> int:
        index = (day - self._anchor).days
        if index < 0:
            self._rebase(index)
            index = (day - self._anchor).days
        self._extend_to(index)
        return index

    # -- public -----------------------------------------------------------------------------
    def position(self, at: datetime) -> int:
        """Working microseconds from the anchor to `at`."""
        local = at.astimezone(self.tz)
        index = self._index(local.date())
        total = self._cum[index]
        if not self._workday[index]:
            return total
        clock = ((local.hour * 60 + local.minute) * 60 + local.second) * 1_000_000 + (
            local.microsecond
        )
        for start, end in self._bounds:
            if clock >= end:
                total += end - start
            else:
                if clock > start:
                    total += clock - start
                break
        return total

    def minutes_between(self, a: datetime, b: datetime) -> float:
        """Working minutes from a to b; equals `WorkingCalendar.working_minutes_between`."""
        return (self.position(b) - self.position(a)) / _US_PER_MINUTE

    def deadline(self, start: datetime, minutes: float) -> datetime:
        """`start` plus `minutes` (> 0) working minutes; equals `add_working_minutes`."""
        if minutes <= 0:
            return self.calendar.add_working_minutes(start, minutes)
        target = self.position(start) + round(minutes * _US_PER_MINUTE)
        index = (start.astimezone(self.tz).date() - self._anchor).days
        while self._cum[-1] < target:
            self._extend_to(len(self._workday) + 366)
        # The day whose working time contains the target: the last day starting before it.
        day_index = bisect.bisect_left(self._cum, target, lo=max(index, 0)) - 1
        remaining = target - self._cum[day_index]
        day = self._anchor + timedelta(days=day_index)
        for (begin, _end), length in zip(self._periods, self._period_us, strict=True):
            if remaining <= length:
                moment = datetime.combine(day, begin, self.tz) + timedelta(microseconds=remaining)
                return moment.astimezone(start.tzinfo)
            remaining -= length
        raise AssertionError("working time table is inconsistent")  # pragma: no cover
