"""Sensor alarms (R-IN-8): a water gauge over its threshold or a manhole cover tilted or
missing raises one open case per sensor; repeats append to it, the recovery is noted, silent
sensors are flagged; the big screen reads positions and states (R-AN-1). These tests post
readings over HTTP (the same contract and service as MQTT; the bridge is tested against the
real broker in test_bridge.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from tests.cases.helpers import YINGCUI, Desk
from tests.conftest import TZ

from cityloop.assets.models import Component
from cityloop.cases.models import Case
from cityloop.errors import ValidationFailed
from cityloop.iot import service
from cityloop.iot.models import Sensor, SensorReading


def at(hour: int, minute: int, second: int = 0) -> str:
    return datetime(2026, 8, 27, hour, minute, second, tzinfo=TZ).isoformat()


def test_a_flooded_gauge_raises_one_case_that_follows_the_water(devices, clock, auth):
    """Seed 004: electronic water gauges at waterlogging points alarm automatically when the
    water passes the limit (R-IN-8)."""
    gauge = devices.sensor("water_level", YINGCUI, threshold=0.15, address="嘉禾路莲坂下穿通道")
    key = devices.key("sensor")
    clock.set(datetime(2026, 8, 27, 18, 0, tzinfo=TZ))

    normal = devices.read(key, gauge, value=0.04, unit="m", ts=at(16, 50))
    assert normal.status_code == 201 and normal.json()["outcome"] == "normal"
    assert normal.json()["case"] is None

    alarm = devices.read(key, gauge, value=0.21, unit="m", ts=at(16, 55)).json()
    assert alarm["outcome"] == "alarm" and alarm["case_created"] is True
    assert alarm["state"] == "alarm"
    case_id = alarm["case"]["id"]
    case = devices.case(case_id)
    assert case["state"] == "filed"  # a reading over the threshold needs no verification
    assert (case["source"], case["class_code"], case["urgency"]) == ("sensor", "21001", "A")
    assert "0.21 m" in case["description"] and "0.15 m" in case["description"]
    assert case["community"] == YINGCUI

    repeat = devices.read(key, gauge, value=0.32, unit="m", ts=at(16, 58)).json()
    assert repeat["outcome"] == "repeat" and repeat["case"]["id"] == case_id
    recovered = devices.read(key, gauge, value=8, unit="cm", ts=at(17, 20)).json()
    assert recovered["outcome"] == "recovered" and recovered["state"] == "normal"
    # The water rises again while the case is still open: the same case, no second one.
    again = devices.read(key, gauge, value=0.4, unit="m", ts=at(17, 55)).json()
    assert again["outcome"] == "alarm" and again["case"]["id"] == case_id
    assert again["case_created"] is False

    timeline = devices.case(case_id)["timeline"]
    assert [e["action"] for e in timeline] == [
        "report",
        "sensor_reading",
        "sensor_recovered",
        "sensor_reading",
    ]
    assert timeline[1]["payload"]["value"] == 0.32
    assert timeline[2]["payload"]["value"] == pytest.approx(0.08)
    assert {e["role"] for e in timeline} == {"device"}

    # Once the loop has closed the case, the next alarm opens a new one.
    desk = Desk(devices.client, auth)
    desk.act("dispatcher", case_id, "dispatch")
    assert devices.case(case_id)["department"] == "厦门市市政设施管理中心"  # 道路积水
    desk.act(
        "admin", case_id, "submit_result", result="已排水", method="service", photos=["after.jpg"]
    )
    desk.act("dispatcher", case_id, "approve_result")
    desk.act("admin", case_id, "report_check", passed=True, photos=["check.jpg"])
    desk.act("operator", case_id, "close")
    clock.set(datetime(2026, 8, 28, 9, 0, tzinfo=TZ))
    next_flood = devices.read(key, gauge, value=0.3, unit="m", ts=at(17, 59)).json()
    # Still over the threshold, but the case is closed: a new case carries the alarm.
    assert next_flood["outcome"] == "alarm" and next_flood["case_created"] is True
    assert next_flood["case"]["id"] != case_id


def test_a_tilted_cover_files_a_case_on_its_component(devices, city_session, auth):
    """Seed 004: smart manhole covers alarm on displacement or loss; the case names the
    registered component, so it is dispatched to the component's owner (R-IN-8, R-AC-6)."""
    component = city_session.scalars(
        select(Component).where(Component.class_code == "01002").order_by(Component.identifier)
    ).first()
    assert component is not None
    cover = devices.sensor("manhole_cover", component_id=component.identifier)
    detail = devices.client.get(f"/api/v1/sensors/{cover}", headers=devices.auth("leader")).json()
    assert (detail["lon"], detail["lat"]) == (component.lon, component.lat)
    assert detail["class_code"] == "01002" and detail["unit"] == "deg"

    key = devices.key("sensor", device_code=cover)
    ok = devices.read(key, cover, value=2, unit="deg", ts=at(15, 0), signal="ok").json()
    assert ok["outcome"] == "normal"
    tilted = devices.read(key, cover, value=9, unit="deg", ts=at(15, 30), signal="tilt").json()
    assert tilted["outcome"] == "alarm"  # the signal alone raises it, below the 15° bar
    case = devices.case(tilted["case"]["id"])
    assert case["component_id"] == component.identifier
    assert "井盖倾斜位移" in case["description"]
    missing = devices.read(key, cover, value=0, unit="deg", ts=at(15, 40), signal="missing")
    assert missing.json()["case"]["id"] == case["id"]

    Desk(devices.client, auth).act("dispatcher", case["id"], "dispatch")
    owner = city_session.get(Component, component.identifier).owner_department_id
    assert devices.case(case["id"])["department_id"] == owner


