"""Issue 23 item 1 (R-IN: bad input gets a clear error): null sent for a field that cannot be
empty is a 422 naming the field, on every PATCH — not a 500 from the database's NOT NULL, and
not a silent "leave it". Fields that may be empty still take null."""

from __future__ import annotations

import pytest

# (path, caller, field): every PATCH route and every field of it the database keeps non-null.
NON_NULLABLE = [
    ("/api/v1/classes/01001", field)
    for field in (
        "active",
        "filing_standard",
        "closure_standard",
        "manual",
        "default_urgency",
        "handling_days",
    )
] + [
    ("/api/v1/detection-kinds/{kind}", "active"),
    ("/api/v1/detection-kinds/{kind}", "file_confidence"),
    ("/api/v1/cameras/{camera}", "name"),
    ("/api/v1/cameras/{camera}", "active"),
    ("/api/v1/cameras/{camera}", "lon"),
    ("/api/v1/sensors/{sensor}", "name"),
    ("/api/v1/sensors/{sensor}", "active"),
    ("/api/v1/sensors/{sensor}", "silent_after_minutes"),
    ("/api/v1/partners/{partner}", "name"),
    ("/api/v1/partners/{partner}", "active"),
    ("/api/v1/users/{user}", "active"),
    ("/api/v1/users/{user}", "role"),
    ("/api/v1/users/{user}", "display_name"),
    ("/api/v1/users/{user}", "grid_codes"),
    ("/api/v1/departments/{department}", "name"),
    ("/api/v1/departments/{department}", "kind"),
    ("/api/v1/responsibility-rules/{rule}", "department_id"),
    ("/api/v1/responsibility-rules/{rule}", "auto_dispatch"),
    ("/api/v1/responsibility-rules/{rule}", "note"),
]


@pytest.fixture
def targets(client, auth) -> dict[str, str]:
    admin = auth("admin")

    def first(path: str, key: str) -> str:
        response = client.get(path, headers=admin)
        assert response.status_code == 200, response.text
        return str(response.json()[0][key])

    return {
        "kind": first("/api/v1/detection-kinds", "code"),
        "camera": first("/api/v1/cameras", "code"),
        "sensor": first("/api/v1/sensors", "code"),
        "partner": first("/api/v1/partners", "id"),
        "user": first("/api/v1/users?role=handler", "id"),
        "department": first("/api/v1/departments", "id"),
        "rule": first("/api/v1/responsibility-rules", "id"),
    }


@pytest.mark.parametrize(("path", "field"), NON_NULLABLE)
def test_null_for_a_field_that_cannot_be_empty_is_a_422_naming_it(
    client, auth, targets, path, field
):
    response = client.patch(path.format(**targets), json={field: None}, headers=auth("admin"))
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == field, body
    assert field in body["detail"] and "null" in body["detail"]
    # The connection and the database are fine afterwards: the next request answers.
    assert client.get("/healthz").status_code == 200


def test_null_still_clears_a_field_that_may_be_empty(client, auth, targets):
    admin = auth("admin")
    response = client.patch("/api/v1/classes/01001", json={"name_en": None}, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["name_en"] is None
    camera = client.patch(
        f"/api/v1/cameras/{targets['camera']}", json={"address": None}, headers=admin
    )
    assert camera.status_code == 200, camera.text
    assert camera.json()["address"] is None


def test_the_openapi_says_which_fields_take_null(client):
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    active = schemas["ClassPatch"]["properties"]["active"]
    assert active.get("type") == "boolean" and "anyOf" not in active, active
    name_en = schemas["ClassPatch"]["properties"]["name_en"]
    assert {"type": "null"} in name_en["anyOf"], name_en
