"""The ordinary procedure (普通程序) end to end with a hearing, and its rules as 4xx answers
that write nothing: two officers (art. 42), 法制审核 of a 重大 case (art. 58), the statement
period (art. 44-45), the hearing request within 5 days and its notice 7 days before (art. 64,
working days by art. 85), the discretion range (or a 集体讨论, art. 57), 90 days from 立案
(art. 60), payment within 15 days (art. 67), 加处罚款 capped at the fine (art. 72); 首违不罚
(art. 33); two officers deciding at once: one wins. R-LE-1, R-LE-2."""

from __future__ import annotations

from datetime import datetime

from tests.conftest import TZ
from tests.enforcement.helpers import Bureau, credit_code, id_number, officer_ids

POINT = {"lon": 118.1310, "lat": 24.4930}


def test_ordinary_procedure_with_a_hearing(client, auth, clock, city_session):
    desk = Bureau(client, auth)
    pair = officer_ids(city_session, "35020318001", "35020318002")
    clock.set(datetime(2026, 9, 1, 9, 0, tzinfo=TZ))  # a Tuesday
    company = desk.party(
        kind="organisation",
        name="厦门某某置业有限公司",
        credit_code=credit_code("91350200MA2Y0AB1C"),
    )
    case = desk.open(
        violation_code="GH-WJ-01",
        party_id=company["id"],
        facts="未取得建设工程规划许可证加建三层",
        **POINT,
    )
    enf = case["id"]
    desk.step("officer", enf, "file")
    refused = desk.step(
        "officer", enf, "add_evidence", expect=422, officer_ids=pair[:1], photos=["a.jpg"]
    )
    assert refused["field"] == "officer_ids"
    desk.step(
        "officer",
        enf,
        "add_evidence",
        officer_ids=pair,
        record={"kind": "inquiry_record", "content": "询问：加建部分未办理规划许可"},
    )
    reviewing = desk.step("officer", enf, "submit_review", major=True, tier="general")
    assert reviewing["state"] == "case_review"
    # Review and approval steps are actions named *review* that take {approved, note}.
    review_actions = [a for a in desk.allowed("enforcement_chief", enf) if "review" in a]
    assert review_actions == ["review"]
    assert desk.step("enforcement_chief", enf, "review", approved=True, note="同意")["state"] == (
        "legal_review"
    )
    assert (
        desk.step("legal_reviewer", enf, "legal_review", approved=True, note="事实清楚")["state"]
        == "ready"
    )

    notified = desk.step("officer", enf, "notify", fine=150_000)
    assert notified["state"] == "notified"
    hearing_due = next(d for d in notified["deadlines"] if d["code"] == "hearing_request")
    # 5 working days after Tue 2026-09-01: Tue 2026-09-08.
    assert datetime.fromisoformat(hearing_due["due_at"]) == datetime(
        2026, 9, 8, 23, 59, 59, tzinfo=TZ
    )

    early = desk.step(
        "officer", enf, "decide", expect=422, fine=150_000, officer_ids=pair, base_amount=2_000_000
    )
    assert early["field"] == "statement_due_at"
    desk.step("officer", enf, "request_hearing")
    clock.set(datetime(2026, 9, 3, 9, 0, tzinfo=TZ))
    too_soon = desk.step(
        "legal_reviewer",
        enf,
        "schedule_hearing",
        expect=422,
        hearing_at="2026-09-10T09:00:00+08:00",
    )
    assert too_soon["field"] == "hearing_at" and "art. 64" in too_soon["detail"]
    desk.step("legal_reviewer", enf, "schedule_hearing", hearing_at="2026-09-15T09:00:00+08:00")
    clock.set(datetime(2026, 9, 15, 11, 0, tzinfo=TZ))
    back = desk.step("legal_reviewer", enf, "hold_hearing", record="当事人陈述：已着手拆除部分加建")
    assert back["state"] == "notified"

    # Outside the discretion range (5 %–10 % of 2,000,000 = 100,000–200,000): refused …
    outside = desk.step(
        "officer", enf, "decide", expect=422, fine=250_000, officer_ids=pair, base_amount=2_000_000
    )
    assert outside["field"] == "fine" and "集体讨论" in outside["detail"]
    before = desk.get("officer", enf)
    decided = desk.step(
        "officer",
        enf,
        "decide",
        fine=150_000,
        officer_ids=pair,
        base_amount=2_000_000,
        version=before["version"],
    )
    assert decided["state"] == "decided" and decided["discretion"]["within"] is True
    # … and a second officer deciding from the same version loses.
    again = desk.step(
        "officer2",
        enf,
        "decide",
        expect=409,
        fine=150_000,
        officer_ids=pair,
        base_amount=2_000_000,
        version=before["version"],
    )
    assert again["field"] == "version"

    delivered = desk.step("officer", enf, "deliver", method="post")
    assert delivered["state"] == "executing"
    desk.step("officer", enf, "record_payment", amount=50_000)
    paid = desk.step("officer", enf, "record_payment", amount=100_000)
    assert paid["state"] == "executed"
    assert desk.step("enforcement_chief", enf, "close")["state"] == "closed"
    assert desk.step("officer", enf, "archive")["state"] == "archived"
    final = desk.get("officer", enf)
    kinds = [d["kind"] for d in final["documents"]]
    assert kinds == [
        "filing_approval",
        "inquiry_record",
        "prior_notice",
        "hearing_notice",
        "hearing_record",
        "penalty_decision",
        "delivery_receipt",
        "closing_approval",
    ]
    numbers = {d["number"] for d in final["documents"]}
    assert len(numbers) == len(kinds)
    actions = [e["action"] for e in final["timeline"]]
    assert actions == [
        "register",
        "file",
        "add_evidence",
        "submit_review",
        "review",
        "legal_review",
        "notify",
        "request_hearing",
        "schedule_hearing",
        "hold_hearing",
        "decide",
        "deliver",
        "record_payment",
        "record_payment",
        "close",
        "archive",
    ]

    # The leaders' figures, from the cases and their timelines.
    figures = client.get("/api/v1/enforcement/figures", headers=auth("enforcement_chief"))
    assert figures.status_code == 200
    shown = figures.json()
    assert shown["cases"] == 1 and shown["by_state"] == {"archived": 1}
    assert shown["fines_decided_yuan"] == shown["fines_collected_yuan"] == 150_000
    assert shown["on_time_rate"] == 1.0 and shown["record_coverage"] == 1.0
    assert shown["per_squad"] == {"梧村中队": 1}
    assert shown["per_officer"]["陈志明 35020318001"] == 1
    assert client.get("/api/v1/enforcement/figures", headers=auth("operator")).status_code == 403


