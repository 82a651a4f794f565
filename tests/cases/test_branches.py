"""The loop's branches: postponement (R-HD-2), proxy (R-HD-3), check fails → rework (R-CL-2),
return visit (R-CL-4), verification (R-AC-2), merge, suspend/resume, coordination and hearing
(R-DIS-2, R-CL-3), sending an incomplete result back (R-CL-1)."""

from __future__ import annotations

from datetime import datetime

from tests.cases.helpers import YINGCUI, Desk, department_id, point_in
from tests.conftest import TZ


def _dispatched(desk, clock, city_session, places, class_code="06010", urgency="B"):
    lon, lat = point_in(places, YINGCUI)
    clock.set(datetime(2026, 9, 7, 9, 0, tzinfo=TZ))  # a Monday
    case_id = desk.report(
        "inspector",
        source="inspector",
        class_code=class_code,
        urgency=urgency,
        lon=lon,
        lat=lat,
        description="暴露垃圾",
    )["id"]
    desk.act("operator", case_id, "file")
    desk.act(
        "dispatcher", case_id, "dispatch", department_id=department_id(city_session, "D-350203")
    )
    return case_id


def _resolve(desk, case_id, handler="handler"):
    desk.act(handler, case_id, "submit_result", result="已清理", method="service", photos=["a.jpg"])
    desk.act("dispatcher", case_id, "approve_result")


def test_postponement_approved_moves_the_deadline_refused_keeps_it(
    client, auth, clock, city_session, city_places
):
    desk = Desk(client, auth)
    case_id = _dispatched(desk, clock, city_session, city_places)
    due = datetime.fromisoformat(desk.case("handler", case_id)["due_at"])
    assert due == datetime(2026, 9, 9, 9, 0, tzinfo=TZ)  # B: two working days

    desk.act("handler", case_id, "request_postpone", days=2, reason="需协调物业和施工方")
    assert desk.actions("handler", case_id).count("request_postpone") == 0  # one at a time
    approved = desk.act("dispatcher", case_id, "approve_postpone")
    assert datetime.fromisoformat(approved["due_at"]) == datetime(2026, 9, 11, 9, 0, tzinfo=TZ)
    assert approved["postpone_request"] is None

    desk.act("handler", case_id, "request_postpone", days=3, reason="材料未到")
    refused = desk.act("dispatcher", case_id, "refuse_postpone", reason="理由不充分")
    assert datetime.fromisoformat(refused["due_at"]) == datetime(2026, 9, 11, 9, 0, tzinfo=TZ)
    assert [e["action"] for e in refused["timeline"]][-4:] == [
        "request_postpone",
        "approve_postpone",
        "request_postpone",
        "refuse_postpone",
    ]


def test_failed_check_goes_to_rework_then_passes_and_closes(
    client, auth, clock, city_session, city_places
):
    desk = Desk(client, auth)
    case_id = _dispatched(desk, clock, city_session, city_places)
    _resolve(desk, case_id)
    clock.set(datetime(2026, 9, 7, 15, 0, tzinfo=TZ))
    desk.act("inspector", case_id, "report_check", passed=False, photos=["still-dirty.jpg"])
    refused = client.post(
        f"/api/v1/cases/{case_id}/actions/close", json={}, headers=auth("operator")
    )
    assert refused.status_code == 409 and "rework" in refused.json()["detail"]

    reworked = desk.act("operator", case_id, "rework", reason="现场仍有垃圾残留")
    assert reworked["state"] == "dispatched" and reworked["rework_count"] == 1
    assert reworked["department"] == "思明区城市管理办公室"
    assert datetime.fromisoformat(reworked["due_at"]) == datetime(2026, 9, 9, 15, 0, tzinfo=TZ)
    _resolve(desk, case_id)
    desk.act("inspector", case_id, "report_check", passed=True, photos=["clean.jpg"])
    assert desk.act("operator", case_id, "close")["state"] == "closed"


def test_unsatisfied_return_visit_reopens_satisfied_archives(
    client, auth, clock, city_session, city_places
):
    desk = Desk(client, auth)
    case_id = _dispatched(desk, clock, city_session, city_places)
    for _ in range(2):
        _resolve(desk, case_id)
        desk.act("inspector", case_id, "report_check", passed=True, photos=["ok.jpg"])
        desk.act("operator", case_id, "close")
        if desk.case("operator", case_id)["satisfied"] is None:
            reopened = desk.act("operator", case_id, "return_visit", satisfied=False)
            assert reopened["state"] == "dispatched"
            assert reopened["closed_at"] is None and reopened["satisfied"] is False
    archived = desk.act("operator", case_id, "return_visit", satisfied=True)
    assert archived["state"] == "archived"


