"""Revoking a partner platform's API key (R-DX-1): the key stops working at once, the partner
and its tickets stay, and a new key can be issued later."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.cases.helpers import YINGCUI, point_in


def test_a_revoked_partner_key_stops_working_until_a_new_one_is_issued(
    client: TestClient, auth: Any, city_places: Any
) -> None:
    admin = auth("admin")
    made = client.post(
        "/api/v1/partners",
        json={"code": "110-siming", "name": "思明公安110", "source": "partner_110"},
        headers=admin,
    ).json()
    lon, lat = point_in(city_places, YINGCUI)
    body = {
        "ticket_id": "110-1",
        "class_code": "09006",
        "description": "占道经营",
        "lon": lon,
        "lat": lat,
    }
    headers = {"X-Api-Key": made["api_key"]}
    assert client.post("/api/v1/partners/reports", json=body, headers=headers).status_code == 201

    assert (
        client.delete(f"/api/v1/partners/{made['id']}/key", headers=auth("operator")).status_code
        == 403
    )
    revoked = client.delete(f"/api/v1/partners/{made['id']}/key", headers=admin)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["key_hint"] == "" and revoked.json()["active"] is True
    assert client.get("/api/v1/partners/reports/110-1", headers=headers).status_code == 401
    assert client.delete("/api/v1/partners/999999/key", headers=admin).status_code == 404

    fresh = client.post(f"/api/v1/partners/{made['id']}/key", headers=admin).json()["api_key"]
    status = client.get("/api/v1/partners/reports/110-1", headers={"X-Api-Key": fresh})
    assert status.status_code == 200 and status.json()["ticket_id"] == "110-1"
