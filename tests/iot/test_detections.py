"""Camera AI detections (R-IN-7): a detection becomes a report with no person involved —
filed when the AI is sure, sent to verification when not; repeats of the same camera and kind
join the open case; replays and bad input change nothing."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import func, select
from tests.cases.helpers import YINGCUI
from tests.conftest import TZ
from tests.iot.conftest import YECUO

from cityloop.cases.models import Case
from cityloop.cases.service import Actor, device_actor
from cityloop.errors import ValidationFailed
from cityloop.intake.service import Report, receive
from cityloop.iot.models import Detection
from cityloop.iot.service import DEFAULT_DETECTION_KINDS
from cityloop.places.demo_xiamen import sample_point
from cityloop.taxonomy.service import get_class, working_calendar


def test_seed_002_the_camera_at_yecuo_market_reports_street_vending(devices, clock):
    """Seed 002: 27 August, 17:58:05, a camera at 叶厝菜市场 in 集美 reports a stall occupying
    the road, and the case appears on the platform with no person involved (R-IN-7)."""
    camera = devices.camera(YECUO, "叶厝菜市场东门", address="集美区侨英街道叶厝菜市场")
    key = devices.key("camera")
    clock.set(datetime(2026, 8, 27, 17, 58, 7, tzinfo=TZ))

    response = devices.detect(key, camera, "占道经营", 0.93, "2026-08-27T17:58:05+08:00")

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["outcome"] == "filed" and body["kind"] == "street_vending"
    case = devices.case(body["case"]["id"])
    assert case["state"] == "filed"  # confident enough: no verification round
    assert case["source"] == "video"
    assert case["class_code"] == "09006"  # 占道经营
    assert (case["district_name"], case["street_name"], case["community_name"]) == (
        "集美区",
        "侨英街道",
        "叶厝社区",
    )
    assert "叶厝菜市场东门" in case["description"] and "17:58:05" in case["description"]
    first = case["timeline"][0]
    assert first["action"] == "report" and first["photos"] == [body["snapshot"]]
    assert first["role"] == "device" and first["actor"] == "叶厝菜市场东门"
    snapshot = devices.client.get(
        f"/api/v1/media/{body['snapshot']}", headers=devices.auth("operator")
    )
    assert snapshot.status_code == 200 and snapshot.headers["content-type"] == "image/jpeg"


def test_low_confidence_goes_to_verification(devices):
    camera = devices.camera()
    key = devices.key("camera")
    body = devices.detect(key, camera, "bin_overflow", 0.55).json()
    assert body["outcome"] == "verify"
    assert devices.case(body["case"]["id"])["state"] == "reported"


def test_repeats_within_the_window_join_the_open_case(devices, clock, city_session):
    camera = devices.camera()
    key = devices.key("camera")
    clock.set(datetime(2026, 8, 27, 18, 30, tzinfo=TZ))
    first = devices.detect(key, camera, detected_at="2026-08-27T17:58:05+08:00").json()
    again = devices.detect(key, camera, detected_at="2026-08-27T18:04:05+08:00")
    assert again.status_code == 201
    assert again.json()["outcome"] == "joined"
    assert again.json()["case"]["id"] == first["case"]["id"]
    other_kind = devices.detect(
        key, camera, "exposed_garbage", detected_at="2026-08-27T18:05:00+08:00"
    )
    assert other_kind.json()["case"]["id"] != first["case"]["id"]

    case = devices.case(first["case"]["id"])
    repeat = case["timeline"][-1]
    assert repeat["action"] == "camera_repeat"
    assert repeat["photos"] == [again.json()["snapshot"]]
    assert repeat["payload"]["confidence"] == 0.93
    assert case["state"] == "filed"  # a repeat adds evidence, it does not move the case

    # The default window is two hours from the last detection on the case.
    clock.set(datetime(2026, 8, 27, 20, 10, tzinfo=TZ))
    later = devices.detect(key, camera, detected_at="2026-08-27T20:05:00+08:00")
    assert later.json()["outcome"] == "filed"
    assert later.json()["case"]["id"] != first["case"]["id"]


def test_a_closed_case_is_not_joined(devices, auth):
    camera = devices.camera()
    key = devices.key("camera")
    first = devices.detect(key, camera, confidence=0.5, detected_at="2026-08-27T15:00:00+08:00")
    case_id = first.json()["case"]["id"]
    rejected = devices.client.post(
        f"/api/v1/cases/{case_id}/actions/reject",
        json={"reason": "核实为合法摊点"},
        headers=auth("operator"),
    )
    assert rejected.status_code == 200, rejected.text
    again = devices.detect(key, camera, confidence=0.5, detected_at="2026-08-27T15:10:00+08:00")
    assert again.json()["outcome"] == "verify"
    assert again.json()["case"]["id"] != case_id


def test_a_replay_returns_the_first_answer_and_writes_nothing(devices, city_session):
    camera = devices.camera()
    key = devices.key("camera")
    first = devices.detect(key, camera)
    replay = devices.detect(key, camera)
    assert first.status_code == 201 and replay.status_code == 200
    assert replay.json()["replayed"] is True
    assert replay.json()["id"] == first.json()["id"]
    assert replay.json()["case"] == first.json()["case"]
    assert len(devices.case(first.json()["case"]["id"])["timeline"]) == 1
    count = city_session.scalar(
        select(func.count())
        .select_from(Detection)
        .where(Detection.case_id == first.json()["case"]["id"])
    )
    assert count == 1


def test_the_twelve_kinds_each_map_to_a_taxonomy_class(devices, city_session):
    """Seed 002: 200 camera feeds recognise 12 kinds of violation (R-IN-7, R-AC-5)."""
    assert len(DEFAULT_DETECTION_KINDS) == 12
    for _code, label, _en, class_code in DEFAULT_DETECTION_KINDS:
        assert get_class(city_session, class_code).level == "minor", label
    response = devices.client.get("/api/v1/detection-kinds", headers=devices.auth("operator"))
    by_label = {k["label"]: k["class_code"] for k in response.json()}
    assert by_label["占道经营"] == "09006"
    assert by_label["店外经营"] == "09005"
    assert by_label["游摊小贩"] == "09001"
    assert by_label["垃圾满溢"] == "06042"
    assert by_label["暴露垃圾"] == "06010"
    assert by_label["乱堆物料"] == "06036"
    assert by_label["乱张贴"] == "07001"
    assert by_label["乱悬挂"] == "06019"
    assert by_label["非机动车乱停放"] == "09010"


def test_an_administrator_tunes_a_kind(devices):
    camera = devices.camera()
    key = devices.key("camera")
    refused = devices.client.patch(
        "/api/v1/detection-kinds/bin_overflow",
        json={"file_confidence": 0.5},
        headers=devices.auth("operator"),
    )
    assert refused.status_code == 403
    tuned = devices.client.patch(
        "/api/v1/detection-kinds/bin_overflow",
        json={"file_confidence": 0.5},
        headers=devices.auth("admin"),
    )
    assert tuned.status_code == 200 and tuned.json()["file_confidence"] == 0.5
    assert devices.detect(key, camera, "bin_overflow", 0.55).json()["outcome"] == "filed"
    bad = devices.client.patch(
        "/api/v1/detection-kinds/bin_overflow",
        json={"class_code": "99999"},
        headers=devices.auth("admin"),
    )
    assert bad.status_code == 422 and bad.json()["field"] == "class_code"


def _cases(session) -> int:
    return session.scalar(select(func.count()).select_from(Case)) or 0


def test_bad_detections_get_a_clear_error_and_leave_nothing(devices, city_session):
    camera = devices.camera()
    other = devices.camera(YINGCUI, "明发商业广场")
    key = devices.key("camera")
    bound = devices.key("camera", device_code=other)
    sensor_key = devices.key("sensor")
    before = _cases(city_session)

    cases = [
        (devices.detect(None, camera), 401, "X-Api-Key"),
        (devices.detect("not-a-key-at-all", camera), 401, "X-Api-Key"),
        (devices.detect(sensor_key, camera), 403, "X-Api-Key"),
        (devices.detect(bound, camera), 403, None),
        (devices.detect(key, "NO-SUCH-CAMERA"), 422, "camera"),
        (devices.detect(key, camera, kind="spaceship"), 422, "kind"),
        (devices.detect(key, camera, confidence=1.5), 422, "confidence"),
        (devices.detect(key, camera, confidence="high"), 422, "confidence"),
        (devices.detect(key, camera, detected_at="yesterday"), 422, "detected_at"),
        (devices.detect(key, camera, detected_at="2027-01-01T00:00:00+08:00"), 422, "detected_at"),
        (devices.detect(key, camera, snapshot=b"%PDF-1.4 not a photo"), 422, "snapshot"),
        (devices.detect(key, camera, snapshot=b""), 422, "snapshot"),
    ]
    for response, status, field in cases:
        assert response.status_code == status, response.text
        if field is not None:
            assert response.json()["field"] == field, response.text
    missing = devices.client.post(
        "/api/v1/detections",
        data={
            "camera": camera,
            "kind": "street_vending",
            "confidence": "0.9",
            "detected_at": "2026-08-27T17:58:05+08:00",
        },
        headers={"X-Api-Key": key},
    )
    assert missing.status_code == 422 and missing.json()["field"] == "snapshot"
    assert "unknown detection kind" in cases[5][0].json()["detail"]
    assert "占道经营" in cases[5][0].json()["detail"]  # the error lists what is known
    assert _cases(city_session) == before
    assert not city_session.scalar(select(func.count()).select_from(Detection))

    devices.client.delete(
        f"/api/v1/device-keys/{_key_id(devices, key)}", headers=devices.auth("admin")
    )
    assert devices.detect(key, camera).status_code == 401  # revoked


def _key_id(devices, key: str) -> int:
    keys = devices.client.get("/api/v1/device-keys", headers=devices.auth("admin")).json()
    assert all("key" not in k for k in keys)  # only the prefix is ever shown again
    return next(k["id"] for k in keys if key.startswith(k["key_prefix"]))


def test_the_camera_registry_places_each_camera_in_its_grid(devices, city_places):
    code = devices.camera(YINGCUI, "明发商业广场")
    key = devices.key("camera")
    devices.detect(key, code)
    cameras = devices.client.get("/api/v1/cameras", headers=devices.auth("leader")).json()
    mine = next(c for c in cameras if c["code"] == code)
    location = city_places.locate(mine["lon"], mine["lat"])
    assert mine["unit_grid"] == location.unit_grid and mine["unit_grid"].startswith(YINGCUI)
    assert (mine["district"], mine["street"], mine["community"]) == ("350203", "350203011", YINGCUI)
    assert mine["open_cases"] == 1
    assert mine["last_detection_at"] is not None


def test_camera_registration_refuses_bad_input(devices):
    lon, lat = devices.point(YECUO)
    admin = devices.auth("admin")

    def post(headers=admin, **body):
        payload = {"code": "CAM-X1", "name": "测试", "lon": lon, "lat": lat, **body}
        return devices.client.post("/api/v1/cameras", json=payload, headers=headers)

    assert post(headers=devices.auth("operator")).status_code == 403
    assert post(code="CAM/1").json()["field"] == "code"
    assert post(lon=121.47, lat=31.23).json()["field"] == "lon"  # Shanghai, outside the city
    assert post(lat=91).json()["field"] == "lat"
    code = devices.camera()
    again = post(code=code)
    assert again.status_code == 409 and again.json()["field"] == "code"
    off = devices.client.patch(f"/api/v1/cameras/{code}", json={"active": False}, headers=admin)
    assert off.status_code == 200 and off.json()["active"] is False
    key = devices.key("camera")
    response = devices.detect(key, code)
    assert response.status_code == 422 and response.json()["field"] == "camera"


def test_only_devices_and_partners_may_ask_for_a_filed_start(city_session, city_places, clock):
    """The override the camera and sensor channels use (Report.initial_state) is not open to
    people: an operator's report starts where its source says."""
    lon, lat = sample_point(city_places, YECUO)
    calendar = working_calendar(city_session)

    def report(actor: Actor, state: str) -> Case:
        case, _ = receive(
            city_session,
            Report("video", "09006", "占道经营", lon, lat, initial_state=state),
            actor=actor,
            places=city_places,
            calendar=calendar,
            now=clock.now(),
        )
        return case

    with pytest.raises(ValidationFailed) as caught:
        report(Actor(None, "受理员", "operator"), "filed")
    assert caught.value.field == "initial_state"
    with pytest.raises(ValidationFailed):
        report(device_actor("摄像头"), "closed")
    assert report(device_actor("摄像头"), "filed").state == "filed"


def test_the_detections_list_is_for_the_command_centre(client, auth):
    """A department handler reads its own cases, not the city's camera feed (issue 7)."""
    assert client.get("/api/v1/detections", headers=auth("operator")).status_code == 200
    refused = client.get("/api/v1/detections", headers=auth("handler"))
    assert refused.status_code == 403
    assert "command centre" in refused.json()["detail"]
