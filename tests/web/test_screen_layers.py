"""Devices and people on the one map (R-AN-1, R-AN-4, R-IN-7, R-IN-8): the big screen draws every
camera, every water gauge and manhole cover coloured by its state (a gauge over its threshold
in alarm), and each inspector's last position, as layers the leader switches off and on. The
positions come from the inspectors' phones and the reading from the sensor platform, both
over HTTP as they do in the field; the markers are counted in the page's DOM."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from playwright.sync_api import expect
from sqlalchemy import func, select

from cityloop.intake.models import InspectorPosition
from cityloop.iot.demo import DEMO_SENSOR_KEY
from cityloop.iot.models import Camera, Sensor
from tests.web.conftest import NOW, PASSWORD, SCREENSHOTS, YINGCUI, LiveServer, login

FLOODED = "WL-SM-03"  # 嘉禾路莲坂下穿通道


def _token(client: httpx.Client, username: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_cameras_sensors_and_inspectors_on_the_big_screen(
    live_server: LiveServer, new_context: Any
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with httpx.Client(base_url=live_server.url, timeout=10) as client:
        # Two inspectors' phones report where they are; the newest point is the one drawn.
        for username, community in (("inspector", YINGCUI), ("inspector_huli", "350206004001")):
            lon, lat = live_server.point(community)
            points = [
                {
                    "lon": lon + i * 1e-4,
                    "lat": lat,
                    "at": (NOW - timedelta(minutes=10 - i)).isoformat(),
                }
                for i in range(3)
            ]
            stored = client.post(
                "/api/v1/inspector/positions",
                json={"positions": points},
                headers=_token(client, username),
            )
            assert stored.status_code == 201, stored.text
        # A gauge reads 32 cm of water, over its 15 cm threshold: an alarm.
        reading = client.post(
            f"/api/v1/sensors/{FLOODED}/readings",
            json={"value": 32, "unit": "cm", "ts": (NOW - timedelta(minutes=3)).isoformat()},
            headers={"X-Api-Key": DEMO_SENSOR_KEY},
        )
        assert reading.status_code == 201, reading.text
        assert reading.json()["state"] == "alarm"

    with live_server.session() as session:
        cameras = session.scalar(select(func.count()).select_from(Camera).where(Camera.active))
        sensors = session.scalar(select(func.count()).select_from(Sensor).where(Sensor.active))
        alarms = session.scalar(
            select(func.count())
            .select_from(Sensor)
            .where(Sensor.active, Sensor.in_alarm, Sensor.silent_since.is_(None))
        )
        inspectors = session.scalar(select(func.count(func.distinct(InspectorPosition.user_id))))
    assert cameras and sensors and alarms and inspectors and inspectors >= 2

    page = login(new_context(viewport={"width": 1920, "height": 1080}), "leader")
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    pane = page.locator(".leaflet-marker-pane")
    expect(pane.locator(".mk-camera")).to_have_count(cameras)
    expect(pane.locator(".mk-sensor")).to_have_count(sensors)
    expect(pane.locator(".mk-inspector")).to_have_count(inspectors)
    expect(pane.locator(".mk-sensor.state-alarm")).to_have_count(alarms)
    assert page.locator("body").get_attribute("data-sensor-alarms") == str(alarms)
    # The alarm is drawn red, the quiet gauges in another colour.
    colours = page.evaluate(
        """() => ['.state-alarm', '.state-normal'].map(s => getComputedStyle(
            document.querySelector('.leaflet-marker-pane .mk-sensor' + s)).backgroundColor)"""
    )
    assert colours[0] == "rgb(255, 45, 85)" and colours[1] != colours[0]
    # Hovering a marker names the device and its state.
    pane.locator(".mk-sensor.state-alarm").first.hover()
    expect(page.locator(".leaflet-tooltip")).to_contain_text("报警")
    page.screenshot(path=str(SCREENSHOTS / "big-screen-layers.png"))

    # Each is a layer of its own in the layer control: off and on again.
    control = page.locator(".leaflet-control-layers-overlays label")
    control.filter(has_text="视频监控").locator("input").uncheck()
    expect(pane.locator(".mk-camera")).to_have_count(0)
    expect(pane.locator(".mk-sensor")).to_have_count(sensors)
    control.filter(has_text="监督员位置").locator("input").uncheck()
    expect(pane.locator(".mk-inspector")).to_have_count(0)
    control.filter(has_text="视频监控").locator("input").check()
    expect(pane.locator(".mk-camera")).to_have_count(cameras)
    assert not page.js_errors
