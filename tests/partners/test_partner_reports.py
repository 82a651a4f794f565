"""Partner platforms forward reports with their own ticket ids (R-IN-1, R-IN-5): 12345, 110
and the public-safety platform, each with its own API key; a replay of a ticket is the same
case; bad input is refused naming the field, with nothing written."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from sqlalchemy import func, select

from cityloop.cases.models import Case
from cityloop.kit.geo import wgs84_to_gcj02
from cityloop.partners import hooks
from cityloop.partners.models import PartnerTicket
from tests.cases.helpers import YINGCUI, point_in

KEY_12345 = "demo-12345-key"


def _report(x: float, y: float, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "ticket_id": "XM12345-20260827-0042",
        "class_code": "01001",
        "description": "市民来电：嘉莲街道盈翠社区一处供水井盖缺失，存在安全隐患",
        "lon": x,
        "lat": y,
        "urgency": "A",
        "reporter_name": "王女士",
        "reporter_phone": "13900001111",
        "photo_urls": ["https://12345.xm.gov.cn/files/0042-1.jpg"],
    }
    body.update(changes)
    return body


def _counts(session) -> tuple[int, int]:
    cases = session.scalar(select(func.count()).select_from(Case))
    links = session.scalar(select(func.count()).select_from(PartnerTicket))
    return cases, links


def test_12345_forwards_a_report_once_however_often_it_sends_it(
    client, auth, city_session, city_places, partner_keys
):
    lon, lat = point_in(city_places, YINGCUI)
    headers = {"X-Api-Key": KEY_12345}

    first = client.post("/api/v1/partners/reports", json=_report(lon, lat), headers=headers)
    replay = client.post("/api/v1/partners/reports", json=_report(lon, lat), headers=headers)

    assert first.status_code == 201, first.text
    assert replay.status_code == 200, replay.text
    assert replay.json()["ticket"] == first.json()["ticket"]
    assert first.json() | {"created": False} == replay.json()
    assert first.json()["state"] == "reported" and first.json()["status"] == "open"
    # The command centre sees it as a 12345 transfer, waiting for verification.
    listed = client.get(
        "/api/v1/cases", params={"source": "partner_12345"}, headers=auth("operator")
    ).json()
    assert [c["ticket"] for c in listed["items"]] == [first.json()["ticket"]]
    detail = client.get(f"/api/v1/cases/{listed['items'][0]['id']}", headers=auth("operator"))
    assert detail.json()["timeline"][0]["actor"] == "厦门市12345政务服务便民热线"
    link = city_session.scalar(select(PartnerTicket))
    assert link is not None and link.external_id == "XM12345-20260827-0042"
    assert link.media_urls == ["https://12345.xm.gov.cn/files/0042-1.jpg"]

    # The partner follows its own ticket.
    status = client.get("/api/v1/partners/reports/XM12345-20260827-0042", headers=headers)
    assert status.json()["ticket"] == first.json()["ticket"]
    unknown = client.get("/api/v1/partners/reports/XM12345-nope", headers=headers)
    assert unknown.status_code == 404 and unknown.json()["field"] == "ticket_id"
    # Another partner cannot read it by guessing the ticket id.
    other = client.get(
        "/api/v1/partners/reports/XM12345-20260827-0042", headers={"X-Api-Key": "demo-110-key"}
    )
    assert other.status_code == 404


def test_each_partner_numbers_its_tickets_on_its_own(client, city_places, partner_keys):
    lon, lat = point_in(city_places, YINGCUI)
    body = _report(lon, lat, ticket_id="0001")
    from_12345 = client.post(
        "/api/v1/partners/reports", json=body, headers={"X-Api-Key": KEY_12345}
    )
    from_110 = client.post(
        "/api/v1/partners/reports",
        json=body | {"class_code": "02014", "description": "110转来：机动车乱停放"},
        headers={"X-Api-Key": "demo-110-key"},
    )
    assert (from_12345.status_code, from_110.status_code) == (201, 201)
    assert from_12345.json()["ticket"] != from_110.json()["ticket"]


@pytest.mark.parametrize(
    ("headers", "changes", "status", "field"),
    [
        ({}, {}, 401, "X-Api-Key"),
        ({"X-Api-Key": "not-a-partner-key"}, {}, 401, "X-Api-Key"),
        ({"X-Api-Key": KEY_12345}, {"ticket_id": "has spaces"}, 422, "ticket_id"),
        ({"X-Api-Key": KEY_12345}, {"ticket_id": "a/b"}, 422, "ticket_id"),
        ({"X-Api-Key": KEY_12345}, {"ticket_id": ""}, 422, "ticket_id"),
        ({"X-Api-Key": KEY_12345}, {"class_code": "99999"}, 422, "class_code"),
        ({"X-Api-Key": KEY_12345}, {"lon": 116.40, "lat": 39.90}, 422, "lon"),
        ({"X-Api-Key": KEY_12345}, {"lat": 95}, 422, "lat"),
        ({"X-Api-Key": KEY_12345}, {"description": " "}, 422, "description"),
        ({"X-Api-Key": KEY_12345}, {"coord_system": "bd09"}, 422, "coord_system"),
        ({"X-Api-Key": KEY_12345}, {"photo_urls": ["file:///etc/passwd"]}, 422, "photo_urls"),
        ({"X-Api-Key": KEY_12345}, {"urgency": "D"}, 422, "urgency"),
    ],
)
def test_bad_partner_input_is_refused_naming_the_field_and_nothing_is_written(
    client, city_session, city_places, partner_keys, headers, changes, status, field
):
    lon, lat = point_in(city_places, YINGCUI)
    before = _counts(city_session)
    response = client.post(
        "/api/v1/partners/reports", json=_report(lon, lat, **changes), headers=headers
    )
    assert response.status_code == status, response.text
    assert response.json()["field"] == field
    assert _counts(city_session) == before


def test_a_disabled_partner_is_refused(client, auth, city_places, partner_keys):
    partners = client.get("/api/v1/partners", headers=auth("admin")).json()
    partner_110 = next(p for p in partners if p["code"] == "110-xiamen")
    client.patch(
        f"/api/v1/partners/{partner_110['id']}", json={"active": False}, headers=auth("admin")
    )
    lon, lat = point_in(city_places, YINGCUI)
    response = client.post(
        "/api/v1/partners/reports", json=_report(lon, lat), headers={"X-Api-Key": "demo-110-key"}
    )
    assert response.status_code == 403 and response.json()["field"] == "X-Api-Key"


def test_oversized_bodies_are_refused_before_they_are_read_whole(
    client, city_session, city_places, partner_keys
):
    before = _counts(city_session)
    headers = {"X-Api-Key": KEY_12345, "Content-Type": "application/json"}
    declared = client.post(
        "/api/v1/partners/reports", content=b"{" + b" " * 70_000 + b"}", headers=headers
    )
    assert declared.status_code == 413, declared.text
    assert declared.json()["field"] == "body"

    # No Content-Length (chunked): the body is counted as it streams in, and reading stops
    # once it passes the limit — 200 chunks of 1 KiB are offered, far fewer are taken.
    status, taken = anyio.run(_post_chunks, client.app, 200)
    assert status == 413
    assert taken <= 66
    assert _counts(city_session) == before


async def _post_chunks(app: Any, chunks: int) -> tuple[int, int]:
    taken = 0
    statuses = []

    async def receive() -> dict[str, Any]:
        nonlocal taken
        taken += 1
        return {"type": "http.request", "body": b" " * 1024, "more_body": taken < chunks}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/partners/reports",
        "raw_path": b"/api/v1/partners/reports",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"x-api-key", KEY_12345.encode()), (b"content-type", b"application/json")],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 50000),
    }
    await app(scope, receive, send)
    return statuses[0], taken


def test_amap_gcj02_positions_are_stored_as_wgs84(client, city_session, city_places, partner_keys):
    lon, lat = point_in(city_places, YINGCUI)
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    response = client.post(
        "/api/v1/partners/reports",
        json=_report(gcj_lon, gcj_lat, coord_system="gcj02"),
        headers={"X-Api-Key": KEY_12345},
    )
    assert response.status_code == 201, response.text
    case = city_session.scalar(select(Case).where(Case.ticket == response.json()["ticket"]))
    assert case is not None
    assert abs(case.lon - lon) < 1e-6 and abs(case.lat - lat) < 1e-6
    assert case.community == YINGCUI


def test_the_hook_costs_ordinary_cases_nothing():
    """The call in transition(): no session use at all for a case not from a partner."""
    ordinary = Case(source="inspector")
    assert hooks.case_changed(None, ordinary, "file", "pending_filing", {}, None) is None  # type: ignore[arg-type]
