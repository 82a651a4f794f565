"""The administrator's register of partner platforms: keys shown once, stored hashed,
rotated and disabled (R-DX-1: a stable exchange interface for other platforms)."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from cityloop.partners.models import Partner
from tests.cases.helpers import YINGCUI, point_in


def _forward(client, key: str, lon: float, lat: float, ticket_id: str):
    return client.post(
        "/api/v1/partners/reports",
        json={
            "ticket_id": ticket_id,
            "class_code": "01001",
            "description": "井盖缺失",
            "lon": lon,
            "lat": lat,
        },
        headers={"X-Api-Key": key},
    )


def test_an_administrator_registers_a_partner_and_rotates_its_key(
    client, auth, city_session, city_places
):
    lon, lat = point_in(city_places, YINGCUI)
    created = client.post(
        "/api/v1/partners",
        json={
            "code": "12345-siming",
            "name": "思明区12345分中心",
            "source": "partner_12345",
            "webhook_url": "https://12345.siming.example/hooks/cityloop",
        },
        headers=auth("admin"),
    )
    assert created.status_code == 201, created.text
    key = created.json()["api_key"]
    assert len(key) >= 40 and created.json()["key_hint"] == key[-4:]
    stored = city_session.scalar(select(Partner).where(Partner.code == "12345-siming"))
    assert stored is not None
    assert stored.key_digest == hashlib.sha256(key.encode()).hexdigest()  # never the key itself
    listed = client.get("/api/v1/partners", headers=auth("admin")).json()
    assert all("api_key" not in p for p in listed)

    assert _forward(client, key, lon, lat, "A-1").status_code == 201
    rotated = client.post(f"/api/v1/partners/{created.json()['id']}/key", headers=auth("admin"))
    new_key = rotated.json()["api_key"]
    assert new_key != key
    assert _forward(client, key, lon, lat, "A-2").status_code == 401
    assert _forward(client, new_key, lon, lat, "A-1").status_code == 200  # same ticket, replay


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"code": "Bad Code", "name": "x", "source": "partner_110"}, 422, "code"),
        ({"code": "hotline", "name": "x", "source": "hotline_12345"}, 422, "source"),
        (
            {"code": "x-110", "name": "x", "source": "partner_110", "webhook_url": "ftp://h/x"},
            422,
            "webhook_url",
        ),
        ({"code": "x-110", "name": " ", "source": "partner_110"}, 422, "name"),
    ],
)
def test_bad_partner_registrations_are_refused(client, auth, body, status, field):
    response = client.post("/api/v1/partners", json=body, headers=auth("admin"))
    assert response.status_code == status, response.text
    assert response.json()["field"] == field


def test_only_an_administrator_manages_partners(client, auth, partner_keys):
    assert client.get("/api/v1/partners", headers=auth("operator")).status_code == 403
    duplicate = client.post(
        "/api/v1/partners",
        json={"code": "open311-demo", "name": "again", "source": "open311"},
        headers=auth("admin"),
    )
    assert duplicate.status_code == 409 and duplicate.json()["field"] == "code"
    refused = client.post(
        "/api/v1/partners",
        json={"code": "mine", "name": "mine", "source": "open311"},
        headers=auth("dispatcher"),
    )
    assert refused.status_code == 403
