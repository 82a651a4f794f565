"""The working calendar (R-DIS-5): official holidays, 调休 working weekends, work hours, and
years the official calendar does not know yet."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from cityloop.kit.calendar import WorkingCalendar, traffic_light
from tests.conftest import TZ

CAL = WorkingCalendar()


def test_c_case_filed_on_2026_09_30_is_due_on_the_official_day():
    # By hand: 10-01..10-07 National Day holiday; Thu 10-08 (1), Fri 10-09 (2),
    # Sat 10-10 is a 调休 working day (3), Sun 10-11 rests, Mon 10-12 (4).
    filed = datetime(2026, 9, 30, 10, 0, tzinfo=TZ)
    assert CAL.add_working_days(filed, 4) == datetime(2026, 10, 12, 10, 0, tzinfo=TZ)


def test_urgency_a_from_the_seed_minute():
    assert CAL.add_working_days(datetime(2026, 8, 27, 16, 10, tzinfo=TZ), 1) == datetime(
        2026, 8, 28, 16, 10, tzinfo=TZ
    )


def test_work_hours_and_lunch():
    assert CAL.add_working_hours(datetime(2026, 9, 2, 11, 30, tzinfo=TZ), 1) == datetime(
        2026, 9, 2, 14, 30, tzinfo=TZ
    )
    # Reported in the evening: the clock starts next morning.
    assert CAL.add_working_hours(datetime(2026, 9, 2, 20, 0, tzinfo=TZ), 1) == datetime(
        2026, 9, 3, 9, 30, tzinfo=TZ
    )
    assert (
        CAL.working_minutes_between(
            datetime(2026, 9, 2, 11, 0, tzinfo=TZ), datetime(2026, 9, 2, 15, 0, tzinfo=TZ)
        )
        == 120
    )


def test_a_year_the_official_calendar_does_not_know_falls_back_and_obeys_overrides():
    friday = datetime(2027, 1, 1, 10, 0, tzinfo=TZ)
    assert CAL.add_working_days(friday, 1) == datetime(2027, 1, 4, 10, 0, tzinfo=TZ)
    with_holiday = WorkingCalendar(overrides={date(2027, 1, 1): False, date(2027, 1, 4): False})
    assert not with_holiday.is_workday(date(2027, 1, 1))
    assert with_holiday.add_working_days(datetime(2026, 12, 31, 10, 0, tzinfo=TZ), 1) == datetime(
        2027, 1, 5, 10, 0, tzinfo=TZ
    )


def test_an_override_makes_a_weekend_day_work():
    cal = WorkingCalendar(overrides={date(2026, 9, 5): True})
    assert cal.add_working_days(datetime(2026, 9, 4, 10, 0, tzinfo=TZ), 1) == datetime(
        2026, 9, 5, 10, 0, tzinfo=TZ
    )


def test_bad_calls_are_refused():
    with pytest.raises(ValueError, match="aware"):
        CAL.add_working_minutes(datetime(2026, 9, 1, 10, 0), 5)
    with pytest.raises(ValueError, match="negative"):
        CAL.add_working_minutes(datetime(2026, 9, 1, 10, 0, tzinfo=TZ), -5)


@pytest.mark.parametrize(
    ("elapsed", "light"),
    [(0, "green"), (79, "green"), (80, "yellow"), (100, "yellow"), (101, "red")],
)
def test_traffic_light(elapsed, light):
    assert traffic_light(elapsed, 100) == light


def test_deadlines_in_the_loop_follow_the_official_calendar_and_local_overrides(
    client, auth, clock, city_places
):
    from tests.cases.helpers import YINGCUI, Desk, point_in

    desk = Desk(client, auth)
    lon, lat = point_in(city_places, YINGCUI)

    spots = iter(range(10))

    def c_case_dispatched_at(moment):
        clock.set(moment)
        case_id = desk.report(
            "inspector",
            source="inspector",
            class_code="06036",
            urgency="C",
            lon=lon + 0.001 * next(spots),  # 100 m apart: not duplicates of each other
            lat=lat,
            description="乱堆杂物",
        )["id"]
        desk.act("operator", case_id, "file")
        return datetime.fromisoformat(desk.act("dispatcher", case_id, "dispatch")["due_at"])

    assert c_case_dispatched_at(datetime(2026, 9, 30, 10, 0, tzinfo=TZ)) == datetime(
        2026, 10, 12, 10, 0, tzinfo=TZ
    )
    # 2027 is beyond the official calendar: Mon–Fri, until the city declares its holidays.
    assert c_case_dispatched_at(datetime(2026, 12, 31, 10, 0, tzinfo=TZ)) == datetime(
        2027, 1, 6, 10, 0, tzinfo=TZ
    )
    denied = client.put(
        "/api/v1/calendar/overrides/2027-01-01",
        json={"is_workday": False},
        headers=auth("dispatcher"),
    )
    assert denied.status_code == 403
    ok = client.put(
        "/api/v1/calendar/overrides/2027-01-01",
        json={"is_workday": False, "note": "元旦"},
        headers=auth("admin"),
    )
    assert ok.status_code == 200
    assert c_case_dispatched_at(datetime(2026, 12, 31, 10, 0, tzinfo=TZ)) == datetime(
        2027, 1, 7, 10, 0, tzinfo=TZ
    )
    bad = client.put(
        "/api/v1/calendar/overrides/2027-02-30", json={"is_workday": False}, headers=auth("admin")
    )
    assert bad.status_code == 422 and bad.json()["field"] == "day"


def test_working_minutes_between_undoes_add_working_minutes_over_long_spans():
    """A clock weeks long (a suspended or overdue case on the big screen) is measured with the
    same calendar that set its deadline: holidays, 调休 weekends and overrides included."""
    import random

    calendar = WorkingCalendar(overrides={date(2026, 10, 10): False, date(2026, 11, 7): True})
    rng = random.Random(47678)
    start = datetime(2026, 9, 1, 0, 0, tzinfo=TZ)
    for _ in range(300):
        a = start + timedelta(minutes=rng.randrange(0, 120 * 24 * 60))
        minutes = rng.choice([1, 59, 210, 420, 421, 5 * 420, 40 * 420]) + rng.random()
        b = calendar.add_working_minutes(a, minutes)
        assert abs(calendar.working_minutes_between(a, b) - minutes) < 1e-6, (a, minutes)
        assert abs(calendar.working_minutes_between(b, a) + minutes) < 1e-6
