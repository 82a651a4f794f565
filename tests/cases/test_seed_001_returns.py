"""Seed 001: a department that thinks a case is not its own may return it within 1 hour of
receiving it, and the centre re-dispatches; leader-assigned cases cannot be returned (R-DIS-3).
The hour is a working hour: the lunch break does not count."""

from __future__ import annotations

from datetime import datetime

from tests.cases.helpers import YINGCUI, Desk, department_id, point_in
from tests.conftest import TZ


def _dispatched_case(
    desk, clock, city_session, places, *, at, source="inspector", user="inspector"
):
    lon, lat = point_in(places, YINGCUI)
    clock.set(at)
    created = desk.report(
        user, source=source, class_code="06036", lon=lon, lat=lat, description="人行道乱堆杂物"
    )
    if created["state"] != "filed":
        desk.act("operator", created["id"], "file")
    desk.act(
        "dispatcher",
        created["id"],
        "dispatch",
        department_id=department_id(city_session, "D-350203"),
    )
    return created["id"]


def test_return_within_the_hour_then_redispatch(client, auth, clock, city_session, city_places):
    desk = Desk(client, auth)
    case_id = _dispatched_case(
        desk, clock, city_session, city_places, at=datetime(2026, 9, 2, 10, 0, tzinfo=TZ)
    )
    clock.set(datetime(2026, 9, 2, 10, 40, tzinfo=TZ))
    assert "return" in desk.actions("handler", case_id)
    returned = desk.act("handler", case_id, "return", reason="属物业管理区域，非本单位职责")
    assert returned["state"] == "returned"
    assert returned["department_id"] is None
    # Back at the centre: the dispatcher sends it to the right unit.
    sanitation = department_id(city_session, "XM-HW")
    again = desk.act("dispatcher", case_id, "dispatch", department_id=sanitation)
    assert again["state"] == "dispatched"
    assert again["department"] == "厦门市环境卫生中心"
    assert [e["action"] for e in again["timeline"]][-3:] == ["dispatch", "return", "dispatch"]


def test_return_after_the_hour_is_refused_with_the_reason(
    client, auth, clock, city_session, city_places
):
    desk = Desk(client, auth)
    case_id = _dispatched_case(
        desk, clock, city_session, city_places, at=datetime(2026, 9, 2, 9, 0, tzinfo=TZ)
    )
    clock.set(datetime(2026, 9, 2, 10, 30, tzinfo=TZ))
    assert "return" not in desk.actions("handler", case_id)
    before = desk.case("handler", case_id)
    refused = client.post(
        f"/api/v1/cases/{case_id}/actions/return",
        json={"reason": "不属于我单位"},
        headers=auth("handler"),
    )
    assert refused.status_code == 409
    assert "1个工作小时" in refused.json()["detail"]
    assert "90 working minutes" in refused.json()["detail"]
    after = desk.case("handler", case_id)
    assert after["state"] == "dispatched" and after["version"] == before["version"]
    assert len(after["timeline"]) == len(before["timeline"])


def test_the_lunch_break_does_not_count_towards_the_hour(
    client, auth, clock, city_session, city_places
):
    desk = Desk(client, auth)
    case_id = _dispatched_case(
        desk, clock, city_session, city_places, at=datetime(2026, 9, 2, 11, 40, tzinfo=TZ)
    )
    clock.set(datetime(2026, 9, 2, 14, 30, tzinfo=TZ))  # 20 + 30 working minutes
    assert desk.act("handler", case_id, "return", reason="非本单位职责")["state"] == "returned"


def test_a_leader_assigned_case_cannot_be_returned(client, auth, clock, city_session, city_places):
    desk = Desk(client, auth)
    case_id = _dispatched_case(
        desk,
        clock,
        city_session,
        city_places,
        source="leader",
        user="leader",
        at=datetime(2026, 9, 2, 10, 0, tzinfo=TZ),
    )
    detail = desk.case("handler", case_id)
    assert detail["leader_assigned"] is True
    assert detail["timeline"][0]["to_state"] == "filed"  # leaders' cases are filed at once
    clock.set(datetime(2026, 9, 2, 10, 5, tzinfo=TZ))
    refused = client.post(
        f"/api/v1/cases/{case_id}/actions/return",
        json={"reason": "不属于我单位"},
        headers=auth("handler"),
    )
    assert refused.status_code == 409
    assert "leader-assigned" in refused.json()["detail"]