def test_public_report_is_verified_before_filing_and_duplicates_merge(
    client, auth, clock, city_places
):
    desk = Desk(client, auth)
    lon, lat = point_in(city_places, YINGCUI)
    first = desk.report(
        None, source="wechat", class_code="06042", lon=lon, lat=lat, description="垃圾箱满溢"
    )
    assert desk.actions("operator", first["id"]) == ["send_to_verify", "file", "reject", "merge"]
    desk.act("operator", first["id"], "send_to_verify")
    # The inspector of 嘉莲街道 verifies; the inspector of another street may not.
    outsider = client.post(
        f"/api/v1/cases/{first['id']}/actions/verify",
        json={"confirmed": True},
        headers=auth("inspector_huli"),
    )
    assert outsider.status_code == 404
    verified = desk.act("inspector", first["id"], "verify", confirmed=True, photos=["v.jpg"])
    assert verified["state"] == "pending_filing"

    # The same bin reported again 20 m away: attached to the open case, reporter told its ticket.
    clock.advance(minutes=30)
    second = desk.report(
        None,
        source="web",
        class_code="06042",
        lon=lon + 0.0002,
        lat=lat,
        description="垃圾桶满了",
        reporter_phone="13900000002",
    )
    assert second["state"] == "merged"
    assert second["duplicate_of"] == first["ticket"]
    tracked = client.get(f"/api/v1/tickets/{second['ticket']}").json()
    assert tracked["merged_into_ticket"] == first["ticket"]
    assert tracked["state_label"] == "待立案"  # the progress of the case it joined
    target = desk.case("operator", first["id"])
    assert target["timeline"][-1]["action"] == "duplicate_report"
    assert target["timeline"][-1]["payload"]["ticket"] == second["ticket"]

    # An operator who sees it is another bin undoes the merge, and can merge by hand.
    undone = desk.act("operator", second["id"], "unmerge")
    assert undone["state"] == "reported" and undone["merged_into_id"] is None
    merged = desk.act("operator", second["id"], "merge", into_case_id=first["id"])
    assert merged["state"] == "merged" and merged["merged_into_id"] == first["id"]

    # Further than 50 m, or another class, is a new case.
    far = desk.report(
        None,
        source="web",
        class_code="06042",
        lon=lon + 0.001,
        lat=lat,
        description="另一个垃圾箱满溢",
    )
    other = desk.report(
        None, source="web", class_code="06010", lon=lon, lat=lat, description="暴露垃圾"
    )
    assert far["state"] == other["state"] == "reported"


def test_suspend_resume_keeps_the_remaining_time(client, auth, clock, city_session, city_places):
    desk = Desk(client, auth)
    case_id = _dispatched(desk, clock, city_session, city_places)  # due Wed 09-09 09:00
    clock.set(datetime(2026, 9, 8, 9, 0, tzinfo=TZ))  # one working day left
    desk.act("dispatcher", case_id, "suspend", reason="历史遗留问题，挂账统筹")
    assert desk.case("dispatcher", case_id)["deadlines"] == []  # the clock stops while 挂账
    clock.set(datetime(2026, 9, 14, 9, 0, tzinfo=TZ))
    resumed = desk.act("dispatcher", case_id, "resume")
    assert resumed["state"] == "dispatched"
    assert datetime.fromisoformat(resumed["due_at"]) == datetime(2026, 9, 15, 9, 0, tzinfo=TZ)


def test_proxy_coordination_hearing_and_send_back(client, auth, clock, city_session, city_places):
    desk = Desk(client, auth)
    case_id = _dispatched(desk, clock, city_session, city_places)
    proxy = desk.act(
        "dispatcher",
        case_id,
        "assign_proxy",
        department_id=department_id(city_session, "XM-HW"),
        reason="产权单位无力处置",
    )
    assert proxy["department"] == "厦门市环境卫生中心"
    desk.act(
        "handler_sanitation",
        case_id,
        "submit_result",
        result="清了一半",
        method="service",
        photos=["half.jpg"],
    )
    back = desk.act("dispatcher", case_id, "send_back", reason="处置不彻底，请补充照片")
    assert back["state"] == "dispatched"
    hearing = desk.act("shiftlead", case_id, "refer_hearing", note="涉及多个权属单位，提请协调听证")
    assert hearing["state"] == "coordinating"
    again = desk.act(
        "dispatcher", case_id, "dispatch", department_id=department_id(city_session, "D-350203")
    )
    assert again["state"] == "dispatched"
