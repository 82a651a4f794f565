"""Seed 000, with the enforcement case it really was (R-HD-5, R-LE-1): 2018-06-13 a complaint
about 厦禾路1108号 ("一套改多套") is dispatched to 思明区 and passed to 梧村; the next day the
squad reports its first feedback and opens an enforcement case from the complaint, which waits
in 立案查处中 on the legal clock, still urged and supervised. On 2018-11-30 the party has
rectified: the enforcement case ends (不予处罚, art. 33) and the complaint gets its final
feedback with the before/after photos automatically, then is checked and closed."""

from __future__ import annotations

from datetime import datetime

from tests.cases.helpers import WUCUN_STREET, department_id, first_community_of, point_in
from tests.conftest import TZ
from tests.enforcement.helpers import Bureau, id_number, officer_ids


def test_complaint_waits_on_its_enforcement_case_and_gets_its_result(
    client, auth, clock, city_session, city_places
):
    desk = Bureau(client, auth)
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
        photos=desk._upload("operator", ["1108/before.jpg"]),
    )
    case_id = created["id"]
    desk.act("operator", case_id, "file")
    desk.act(
        "dispatcher", case_id, "dispatch", department_id=department_id(city_session, "D-350203")
    )
    clock.set(datetime(2018, 6, 13, 10, 0, tzinfo=TZ))
    desk.act(
        "handler", case_id, "pass_down", department_id=department_id(city_session, "D-350203008")
    )

    clock.set(datetime(2018, 6, 14, 15, 0, tzinfo=TZ))
    desk.act("handler_wucun", case_id, "feedback", note="梧村中队已调查取证完毕，正上报立案审批")
    party = desk.party(kind="person", name="张三", id_number=id_number(), address="厦禾路1108号")
    assert party["id_number"].startswith("3502") and "*" in party["id_number"]
    assert "open_enforcement" in desk.actions("handler_wucun", case_id)
    waiting = desk.act(
        "handler_wucun",
        case_id,
        "open_enforcement",
        violation_code="GH-WJ-01",
        party_id=party["id"],
    )
    assert waiting["state"] == "enforcing" and waiting["state_label"] == "立案查处中"
    enf_id = waiting["enforcement_case_id"]
    enf = desk.get("officer", enf_id)
    assert enf["case_id"] == case_id and enf["state"] == "registered"
    assert enf["facts"].startswith("厦禾路1108号") and enf["squad"] == "梧村中队"
    assert enf["timeline"][0]["photos"] == [desk.uploaded["1108/before.jpg"]]

    officers = officer_ids(city_session, "35020318001", "35020318002")
    clock.set(datetime(2018, 6, 15, 10, 0, tzinfo=TZ))
    filed = desk.step("officer", enf_id, "file")
    # 90 natural days from 立案 (art. 60): 2018-09-13, to the end of that day.
    decide = next(d for d in filed["deadlines"] if d["code"] == "decide")
    assert datetime.fromisoformat(decide["due_at"]) == datetime(2018, 9, 13, 23, 59, 59, tzinfo=TZ)
    complaint = desk.case("operator", case_id)
    # The complaint's own clock is now the enforcement case's legal clock.
    assert datetime.fromisoformat(complaint["due_at"]) == datetime(
        2018, 9, 13, 23, 59, 59, tzinfo=TZ
    )
    assert complaint["timeline"][-1]["action"] == "enforcement_clock"

    desk.step(
        "officer",
        enf_id,
        "add_evidence",
        officer_ids=officers,
        photos=["1108/inside.jpg"],
        record={"kind": "inspection_record", "content": "现场勘验：该室被分隔为五个独立单间"},
    )
    desk.step("officer", enf_id, "order_rectification", days=60, officer_ids=officers)

    # Still supervised meanwhile.
    clock.set(datetime(2018, 7, 2, 9, 0, tzinfo=TZ))
    desk.act("leader", case_id, "supervise", note="请梧村中队加快查处进度，按周报送进展")
    desk.act("dispatcher", case_id, "urge")
    assert desk.case("operator", case_id)["state"] == "enforcing"

    clock.set(datetime(2018, 9, 10, 9, 0, tzinfo=TZ))
    desk.step("officer", enf_id, "request_extension", days=90, reason="当事人正在整改，需复查")
    assert "grant_extension" in desk.allowed("enforcement_chief", enf_id)
    extended = desk.step("enforcement_chief", enf_id, "grant_extension")
    decide = next(d for d in extended["deadlines"] if d["code"] == "decide")
    assert datetime.fromisoformat(decide["due_at"]) == datetime(2018, 12, 12, 23, 59, 59, tzinfo=TZ)

    clock.set(datetime(2018, 11, 30, 10, 0, tzinfo=TZ))
    desk.step(
        "officer",
        enf_id,
        "recheck",
        rectified=True,
        officer_ids=officers,
        photos=["1108/after.jpg"],
    )
    desk.step(
        "legal_reviewer",
        enf_id,
        "no_penalty",
        basis="minor_rectified",
        reason="在案件查处过程中，当事人已自行整改完毕",
    )
    clock.set(datetime(2018, 11, 30, 16, 0, tzinfo=TZ))
    ended = desk.step("enforcement_chief", enf_id, "close")
    assert ended["state"] == "closed" and ended["result"] == "not_punished"

    result = desk.case("operator", case_id)
    assert result["state"] == "result_submitted"
    assert result["result_method"] == "enforcement"
    final = result["timeline"][-1]
    assert final["action"] == "enforcement_result" and final["role"] == "system"
    assert final["payload"]["result"] == "在案件查处过程中，当事人已自行整改完毕"
    assert final["payload"]["enforcement_case_id"] == enf_id
    assert final["photos"] == [desk.uploaded["1108/after.jpg"]]
    assert datetime.fromisoformat(final["at"]) == datetime(2018, 11, 30, 16, 0, tzinfo=TZ)

    desk.act("dispatcher", case_id, "approve_result")
    desk.act("admin", case_id, "report_check", passed=True, photos=["1108/check.jpg"])
    assert desk.act("operator", case_id, "close")["state"] == "closed"

    # One mechanism for both timelines: every chain verifies.
    from cityloop.cases.audit import verify_audit

    city_session.expire_all()
    checked, findings = verify_audit(city_session)
    assert findings == [] and checked > 0
