"""WorkTime counts working time exactly as the working calendar does (R-DIS-5): on holidays,
调休 weekends, lunch breaks, across years, before its anchor. Pure: no database."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from cityloop.evaluation.worktime import WorkTime
from cityloop.kit.calendar import WorkingCalendar

TZ = ZoneInfo("Asia/Shanghai")


def test_equal_to_the_calendar_on_random_instants():
    calendar = WorkingCalendar(overrides={date(2026, 10, 9): False, date(2027, 1, 2): True})
    work = WorkTime(calendar)
    rng = random.Random(7)
    base = datetime(2026, 9, 20, tzinfo=TZ)
    for _ in range(400):
        a = base + timedelta(minutes=rng.randrange(0, 60 * 24 * 130))
        b = a + timedelta(minutes=rng.randrange(0, 60 * 24 * 20))
        assert abs(work.minutes_between(a, b) - calendar.working_minutes_between(a, b)) < 1e-6
        limit = rng.choice([1, 30, 60, 420, 840, 1680, rng.uniform(1, 3000)])
        assert work.deadline(a, limit) == calendar.add_working_minutes(a, limit)


def test_a_verification_over_the_national_day_holiday():
    work = WorkTime(WorkingCalendar())
    sent = datetime(2026, 9, 30, 17, 10, tzinfo=TZ)
    assert work.deadline(sent, 60) == datetime(2026, 10, 8, 9, 10, tzinfo=TZ)
    assert work.minutes_between(sent, datetime(2026, 10, 8, 8, 50, tzinfo=TZ)) == 40


def test_before_the_anchor_and_in_unknown_years():
    calendar = WorkingCalendar()
    work = WorkTime(calendar, anchor=date(2026, 1, 1))
    old = datetime(2012, 5, 2, 9, tzinfo=TZ)
    assert work.deadline(old, 500) == calendar.add_working_minutes(old, 500)
    future = datetime(2030, 12, 31, 16, tzinfo=TZ)  # beyond chinese_calendar: Mon–Fri
    assert work.deadline(future, 420) == calendar.add_working_minutes(future, 420)