def test_the_big_screen_sees_positions_and_states(devices, clock, city_session):
    """R-AN-1: sensors on the one map with their state (normal / alarm / silent)."""
    quiet, flooded, silent = (devices.sensor("water_level", YINGCUI) for _ in range(3))
    key = devices.key("sensor")
    clock.set(datetime(2026, 8, 27, 17, 0, tzinfo=TZ))
    devices.read(key, quiet, value=0.01, unit="m", ts=at(16, 58))
    devices.read(key, flooded, value=0.5, unit="m", ts=at(16, 59))
    devices.read(key, silent, value=0.02, unit="m", ts=at(16, 0))
    flagged = service.flag_silent_sensors(city_session, now=clock.now())
    assert silent in flagged and quiet not in flagged and flooded not in flagged

    listed = devices.client.get("/api/v1/sensors", headers=devices.auth("leader")).json()
    states = {s["code"]: s for s in listed}
    assert states[quiet]["state"] == "normal" and states[quiet]["open_case"] is None
    assert states[flooded]["state"] == "alarm" and states[flooded]["state_label"] == "报警"
    assert states[flooded]["open_case"]["state"] == "filed"
    assert states[flooded]["last_value"] == 0.5
    assert states[silent]["state"] == "silent" and states[silent]["silent_since"] is not None
    alarms = devices.client.get(
        "/api/v1/sensors", params={"state": "alarm"}, headers=devices.auth("leader")
    ).json()
    assert flooded in {s["code"] for s in alarms} and quiet not in {s["code"] for s in alarms}

    # The silent gauge speaks again: no longer silent.
    devices.read(key, silent, value=0.02, unit="m", ts=at(16, 59, 30))
    detail = devices.client.get(f"/api/v1/sensors/{silent}", headers=devices.auth("leader"))
    assert detail.json()["state"] == "normal"
    assert [r["outcome"] for r in detail.json()["readings"]] == ["normal", "normal"]
    stats = devices.client.get("/api/v1/iot/stats", headers=devices.auth("leader")).json()
    assert stats["sensors"]["alarm"] >= 1


