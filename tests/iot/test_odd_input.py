"""Odd values at every IoT endpoint get a 4xx naming the field, never a 500."""

from __future__ import annotations

from tests.cases.helpers import YINGCUI


def test_odd_values_are_refused_by_name(devices, clock):
    admin = devices.auth("admin")
    camera = devices.camera()
    gauge = devices.sensor("water_level", YINGCUI)
    camera_key = devices.key("camera")
    sensor_key = devices.key("sensor")
    lon, lat = devices.point(YINGCUI)
    post = devices.client.post
    patch = devices.client.patch

    checks = [
        (devices.detect(camera_key, camera, confidence="nan"), "confidence"),
        (
            devices.detect(camera_key, camera, detected_at="0001-01-01T00:00:00+14:00"),
            "detected_at",
        ),
        (devices.detect(camera_key, camera, detected_at="2026-13-40T25:00:00"), "detected_at"),
        (devices.detect(camera_key, camera, kind="占" * 40), "kind"),
        (devices.read(sensor_key, gauge, value=1, unit="m", ts="2026-08-27T16:00:00+25:00"), "ts"),
        (devices.read(sensor_key, gauge, value=1, unit="m", ts="0001-01-01T00:00:00+14:00"), "ts"),
        (
            devices.client.get("/api/v1/sensors", params={"state": "on fire"}, headers=admin),
            "state",
        ),
        (
            post(
                "/api/v1/cameras",
                content=b'{"code": "C1", "name": "x", "lon": NaN, "lat": 24.5}',
                headers={**admin, "Content-Type": "application/json"},
            ),
            "lon",
        ),
        (
            post(
                "/api/v1/sensors",
                json={
                    "code": "S1",
                    "kind": "water_level",
                    "name": "x",
                    "lon": lon,
                    "lat": lat,
                    "silent_after_minutes": 0,
                },
                headers=admin,
            ),
            "silent_after_minutes",
        ),
        (
            patch(
                f"/api/v1/sensors/{gauge}",
                content=b'{"threshold": NaN}',
                headers={**admin, "Content-Type": "application/json"},
            ),
            "threshold",
        ),
        (
            post("/api/v1/device-keys", json={"name": "x", "kind": "drone"}, headers=admin),
            "kind",
        ),
        (
            post(
                "/api/v1/device-keys",
                json={"name": "x", "kind": "camera", "device_code": "NO-SUCH"},
                headers=admin,
            ),
            "device_code",
        ),
        (
            patch(
                "/api/v1/detection-kinds/bin_overflow", json={"file_confidence": 2}, headers=admin
            ),
            "file_confidence",
        ),
    ]
    for response, field in checks:
        assert 400 <= response.status_code < 500, response.text
        assert response.json()["field"] == field, response.text
    assert devices.client.delete("/api/v1/device-keys/999999", headers=admin).status_code == 404
    assert devices.client.get("/api/v1/sensors/NOPE", headers=admin).status_code == 404
    assert patch("/api/v1/cameras/NOPE", json={"active": False}, headers=admin).status_code == 404
    assert patch("/api/v1/detection-kinds/nope", json={}, headers=admin).status_code == 404
    assert devices.client.get("/api/v1/sensors").status_code == 401  # the map needs a login
