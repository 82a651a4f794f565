"""Seed 000: on 2018-06-13 a citizen calls the 12345 hotline: the flat at 厦禾路1108号 has been
split into several ("一套改多套"). The complaint is dispatched to 思明区, passed to the 梧村
squadron, which gives a first feedback the next day (evidence taken, enforcement filing under
way). The deadline passes: the clock sweep marks it overdue and urges; a leader supervises.
On 2018-11-30 the final result arrives with before/after photos; checked and closed, late
(R-HD-4, R-HD-1, R-CL-2)."""

from __future__ import annotations

from datetime import datetime

from cityloop.supervision.sweep import sweep
from cityloop.taxonomy.service import working_calendar
from tests.cases.helpers import WUCUN_STREET, Desk, department_id, first_community_of, point_in
from tests.conftest import TZ


def test_illegal_subdivision_is_followed_until_really_solved(
    client, auth, clock, city_session, city_places
):
    desk = Desk(client, auth)
    lon, lat = point_in(city_places, first_community_of(city_places, WUCUN_STREET))
    clock.set(datetime(2018, 6, 13, 9, 30, tzinfo=TZ))
    created = desk.report(
        "operator",
        source="hotline_12345",
        class_code="22002",
        lon=lon,
        lat=lat,
        address="厦禾路1108号",
        description="厦禾路1108号某室将房屋一套改多套，违规分隔出租",
        reporter_name="黄先生",
        reporter_phone="13800000001",
    )
    case_id = created["id"]
    desk.act("operator", case_id, "file")
    dispatched = desk.act(
        "dispatcher", case_id, "dispatch", department_id=department_id(city_session, "D-350203")
    )
    assert dispatched["urgency"] == "C"
    # C = 4 working days; 2018-06-18 was the Dragon Boat Festival holiday.
    assert datetime.fromisoformat(dispatched["due_at"]) == datetime(2018, 6, 20, 9, 30, tzinfo=TZ)
    clock.set(datetime(2018, 6, 13, 10, 0, tzinfo=TZ))
    desk.act(
        "handler", case_id, "pass_down", department_id=department_id(city_session, "D-350203008")
    )

    clock.set(datetime(2018, 6, 14, 15, 0, tzinfo=TZ))
    desk.act("handler_wucun", case_id, "feedback", note="梧村中队已调查取证完毕，正上报立案审批")

    calendar = working_calendar(city_session)
    clock.set(datetime(2018, 6, 20, 10, 0, tzinfo=TZ))
    result = sweep(city_session, now=clock.now(), calendar=calendar)
    city_session.commit()
    assert result.overdue >= 1 and result.urged >= 1
    late = desk.case("handler_wucun", case_id)
    assert late["deadlines"][0]["light"] == "red"
    assert late["deadlines"][0]["overdue"] is True
    assert [e["action"] for e in late["timeline"]][-2:] == ["clock_overdue", "urge"]
    assert late["timeline"][-1]["payload"]["automatic"] is True
    # A second sweep does not urge twice for the same deadline.
    assert sweep(city_session, now=clock.now(), calendar=calendar).urged == 0

    clock.set(datetime(2018, 7, 2, 9, 0, tzinfo=TZ))
    desk.act("leader", case_id, "supervise", note="请梧村中队加快查处进度，按周报送进展")

    clock.set(datetime(2018, 11, 30, 16, 0, tzinfo=TZ))
    desk.act(
        "handler_wucun",
        case_id,
        "submit_result",
        method="enforcement",
        result="在案件查处过程中，当事人已自行整改完毕",
        photos=["1108/before.jpg", "1108/after.jpg"],
    )
    desk.act("dispatcher", case_id, "approve_result")
    desk.act("admin", case_id, "report_check", passed=True, photos=["1108/check.jpg"])
    closed = desk.act("operator", case_id, "close")

    assert closed["state"] == "closed"
    assert closed["timeline"][-1]["payload"]["on_time"] is False
    submitted = next(e for e in closed["timeline"] if e["action"] == "submit_result")
    assert submitted["photos"] == [
        desk.uploaded["1108/before.jpg"],
        desk.uploaded["1108/after.jpg"],
    ]
    assert closed["result_method"] == "enforcement"
    assert {"feedback", "urge", "supervise"} <= {e["action"] for e in closed["timeline"]}