def test_no_decision_after_90_days_without_an_extension(client, auth, clock, city_session):
    desk = Bureau(client, auth)
    pair = officer_ids(city_session, "35020318001", "35020318002")
    clock.set(datetime(2026, 3, 2, 9, 0, tzinfo=TZ))
    person = desk.party(kind="person", name="赵六", id_number=id_number("35020319800202301"))
    enf = desk.open(violation_code="SR-DW-01", party_id=person["id"], facts="店外经营", **POINT)[
        "id"
    ]
    desk.step("officer", enf, "file")
    desk.step("officer", enf, "add_evidence", officer_ids=pair, photos=["x.jpg"])
    desk.step("officer", enf, "submit_review")
    desk.step("enforcement_chief", enf, "review", approved=True)
    desk.step("officer", enf, "notify", fine=500)
    desk.step("officer", enf, "record_statement", waived=True)
    clock.set(datetime(2026, 6, 1, 9, 0, tzinfo=TZ))  # 立案 + 91 days
    late = desk.step("officer", enf, "decide", expect=422, fine=500, officer_ids=pair)
    assert late["field"] == "decision_due_at" and "art. 60" in late["detail"]
    desk.step("officer", enf, "request_extension", days=30, reason="案情复杂")
    desk.step("enforcement_chief", enf, "grant_extension")
    assert desk.step("officer", enf, "decide", fine=500, officer_ids=pair)["state"] == "decided"


