"""执法公示 (art. 48, R-LE-2): decisions are public from their delivery on, with no login; a
person's name is masked (张*), a company's kept, no ID number ever; a withheld decision (with
its reason) and a revoked one are not listed."""

from __future__ import annotations

from datetime import datetime

from tests.conftest import TZ
from tests.enforcement.helpers import Bureau, credit_code, id_number, officer_ids

POINT = {"lon": 118.1310, "lat": 24.4930}


def test_public_penalties_are_masked_and_withdrawn(client, auth, clock, city_session):
    desk = Bureau(client, auth)
    pair = officer_ids(city_session, "35020318001", "35020318002")
    clock.set(datetime(2026, 8, 3, 10, 0, tzinfo=TZ))
    number = id_number("35020319881212601")
    person = desk.party(kind="person", name="张小明", id_number=number)
    company = desk.party(
        kind="organisation", name="厦门某某餐饮管理有限公司", credit_code=credit_code()
    )
    ids = []
    # The person's second offence is a repeat: its tier is raised (一般, 200–1000 yuan).
    for party, fine in ((person, 100), (company, 100), (person, 200)):
        enf = desk.open(violation_code="SR-DW-01", party_id=party["id"], facts="店外经营", **POINT)
        desk.step("officer", enf["id"], "decide_on_site", fine=fine, tier="minor", officer_ids=pair)
        ids.append(enf["id"])
    pending = desk.open(violation_code="SR-DW-01", party_id=person["id"], facts="店外经营", **POINT)

    listed = client.get("/api/v1/public/penalties")
    assert listed.status_code == 200
    body = listed.json()
    assert body["total"] == 3 and {i["id"] for i in body["items"]} == set(ids)
    names = {i["party"] for i in body["items"]}
    assert names == {"张**", "厦门某某餐饮管理有限公司"}
    assert number not in listed.text and number[-4:] + '"' not in listed.text
    assert pending["id"] not in {i["id"] for i in body["items"]}
    assert body["items"][0]["penalty_basis"].startswith("《城市市容和环境卫生管理条例》第三十六条")

    refused = desk.step("enforcement_chief", ids[0], "withhold_disclosure", expect=422)
    assert refused["field"] == "reason"
    desk.step("legal_reviewer", ids[0], "withhold_disclosure", reason="涉及未成年人，暂不公示")
    desk.step("enforcement_chief", ids[1], "revoke", reason="复议撤销")
    after = client.get("/api/v1/public/penalties", params={"page_size": 1}).json()
    assert after["total"] == 1 and after["items"][0]["id"] == ids[2]


def test_a_decision_withheld_too_long_is_flagged(client, auth, clock, city_session):
    desk = Bureau(client, auth)
    pair = officer_ids(city_session, "35020318001", "35020318002")
    clock.set(datetime(2026, 9, 1, 10, 0, tzinfo=TZ))  # Tuesday
    person = desk.party(kind="person", name="钱九", id_number=id_number("35020319660606701"))
    enf = desk.open(violation_code="SR-DW-01", party_id=person["id"], facts="店外经营", **POINT)
    desk.step("officer", enf["id"], "decide_on_site", fine=50, tier="minor", officer_ids=pair)
    desk.step("legal_reviewer", enf["id"], "withhold_disclosure", reason="待核实当事人身份")

    def flagged() -> list[int]:
        answer = client.get("/api/v1/enforcement/figures", headers=auth("enforcement_chief"))
        assert answer.status_code == 200
        return list(answer.json()["undisclosed_overdue"])

    clock.set(datetime(2026, 9, 10, 10, 0, tzinfo=TZ))  # 7 working days end on Wed 09-10
    assert flagged() == []
    clock.set(datetime(2026, 9, 11, 9, 0, tzinfo=TZ))
    assert flagged() == [enf["id"]]