def test_replays_and_late_readings_change_nothing(devices, clock, city_session):
    gauge = devices.sensor("water_level", YINGCUI)
    key = devices.key("sensor")
    clock.set(datetime(2026, 8, 27, 17, 0, tzinfo=TZ))
    first = devices.read(key, gauge, value=0.3, unit="m", ts=at(16, 50))
    replay = devices.read(key, gauge, value=0.3, unit="m", ts=at(16, 50))
    assert first.status_code == 201 and replay.status_code == 200
    assert replay.json()["outcome"] == "duplicate"
    late = devices.read(key, gauge, value=0.01, unit="m", ts=at(16, 40)).json()
    assert late["outcome"] == "late" and late["state"] == "alarm"  # an old reading: no recovery
    sensor = city_session.scalar(select(Sensor).where(Sensor.code == gauge))
    rows = city_session.scalar(
        select(func.count()).select_from(SensorReading).where(SensorReading.sensor_id == sensor.id)
    )
    assert rows == 2
    assert len(devices.case(first.json()["case"]["id"])["timeline"]) == 1


def test_bad_readings_get_a_clear_error_and_leave_nothing(devices, clock, city_session):
    gauge = devices.sensor("water_level", YINGCUI)
    key = devices.key("sensor")
    camera_key = devices.key("camera")
    other_gauge = devices.sensor("water_level", YINGCUI)
    bound = devices.key("sensor", device_code=other_gauge)
    good = {"value": 0.5, "unit": "m", "ts": at(16, 0)}
    before = city_session.scalar(select(func.count()).select_from(Case))

    checks = [
        (devices.read(None, gauge, **good), 401, "X-Api-Key"),
        (devices.read(camera_key, gauge, **good), 403, "X-Api-Key"),
        (devices.read(bound, gauge, **good), 403, None),
        (devices.read(key, "NO-SUCH-GAUGE", **good), 404, None),
        (devices.read(key, gauge, **{**good, "value": "0.5"}), 422, "value"),
        (devices.read(key, gauge, **{**good, "value": True}), 422, "value"),
        (devices.read(key, gauge, unit="m", ts=good["ts"]), 422, "value"),
        (devices.read(key, gauge, **{**good, "unit": "deg"}), 422, "unit"),
        (devices.read(key, gauge, **{**good, "ts": "soon"}), 422, "ts"),
        (devices.read(key, gauge, **{**good, "ts": "2027-08-27T16:00:00+08:00"}), 422, "ts"),
        (devices.read(key, gauge, **{**good, "signal": "smoke"}), 422, "signal"),
    ]
    for response, status, field in checks:
        assert response.status_code == status, response.text
        if field is not None:
            assert response.json()["field"] == field, response.text
    assert city_session.scalar(select(func.count()).select_from(Case)) == before
    sensor = city_session.scalar(select(Sensor).where(Sensor.code == gauge))
    assert sensor.last_reading_at is None and not sensor.in_alarm


def test_sensor_registration_refuses_bad_input(devices):
    lon, lat = devices.point(YINGCUI)
    admin = devices.auth("admin")

    def post(headers=admin, **body):
        payload = {"code": "WL-X1", "kind": "water_level", "name": "测试", "lon": lon, "lat": lat}
        response = devices.client.post("/api/v1/sensors", json={**payload, **body}, headers=headers)
        return response

    assert post(headers=devices.auth("dispatcher")).status_code == 403
    assert post(kind="thermometer").json()["field"] == "kind"
    assert post(code="a/b").json()["field"] == "code"
    assert post(code="a+b").json()["field"] == "code"  # '+' and '#' would break MQTT topics
    assert post(lon=121.47, lat=31.23).json()["field"] == "lon"
    assert post(lon=None, lat=None).json()["field"] == "lon"
    assert post(component_id="35020301002999999", lon=None, lat=None).json()["field"] == (
        "component_id"
    )
    assert post(class_code="06").json()["field"] == "class_code"  # a major class
    code = devices.sensor()
    assert post(code=code).status_code == 409
    patched = devices.client.patch(
        f"/api/v1/sensors/{code}", json={"threshold": 0.3}, headers=admin
    )
    assert patched.status_code == 200 and patched.json()["threshold"] == 0.3
    off = devices.client.patch(f"/api/v1/sensors/{code}", json={"active": False}, headers=admin)
    assert off.json()["active"] is False
    key = devices.key("sensor")
    assert devices.read(key, code, value=1, unit="m", ts=at(16, 0)).status_code == 404
    listed = devices.client.get("/api/v1/sensors", headers=devices.auth("leader")).json()
    assert code not in {s["code"] for s in listed}


