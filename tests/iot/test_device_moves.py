"""Moving a camera or a sensor (R-IN-7, R-IN-8): the administrator gives a new position and the
device is located in the grids again, so its next case lands in the right place; a position
outside the city is refused under its field."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from tests.cases.helpers import YINGCUI, point_in

WUCUN_COMMUNITY = "350203008001"


def test_cameras_and_sensors_are_moved_and_located_again(
    client: TestClient, auth: Any, city_places: Any
) -> None:
    admin = auth("admin")
    lon, lat = point_in(city_places, YINGCUI)
    new_lon, new_lat = point_in(city_places, WUCUN_COMMUNITY)
    camera = client.post(
        "/api/v1/cameras",
        json={"code": "CAM-MOVE-1", "name": "盈翠路口", "lon": lon, "lat": lat},
        headers=admin,
    )
    assert camera.status_code == 201 and camera.json()["community"] == YINGCUI
    moved = client.patch(
        "/api/v1/cameras/CAM-MOVE-1",
        json={"lon": new_lon, "lat": new_lat, "name": "梧村路口"},
        headers=admin,
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["community"], moved.json()["name"]) == (WUCUN_COMMUNITY, "梧村路口")
    outside = client.patch("/api/v1/cameras/CAM-MOVE-1", json={"lon": 100.0}, headers=admin)
    assert outside.status_code == 422 and outside.json()["field"] == "lon"
    blank = client.patch("/api/v1/cameras/CAM-MOVE-1", json={"name": " "}, headers=admin)
    assert blank.status_code == 422 and blank.json()["field"] == "name"

    sensor = client.post(
        "/api/v1/sensors",
        json={
            "code": "WL-MOVE-1",
            "kind": "water_level",
            "name": "涵洞水尺",
            "lon": lon,
            "lat": lat,
            "threshold": 0.3,
        },
        headers=admin,
    )
    assert sensor.status_code == 201, sensor.text
    patched = client.patch(
        "/api/v1/sensors/WL-MOVE-1",
        json={"lon": new_lon, "lat": new_lat, "threshold": 0.25},
        headers=admin,
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["community"], body["threshold"], body["lon"]) == (
        WUCUN_COMMUNITY,
        0.25,
        new_lon,
    )
    assert (
        client.patch(
            "/api/v1/sensors/WL-MOVE-1", json={"lat": new_lat}, headers=auth("operator")
        ).status_code
        == 403
    )
