"""Seed 002: Xiamen, 2026-08-27. A grid worker of 嘉莲街道 finds sewage overflowing outside a
billiard hall at 16:05 and reports it, urgency A (1 working day). At 16:10 the command centre
has filed it and dispatched it to 思明区城管办, which passes it down to 嘉莲街道办 and on to
盈翠社区 (R-DIS-4). It is handled, checked on site and closed (R-HD-1, R-CL-2)."""

from __future__ import annotations

from datetime import datetime

from tests.cases.helpers import YINGCUI, Desk, department_id, point_in
from tests.conftest import TZ


def test_sewage_overflow_travels_the_whole_loop(client, auth, clock, city_session, city_places):
    desk = Desk(client, auth)
    lon, lat = point_in(city_places, YINGCUI)

    created = desk.report(
        "inspector",
        source="inspector",
        class_code="21004",
        urgency="A",
        lon=lon,
        lat=lat,
        description="明发商业广场台球馆外污水横溢，污染路面",
        address="明发商业广场",
    )
    assert created["state"] == "pending_filing"  # an inspector's own report needs no verification
    case_id = created["id"]

    clock.set(datetime(2026, 8, 27, 16, 8, tzinfo=TZ))
    desk.act("operator", case_id, "file")
    clock.set(datetime(2026, 8, 27, 16, 10, tzinfo=TZ))
    siming = department_id(city_session, "D-350203")
    dispatched = desk.act("dispatcher", case_id, "dispatch", department_id=siming)
    assert dispatched["state"] == "dispatched"
    assert dispatched["department"] == "思明区城市管理办公室"
    # Urgency A: one working day from 16:10 on Thursday is 16:10 on Friday.
    assert datetime.fromisoformat(dispatched["due_at"]) == datetime(2026, 8, 28, 16, 10, tzinfo=TZ)
    assert (
        dispatched["district_name"],
        dispatched["street_name"],
        dispatched["community_name"],
    ) == ("思明区", "嘉莲街道", "盈翠社区")

    clock.set(datetime(2026, 8, 27, 16, 20, tzinfo=TZ))
    jialian = department_id(city_session, "D-350203011")
    desk.act("handler", case_id, "pass_down", department_id=jialian)
    clock.set(datetime(2026, 8, 27, 16, 30, tzinfo=TZ))
    yingcui = department_id(city_session, "D-350203011003")
    passed = desk.act("handler_jialian", case_id, "pass_down", department_id=yingcui)
    assert passed["department"] == "盈翠社区居委会"
    # Passing down keeps the deadline the centre set.
    assert datetime.fromisoformat(passed["due_at"]) == datetime(2026, 8, 28, 16, 10, tzinfo=TZ)
    # The district office no longer holds it: it cannot submit a result for the community.
    assert "submit_result" not in desk.actions("handler", case_id)

    clock.set(datetime(2026, 8, 28, 11, 0, tzinfo=TZ))
    desk.act(
        "handler_yingcui",
        case_id,
        "submit_result",
        result="物业已疏通管道，路面冲洗干净",
        method="management",
        photos=["after/yingcui-1.jpg"],
    )
    desk.act("dispatcher", case_id, "approve_result")
    clock.set(datetime(2026, 8, 28, 11, 40, tzinfo=TZ))
    desk.act("inspector", case_id, "report_check", passed=True, photos=["check/yingcui-1.jpg"])
    clock.set(datetime(2026, 8, 28, 11, 50, tzinfo=TZ))
    closed = desk.act("operator", case_id, "close")

    assert closed["state"] == "closed"
    actions = [e["action"] for e in closed["timeline"]]
    assert actions == [
        "report",
        "file",
        "dispatch",
        "pass_down",
        "pass_down",
        "submit_result",
        "approve_result",
        "report_check",
        "close",
    ]
    close_event = closed["timeline"][-1]
    assert close_event["payload"]["on_time"] is True
    departments = [
        e["payload"].get("department_name")
        for e in closed["timeline"]
        if e["action"] in ("dispatch", "pass_down")
    ]
    assert departments == ["思明区城市管理办公室", "嘉莲街道办事处", "盈翠社区居委会"]
    assert closed["result_method"] == "management"


def test_the_public_ticket_shows_progress_without_personal_data(client, auth, city_places):
    desk = Desk(client, auth)
    lon, lat = point_in(city_places, YINGCUI)
    created = desk.report(
        None,
        source="public",
        class_code="06010",
        lon=lon,
        lat=lat,
        description="小区门口暴露垃圾",
        reporter_name="陈女士",
        reporter_phone="13912345678",
    )
    assert created["state"] == "reported"
    response = client.get(f"/api/v1/tickets/{created['ticket']}")
    assert response.status_code == 200
    body = response.text
    assert "13912345678" not in body and "陈女士" not in body
    assert response.json()["state_label"] == "上报"
    assert response.json()["street_name"] == "嘉莲街道"
    assert client.get("/api/v1/tickets/NOSUCHTICKET").status_code == 404
