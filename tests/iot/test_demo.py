"""The demo city's cameras and sensors, built through the same services (R-IN-7, R-IN-8,
R-AN-1): what a visitor of the demo sees on the big screen."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select
from tests.iot.conftest import YECUO

from cityloop.iot import demo
from cityloop.iot.models import Camera, Sensor


def test_the_demo_city_has_cameras_gauges_and_covers(
    devices, city_session, city_places, clock, tmp_path
):
    if city_session.scalar(select(Camera.id).limit(1)) is None:
        summary = demo.build(city_session, now=clock.now(), places=city_places, media_dir=tmp_path)
        assert summary["cameras"] == 12 and summary["detections"] == 6
    else:  # the city fixture registered the devices quietly; play their traffic now
        summary = demo.play(city_session, now=clock.now(), places=city_places, media_dir=tmp_path)
        assert summary["detections"] == 6
    cameras = {c.code: c for c in city_session.scalars(select(Camera))}
    assert Counter(c.district for c in cameras.values()) == {"350203": 5, "350206": 4, "350211": 3}
    assert cameras["JM-QY-0001"].community == YECUO  # 叶厝菜市场 (seed 002)
    sensors = list(city_session.scalars(select(Sensor)))
    gauges = [s for s in sensors if s.kind == "water_level"]
    covers = [s for s in sensors if s.kind == "manhole_cover"]
    assert len(gauges) == 12  # seed 004: 12 waterlogging points
    assert covers and all(s.component_id for s in covers)

    listed = devices.client.get("/api/v1/sensors", headers=devices.auth("leader")).json()
    state = {s["code"]: s for s in listed}
    assert state["WL-SM-01"]["state"] == "alarm" and state["WL-SM-01"]["open_case"]["state"] == (
        "filed"
    )
    assert state["WL-HL-01"]["state"] == "normal"  # flooded, then recovered
    assert state["WL-HL-04"]["state"] == "silent"
    assert sum(s["state"] == "alarm" for s in listed if s["kind"] == "manhole_cover") == 2

    yecuo = devices.client.get(
        "/api/v1/detections", params={"camera": "JM-QY-0001"}, headers=devices.auth("operator")
    ).json()
    assert [d["outcome"] for d in yecuo] == ["joined", "filed"]
    assert yecuo[0]["case"] == yecuo[1]["case"]

    # The documented demo key lets a visitor post a detection of their own.
    response = devices.detect(demo.DEMO_CAMERA_KEY, "SM-JL-0002", "乱堆物料", 0.9)
    assert response.status_code == 201, response.text
    assert devices.case(response.json()["case"]["id"])["community"] == "350203011003"