def test_first_offence_goes_unpunished_but_not_the_second(client, auth, clock, city_session):
    desk = Bureau(client, auth)
    pair = officer_ids(city_session, "35020318001", "35020318002")
    clock.set(datetime(2026, 8, 10, 9, 0, tzinfo=TZ))
    person = desk.party(kind="person", name="孙七", id_number=id_number("35020319920303401"))

    def rectified_case() -> int:
        enf = desk.open(
            violation_code="SR-ZT-01", party_id=person["id"], facts="乱张贴5处", **POINT
        )["id"]
        desk.step("officer", enf, "file")
        desk.step("officer", enf, "add_evidence", officer_ids=pair, photos=["p.jpg"])
        desk.step("officer", enf, "order_rectification", days=1, officer_ids=pair)
        desk.step("officer", enf, "recheck", rectified=True, officer_ids=pair, photos=["clean.jpg"])
        return int(enf)

    first = rectified_case()
    unpunished = desk.step(
        "legal_reviewer", first, "no_penalty", basis="first_offence", reason="初次违法、已及时改正"
    )
    assert unpunished["state"] == "not_punished"
    assert desk.step("enforcement_chief", first, "close")["result"] == "not_punished"

    # A decided offence of the same party makes the next one no first offence.
    onsite = desk.open(violation_code="SR-ZT-01", party_id=person["id"], facts="乱张贴", **POINT)[
        "id"
    ]
    desk.step(
        "officer", onsite, "decide_on_site", penalty="warning", tier="minor", officer_ids=pair
    )
    second = rectified_case()
    refused = desk.step(
        "legal_reviewer", second, "no_penalty", expect=422, basis="first_offence", reason="再犯"
    )
    assert refused["field"] == "basis" and "art. 33" in refused["detail"]
    # Its discretion now reads one tier up (repeat offence within the window).
    view = desk.get("officer", second)["discretion"]
    assert view["repeat"] is True and (view["tier"], view["effective_tier"]) == (
        "general",
        "serious",
    )


def test_unpaid_fine_accrues_3_percent_a_day_up_to_the_fine(client, auth, clock, city_session):
    desk = Bureau(client, auth)
    pair = officer_ids(city_session, "35020318001", "35020318002")
    clock.set(datetime(2026, 8, 3, 10, 0, tzinfo=TZ))
    person = desk.party(kind="person", name="周八", id_number=id_number("35020319700707501"))
    enf = desk.open(violation_code="SR-DW-01", party_id=person["id"], facts="店外经营", **POINT)[
        "id"
    ]
    desk.step("officer", enf, "decide_on_site", fine=200, tier="minor", officer_ids=pair)
    clock.set(datetime(2026, 8, 18, 20, 0, tzinfo=TZ))  # the last day of the 15
    assert desk.get("officer", enf)["surcharge_yuan"] == 0
    clock.set(datetime(2026, 8, 20, 9, 0, tzinfo=TZ))  # two days late: 2 × 3 % × 200
    assert desk.get("officer", enf)["surcharge_yuan"] == 12
    clock.set(datetime(2026, 11, 30, 9, 0, tzinfo=TZ))  # long past: capped at the fine
    late = desk.get("officer", enf)
    assert late["surcharge_yuan"] == 200 and late["outstanding_yuan"] == 400
    assert (
        desk.step("officer", enf, "record_payment", expect=422, amount=400.5)["field"] == "amount"
    )
    assert desk.step("enforcement_chief", enf, "apply_court", note="逾期不缴纳")["state"] == "court"
    paid = desk.step("officer", enf, "record_payment", amount=400)
    assert paid["state"] == "executed" and paid["outstanding_yuan"] == 0
