"""Bad input gets a clear 4xx naming the problem, and leaves the case as it was."""

from __future__ import annotations

from tests.cases.helpers import YINGCUI, Desk, point_in


def _snapshot(desk, case_id):
    case = desk.case("admin", case_id)
    return case["state"], case["version"], len(case["timeline"])


def test_reports_with_bad_fields_are_refused_and_nothing_is_written(client, auth, city_places):
    lon, lat = point_in(city_places, YINGCUI)
    good = {
        "source": "public",
        "class_code": "06010",
        "description": "暴露垃圾",
        "lon": lon,
        "lat": lat,
    }
    before = client.get("/api/v1/cases", headers=auth("admin")).json()["total"]
    cases = [
        ({"class_code": "99999"}, 422, "class_code", "unknown problem class"),
        ({"class_code": "06"}, 422, "class_code", "major class"),
        ({"lon": 119.5, "lat": 24.0}, 422, "lon", "outside the city"),
        ({"lon": 500}, 422, "lon", "less than or equal to 180"),
        ({"urgency": "D"}, 422, "urgency", "pattern"),
        ({"source": "carrier_pigeon"}, 422, "source", "unknown source"),
        ({"source": "inspector"}, 403, None, "need one of the roles"),
        ({"description": "   "}, 422, "description", "must not be empty"),
    ]
    for change, status, field, words in cases:
        response = client.post("/api/v1/reports", json={**good, **change})
        assert response.status_code == status, (change, response.text)
        body = response.json()
        assert body["field"] == field, (change, body)
        assert words in body["detail"], (change, body)
    missing = client.post("/api/v1/reports", json={k: v for k, v in good.items() if k != "lat"})
    assert missing.status_code == 422 and missing.json()["field"] == "lat"
    assert client.get("/api/v1/cases", headers=auth("admin")).json()["total"] == before


def test_a_class_taken_out_of_use_is_refused_by_the_next_report(client, auth, city_places):
    """The classes are kept in memory for speed, yet an administrator's edit counts at once:
    the next report of a class taken out of use is refused, and accepted again once it is
    back (R-DX-2)."""
    lon, lat = point_in(city_places, YINGCUI)
    report = {"source": "public", "description": "暴露垃圾", "lon": lon, "lat": lat}
    assert client.post("/api/v1/reports", json={**report, "class_code": "06010"}).status_code == 201
    admin = auth("admin")
    off = client.patch("/api/v1/classes/06010", json={"active": False}, headers=admin)
    assert off.status_code == 200, off.text
    refused = client.post("/api/v1/reports", json={**report, "class_code": "06010"})
    assert refused.status_code == 422
    assert (
        refused.json()["field"] == "class_code" and "no longer in use" in refused.json()["detail"]
    )
    on = client.patch("/api/v1/classes/06010", json={"active": True}, headers=admin)
    assert on.status_code == 200, on.text
    assert client.post("/api/v1/reports", json={**report, "class_code": "06010"}).status_code == 201


def test_idempotency_key_returns_the_same_case(client, city_places, auth):
    lon, lat = point_in(city_places, YINGCUI)
    body = {
        "source": "app",
        "class_code": "06010",
        "description": "暴露垃圾",
        "lon": lon,
        "lat": lat,
    }
    first = client.post("/api/v1/reports", json=body, headers={"Idempotency-Key": "phone-42-r1"})
    again = client.post("/api/v1/reports", json=body, headers={"Idempotency-Key": "phone-42-r1"})
    other = client.post("/api/v1/reports", json=body, headers={"Idempotency-Key": "phone-42-r2"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert other.json()["id"] != first.json()["id"]


def test_bad_actions_are_refused_and_the_case_is_unchanged(client, auth, city_places):
    desk = Desk(client, auth)
    lon, lat = point_in(city_places, YINGCUI)
    case_id = desk.report(
        None, source="public", class_code="06010", lon=lon, lat=lat, description="暴露垃圾"
    )["id"]
    version = desk.case("admin", case_id)["version"]
    attempts = [
        ("operator", "dispatch", {}, 403, None, "may not dispatch"),
        ("operator", "close", {}, 409, "action", "not allowed while the case is 上报"),
        ("operator", "reject", {}, 422, "reason", "reason is required"),
        ("operator", "reject", {"reason": ""}, 422, "reason", "reason is required"),
        ("operator", "merge", {"into_case_id": case_id}, 422, "into_case_id", "into itself"),
        ("operator", "file", {"version": version - 1}, 409, "version", "has changed"),
        ("operator", "file", {"urgency": "Z"}, 422, "urgency", "A, B or C"),
        ("operator", "teleport", {}, 404, None, "unknown action"),
        (
            "handler",
            "file",
            {},
            404,
            None,
            "not found",
        ),  # not its case: it must not learn it exists
        ("leader", "file", {}, 403, None, "may not file"),
    ]
    before = _snapshot(desk, case_id)
    for user, action, payload, status, field, words in attempts:
        response = client.post(
            f"/api/v1/cases/{case_id}/actions/{action}", json=payload, headers=auth(user)
        )
        assert response.status_code == status, (action, response.text)
        assert response.json()["field"] == field, (action, response.json())
        assert words in response.json()["detail"], (action, response.json())
        assert _snapshot(desk, case_id) == before
    # The right version goes through.
    assert desk.act("operator", case_id, "file", version=version)["state"] == "filed"


def test_wrong_payload_types_name_the_field(client, auth, city_places, city_session, clock, upload):
    desk = Desk(client, auth)
    lon, lat = point_in(city_places, YINGCUI)
    case_id = desk.report(
        "inspector",
        source="inspector",
        class_code="06010",
        lon=lon,
        lat=lat,
        description="暴露垃圾",
    )["id"]
    desk.act("operator", case_id, "file")
    for payload, field in (
        ({"department_id": "思明"}, "department_id"),
        ({"department_id": 999999}, "department_id"),
    ):
        response = client.post(
            f"/api/v1/cases/{case_id}/actions/dispatch", json=payload, headers=auth("dispatcher")
        )
        assert response.status_code == 422 and response.json()["field"] == field, response.text
    desk.act("dispatcher", case_id, "dispatch")  # the rules pick 思明区城管办 by default
    for payload, field in (
        ({"result": "ok", "method": "magic", "photos": [upload()]}, "method"),
        ({"result": "ok", "method": "service", "photos": ["never-uploaded"]}, "photos"),
        ({"result": "ok", "method": "service", "photos": []}, "photos"),
        ({"result": "ok", "method": "service", "photos": "a.jpg"}, "photos"),
    ):
        response = client.post(
            f"/api/v1/cases/{case_id}/actions/submit_result", json=payload, headers=auth("handler")
        )
        assert response.status_code == 422 and response.json()["field"] == field, response.text


def test_a_department_cannot_see_another_departments_case(client, auth, city_places):
    desk = Desk(client, auth)
    lon, lat = point_in(city_places, YINGCUI)
    case_id = desk.report(
        "inspector",
        source="inspector",
        class_code="06010",
        lon=lon,
        lat=lat,
        description="暴露垃圾",
    )["id"]
    desk.act("operator", case_id, "file")
    desk.act("dispatcher", case_id, "dispatch")
    assert client.get(f"/api/v1/cases/{case_id}", headers=auth("handler_huli")).status_code == 404
    assert client.get(f"/api/v1/cases/{case_id}", headers=auth("handler")).status_code == 200
    listed = client.get("/api/v1/cases", headers=auth("handler_huli")).json()["items"]
    assert case_id not in [c["id"] for c in listed]
    assert client.get("/api/v1/cases").status_code == 401
