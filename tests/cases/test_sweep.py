"""The clock sweep (R-HD-4): a warning at 80 % of a stage's limit, an overdue mark past it,
each once per stage."""

from __future__ import annotations

from datetime import datetime

from cityloop.supervision.sweep import sweep
from cityloop.taxonomy.service import working_calendar
from tests.cases.helpers import YINGCUI, Desk, point_in
from tests.conftest import TZ


def test_stage_clock_warns_then_marks_overdue_once(client, auth, clock, city_session, city_places):
    desk = Desk(client, auth)
    lon, lat = point_in(city_places, YINGCUI)
    clock.set(datetime(2026, 9, 2, 9, 0, tzinfo=TZ))
    case_id = desk.report(
        None, source="public", class_code="06010", lon=lon, lat=lat, description="暴露垃圾"
    )["id"]  # accept clock: 30 working minutes
    calendar = working_calendar(city_session)
    assert (
        sweep(city_session, now=datetime(2026, 9, 2, 9, 20, tzinfo=TZ), calendar=calendar).warnings
        == 0
    )
    assert (
        sweep(city_session, now=datetime(2026, 9, 2, 9, 25, tzinfo=TZ), calendar=calendar).warnings
        == 1
    )
    assert (
        sweep(city_session, now=datetime(2026, 9, 2, 9, 26, tzinfo=TZ), calendar=calendar).warnings
        == 0
    )
    late = sweep(city_session, now=datetime(2026, 9, 2, 9, 31, tzinfo=TZ), calendar=calendar)
    assert late.overdue == 1 and late.urged == 0  # nothing to urge before dispatch
    city_session.commit()
    clock.set(datetime(2026, 9, 2, 9, 40, tzinfo=TZ))
    detail = desk.case("operator", case_id)
    assert [e["action"] for e in detail["timeline"]] == ["report", "clock_warning", "clock_overdue"]
    assert detail["deadlines"][0]["light"] == "red"
    # Moving on restarts the clock: the new stage is green again.
    moved = desk.act("operator", case_id, "send_to_verify")
    assert moved["deadlines"][0]["stage"] == "verify" and moved["deadlines"][0]["light"] == "green"
