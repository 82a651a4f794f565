"""Personal data's life cycle (issue 20, part 2; 《个人信息保护法》 minimum and limited
retention, R-SEC): a reporter's name and phone are erased N months after the case is archived
and not before, every hash chain still verifies, a citizen's request still finds their cases
by the phone afterwards, an erasure request spares what is still being handled, and every
staff view of an unmasked contact is logged and reviewable — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityloop.cases.audit import verify_audit
from cityloop.cases.models import Case, CaseEvent
from cityloop.privacy.models import ContactView
from cityloop.privacy.service import erase_expired
from tests.cases.helpers import YINGCUI, Desk, department_id, point_in
from tests.conftest import TEST_SETTINGS, TZ

PHONE = "13912345678"


def _archived_case(desk: Desk, clock: Any, session: Session, places: Any, phone: str) -> int:
    lon, lat = point_in(places, YINGCUI)
    clock.set(datetime(2026, 9, 7, 9, 0, tzinfo=TZ))
    case_id = desk.report(
        None,
        source="public",
        class_code="06010",
        description="暴露垃圾没人清",
        lon=lon,
        lat=lat,
        reporter_name="陈小明",
        reporter_phone=phone,
    )["id"]
    desk.act("operator", case_id, "send_to_verify")
    desk.act("inspector", case_id, "verify", confirmed=True, photos=["seen.jpg"])
    desk.act("operator", case_id, "file")
    desk.act("dispatcher", case_id, "dispatch", department_id=department_id(session, "D-350203"))
    desk.act(
        "handler", case_id, "submit_result", result="已清理", method="service", photos=["a.jpg"]
    )
    desk.act("dispatcher", case_id, "approve_result")
    desk.act("inspector", case_id, "report_check", passed=True, photos=["ok.jpg"])
    desk.act("operator", case_id, "close")
    assert desk.act("operator", case_id, "return_visit", satisfied=True)["state"] == "archived"
    return int(case_id)


def _open_case(desk: Desk, places: Any, phone: str) -> int:
    lon, lat = point_in(places, YINGCUI)
    return int(
        desk.report(
            None,
            source="wechat",
            class_code="01001",
            description="井盖没了",
            lon=lon + 0.003,
            lat=lat,
            reporter_phone=phone,
        )["id"]
    )


def test_contacts_are_erased_after_the_retention_and_chains_still_verify(
    client: TestClient, auth: Any, clock: Any, city_session: Session, city_places: Any
) -> None:
    desk = Desk(client, auth)
    case_id = _archived_case(desk, clock, city_session, city_places, PHONE)
    keyring = TEST_SETTINGS.keyring()

    # 23 months after the archive: still kept.
    early = erase_expired(city_session, now=datetime(2028, 8, 6, 9, 0, tzinfo=TZ), keyring=keyring)
    assert early.cases == 0
    city_session.expire_all()
    assert city_session.get(Case, case_id).reporter_phone == PHONE  # type: ignore[union-attr]

    due = erase_expired(city_session, now=datetime(2028, 9, 8, 9, 0, tzinfo=TZ), keyring=keyring)
    assert due.cases == 1
    case = city_session.get(Case, case_id)
    assert case is not None and case.reporter_phone is None and case.reporter_name is None
    last = city_session.scalar(
        select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq.desc())
    )
    assert last is not None and last.action == "personal_data_erased"
    assert last.payload == {"fields": ["reporter_name", "reporter_phone"], "reason": "retention"}
    assert PHONE not in str(last.payload)
    _, findings = verify_audit(city_session)
    assert findings == []
    # A second pass finds nothing more to do.
    again = erase_expired(city_session, now=datetime(2028, 9, 9, 9, 0, tzinfo=TZ), keyring=keyring)
    assert again.cases == 0


def test_a_shorter_retention_set_by_the_administrator_applies_and_bad_values_are_refused(
    client: TestClient, auth: Any, clock: Any, city_session: Session, city_places: Any
) -> None:
    admin = auth("admin")
    bad = client.put("/api/v1/privacy/retention/case_reporter", json={"months": 0}, headers=admin)
    assert bad.status_code == 422 and bad.json()["field"] == "months"
    unknown = client.put("/api/v1/privacy/retention/shoe_size", json={"months": 3}, headers=admin)
    assert unknown.status_code == 422 and unknown.json()["field"] == "kind"
    ok = client.put("/api/v1/privacy/retention/case_reporter", json={"months": 6}, headers=admin)
    assert ok.status_code == 200, ok.text
    listed = client.get("/api/v1/privacy/retention", headers=admin).json()
    assert {r["kind"]: r["months"] for r in listed}["case_reporter"] == 6
    assert client.get("/api/v1/privacy/retention", headers=auth("operator")).status_code == 403

    desk = Desk(client, auth)
    _archived_case(desk, clock, city_session, city_places, PHONE)
    done = erase_expired(
        city_session, now=datetime(2027, 3, 8, 9, 0, tzinfo=TZ), keyring=TEST_SETTINGS.keyring()
    )
    assert done.cases == 1


def test_a_citizen_finds_their_cases_before_and_after_erasure_and_erasure_spares_open_work(
    client: TestClient, auth: Any, clock: Any, city_session: Session, city_places: Any
) -> None:
    desk = Desk(client, auth)
    archived = _archived_case(desk, clock, city_session, city_places, PHONE)
    open_case = _open_case(desk, city_places, "+86 139-1234-5678")
    operator = auth("operator")

    access = client.post(
        "/api/v1/privacy/requests", json={"kind": "access", "phone": PHONE}, headers=operator
    )
    assert access.status_code == 201, access.text
    found = {r["id"] for r in access.json()["records"] if r["subject_type"] == "case"}
    assert found == {archived, open_case}

    erasure = client.post(
        "/api/v1/privacy/requests",
        json={"kind": "erasure", "phone": PHONE, "note": "市民来电要求删除"},
        headers=operator,
    )
    assert erasure.status_code == 201, erasure.text
    body = erasure.json()
    assert body["erased"] == 1
    open_ticket = city_session.get(Case, open_case).ticket  # type: ignore[union-attr]
    assert body["retained"] == [open_ticket]
    city_session.expire_all()
    assert city_session.get(Case, archived).reporter_phone is None  # type: ignore[union-attr]
    assert city_session.get(Case, open_case).reporter_phone  # type: ignore[union-attr]

    # The erased case is still found by the digest of the phone, marked as erased.
    later = client.post(
        "/api/v1/privacy/requests", json={"kind": "access", "phone": PHONE}, headers=operator
    ).json()
    by_id = {r["id"]: r for r in later["records"] if r["subject_type"] == "case"}
    assert by_id[archived]["contact_erased"] is True
    assert by_id[open_case]["contact_erased"] is False

    handler = client.post(
        "/api/v1/privacy/requests", json={"kind": "access", "phone": PHONE}, headers=auth("handler")
    )
    assert handler.status_code == 403
    bad = client.post(
        "/api/v1/privacy/requests", json={"kind": "access", "phone": "abc"}, headers=operator
    )
    assert bad.status_code == 422 and bad.json()["field"] == "phone"


def test_every_view_of_an_unmasked_contact_is_logged_and_masked_views_are_not(
    client: TestClient, auth: Any, clock: Any, city_session: Session, city_places: Any
) -> None:
    desk = Desk(client, auth)
    case_id = _open_case(desk, city_places, PHONE)
    before = city_session.scalar(select(ContactView.id).order_by(ContactView.id.desc()))

    seen = client.get(f"/api/v1/cases/{case_id}", headers=auth("operator"))
    assert seen.json()["reporter_phone"] == PHONE
    masked = client.get(f"/api/v1/cases/{case_id}", headers=auth("dispatcher"))
    assert masked.json()["reporter_phone"] != PHONE

    views = client.get(
        "/api/v1/privacy/contact-views", params={"case_id": case_id}, headers=auth("admin")
    )
    assert views.status_code == 200, views.text
    items = [v for v in views.json()["items"] if before is None or v["id"] > before]
    assert [(v["role"], v["subject_id"]) for v in items] == [("operator", case_id)]
    assert items[0]["ticket"] == seen.json()["ticket"]
    assert client.get("/api/v1/privacy/contact-views", headers=auth("operator")).status_code == 403