# -- the contract, without a database ---------------------------------------------------------
NOW = datetime(2026, 8, 27, 9, 0, tzinfo=UTC)


def parse(payload: bytes | str) -> service.ReadingIn:
    return service.parse_reading(payload, timezone="Asia/Shanghai", now=NOW)


def test_the_payload_contract():
    reading = parse(b'{"value": 0.21, "unit": "m", "ts": "2026-08-27T16:55:00+08:00"}')
    assert reading == service.ReadingIn(0.21, "m", datetime(2026, 8, 27, 8, 55, tzinfo=UTC))
    naive = parse('{"value": 3, "unit": "deg", "ts": "2026-08-27T16:55:00", "signal": "tilt"}')
    assert naive.ts == datetime(2026, 8, 27, 8, 55, tzinfo=UTC)  # read in the city's time
    assert naive.signal == "tilt" and naive.value == 3.0
    zulu = parse('{"value": 1, "unit": "m", "ts": "2026-08-27T08:55:00Z", "extra": [1]}')
    assert zulu.ts == datetime(2026, 8, 27, 8, 55, tzinfo=UTC)  # unknown keys are ignored


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b"\xff\xfe", "payload"),
        (b"not json", "payload"),
        (b"[1, 2]", "payload"),
        (b'{"value": NaN, "unit": "m", "ts": "2026-08-27T08:55:00Z"}', "payload"),
        (b'{"value": "1", "unit": "m", "ts": "2026-08-27T08:55:00Z"}', "value"),
        (b'{"value": null, "unit": "m", "ts": "2026-08-27T08:55:00Z"}', "value"),
        (b'{"value": 1e999, "unit": "m", "ts": "2026-08-27T08:55:00Z"}', "value"),
        (b'{"value": 1, "ts": "2026-08-27T08:55:00Z"}', "unit"),
        (b'{"value": 1, "unit": "metres!!", "ts": "2026-08-27T08:55:00Z"}', "unit"),
        (b'{"value": 1, "unit": "m"}', "ts"),
        (b'{"value": 1, "unit": "m", "ts": 1756284900}', "ts"),
        (b'{"value": 1, "unit": "m", "ts": "27/08/2026"}', "ts"),
        (b'{"value": 1, "unit": "m", "ts": "2026-08-27T10:00:00Z"}', "ts"),  # an hour ahead
        (b'{"value": 1, "unit": "m", "ts": "2026-08-27T08:55:00Z", "signal": 3}', "signal"),
        (b"x" * 20000, "payload"),
    ],
)
def test_malformed_payloads_name_the_field(payload, field):
    with pytest.raises(ValidationFailed) as caught:
        parse(payload)
    assert caught.value.field == field


def test_topics():
    prefix = "cityloop/sensors"
    assert service.sensor_code_from_topic("cityloop/sensors/WL-SM-01/readings", prefix) == (
        "WL-SM-01"
    )
    for bad in (
        "cityloop/sensors/readings",
        "cityloop/sensors/a/b/readings",
        "cityloop/sensors/WL-SM-01/status",
        "other/sensors/WL-SM-01/readings",
    ):
        with pytest.raises(ValidationFailed):
            service.sensor_code_from_topic(bad, prefix)


def test_silence_is_judged_by_each_sensors_own_limit(devices, city_session, clock):
    slow = devices.sensor("water_level", YINGCUI, silent_after_minutes=240)
    fast = devices.sensor("water_level", YINGCUI, silent_after_minutes=10)
    later = clock.now() + timedelta(minutes=30)
    flagged = service.flag_silent_sensors(city_session, now=later)
    assert fast in flagged and slow not in flagged
    assert service.flag_silent_sensors(city_session, now=later) == []  # flagged once
