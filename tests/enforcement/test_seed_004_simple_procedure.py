"""Seed 004 (执法通: 现场文书打印, 当场处罚): an officer on patrol finds a shop trading outside
its door, opens a case on the phone, takes the evidence with a second officer present and
decides on the spot under the simple procedure (行政处罚法 art. 51: a person ≤ 200 yuan, an
organisation ≤ 3,000, or a warning; art. 42: two officers). R-LE-1."""

from __future__ import annotations

import hashlib
from datetime import datetime

from cityloop.documents.service import pdf_text
from tests.conftest import TZ
from tests.enforcement.helpers import Bureau, credit_code, id_number, officer_ids

POINT = {"lon": 118.1310, "lat": 24.4930}


def test_on_site_decision_within_the_limits_of_article_51(client, auth, clock, city_session):
    desk = Bureau(client, auth)
    clock.set(datetime(2026, 8, 3, 10, 15, tzinfo=TZ))
    person = desk.party(kind="person", name="李四", id_number=id_number("35020319850505201"))
    case = desk.open(
        violation_code="SR-DW-01",
        party_id=person["id"],
        facts="在店门外摆放货架经营约4平方米",
        **POINT,
    )
    assert case["state"] == "registered" and case["source"] == "patrol"
    assert "decide_on_site" in desk.allowed("officer", case["id"])
    pair = officer_ids(city_session, "35020318001", "35020318002")

    # One officer is not enough (art. 42): refused, nothing written.
    refused = desk.step(
        "officer", case["id"], "decide_on_site", expect=422, fine=100, officer_ids=pair[:1]
    )
    assert refused["field"] == "officer_ids" and "第四十二条" in refused["detail"]
    # A person may be fined at most 200 yuan on the spot (art. 51).
    refused = desk.step(
        "officer", case["id"], "decide_on_site", expect=422, fine=300, officer_ids=pair
    )
    assert refused["field"] == "fine" and "第五十一条" in refused["detail"]
    assert len(desk.get("officer", case["id"])["timeline"]) == 1

    decided = desk.step(
        "officer",
        case["id"],
        "decide_on_site",
        fine=100,
        tier="minor",
        officer_ids=pair,
        photos=["shop/front.jpg"],
    )
    assert decided["state"] == "executing" and decided["procedure"] == "simple"
    assert decided["fine_yuan"] == 100 and decided["outstanding_yuan"] == 100
    step = decided["timeline"][-1]
    assert step["payload"]["officers"] == ["陈志明 35020318001", "林海峰 35020318002"]
    assert step["payload"]["discretion"]["effective_tier"] == "minor"
    # Evidence files are hashed into the timeline.
    assert list(step["payload"]["media_sha256"]) == [desk.uploaded["shop/front.jpg"]]
    # Payment within 15 days of delivery (art. 67); delivered on the spot (art. 52).
    pay = next(d for d in decided["deadlines"] if d["code"] == "pay")
    assert datetime.fromisoformat(pay["due_at"]) == datetime(2026, 8, 18, 23, 59, 59, tzinfo=TZ)

    # The 当场行政处罚决定书, numbered by the bureau's sequence, read back from its PDF.
    (document,) = decided["documents"]
    assert document["kind"] == "on_site_decision"
    assert document["number"].startswith("厦思城管当罚字〔2026〕第")
    assert step["payload"]["documents"][0]["sha256"] == document["sha256"]
    pdf = client.get(document["url"], headers=auth("officer"))
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert hashlib.sha256(pdf.content).hexdigest() == document["sha256"]
    text = pdf_text(pdf.content)
    for expected in (
        "当场行政处罚决定书",
        document["number"],
        "李四",
        "陈志明 35020318001",
        "《城市市容和环境卫生管理条例》第三十六条",
        "罚款人民币100元",
    ):
        assert expected in text.replace("\n", ""), expected
    # Another squad's staff cannot read it.
    assert client.get(document["url"], headers=auth("operator")).status_code == 403

    too_much = desk.step("officer", case["id"], "record_payment", expect=422, amount=100.01)
    assert too_much["field"] == "amount"
    paid = desk.step("officer", case["id"], "record_payment", amount=100)
    assert paid["state"] == "executed" and paid["outstanding_yuan"] == 0
    closed = desk.step("enforcement_chief", case["id"], "close")
    assert closed["state"] == "closed" and closed["result"] == "penalised"


def test_an_organisation_may_be_fined_up_to_3000_on_the_spot(client, auth, clock, city_session):
    desk = Bureau(client, auth)
    clock.set(datetime(2026, 8, 3, 11, 0, tzinfo=TZ))
    shop = desk.party(kind="organisation", name="厦门市思明区某某便利店", credit_code=credit_code())
    case = desk.open(violation_code="SR-DW-01", party_id=shop["id"], facts="店外经营", **POINT)
    pair = officer_ids(city_session, "35020318001", "35020318002")
    refused = desk.step(
        "officer",
        case["id"],
        "decide_on_site",
        expect=422,
        fine=3500,
        officer_ids=pair,
        tier="serious",
    )
    assert refused["field"] == "fine"
    decided = desk.step(
        "officer", case["id"], "decide_on_site", fine=2000, officer_ids=pair, tier="serious"
    )
    assert decided["state"] == "executing" and decided["party"]["name"] == "厦门市思明区某某便利店"


def test_party_numbers_are_checked_and_never_shown(client, auth):
    desk = Bureau(client, auth)
    body17 = "35020319900101123"
    good = id_number(body17)
    wrong = body17 + ("0" if good[-1] != "0" else "1")
    refused = desk.party(kind="person", name="王五", id_number=wrong, expect=422)
    assert refused["field"] == "id_number" and "GB 11643" in refused["detail"]
    refused = desk.party(kind="person", name="王五", id_number="35020319901301123X", expect=422)
    assert refused["field"] == "id_number"
    code = credit_code()
    bad_code = code[:-1] + ("0" if code[-1] != "0" else "1")
    refused = desk.party(kind="organisation", name="某公司", credit_code=bad_code, expect=422)
    assert refused["field"] == "credit_code" and "GB 32100" in refused["detail"]
    made = desk.party(kind="person", name="王五", id_number=good)
    assert good not in str(made) and made["id_number"] == good[:4] + "*" * 10 + good[-4:]
    # The same person again is the same party (their history stays one).
    assert desk.party(kind="person", name="王五", id_number=good)["id"] == made["id"]
    # A citizen's account has no access to the register.
    response = client.post(
        "/api/v1/enforcement/parties",
        json={"kind": "person", "name": "x"},
        headers=auth("operator"),
    )
    assert response.status_code == 403
