"""Intake channels on the one path (R-IN-1..4, R-AC-1, R-AC-5, R-CL-4): the inspector app with
photos and a voice note, citizens with a map pin or an address, the hotline desk with
consultations, positions of inspectors, and a text that chooses its own class."""

from __future__ import annotations

from datetime import datetime

from tests.cases.helpers import YINGCUI, Desk, point_in
from tests.conftest import TZ, jpeg_bytes


def _photo(name="p.jpg", color="gray"):
    return ("photos", (name, jpeg_bytes(color), "image/jpeg"))


def test_inspector_app_report_with_photos_and_voice(client, auth, city_places):
    lon, lat = point_in(city_places, YINGCUI)
    form = {
        "class_code": "06036",
        "description": "人行道乱堆杂物",
        "lon": str(lon),
        "lat": str(lat),
        "urgency": "A",
    }
    files = [
        _photo("a.jpg", "red"),
        _photo("b.jpg", "blue"),
        ("voice", ("note.amr", b"#!AMR\n" + b"\x00" * 200, "audio/amr")),
    ]
    headers = {**auth("inspector"), "Idempotency-Key": "phone-7-0001"}
    created = client.post("/api/v1/inspector/reports", data=form, files=files, headers=headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["state"] == "pending_filing" and body["class_code"] == "06036"
    case = client.get(f"/api/v1/cases/{body['id']}", headers=auth("operator")).json()
    report = case["timeline"][0]
    assert len(report["photos"]) == 2 and report["payload"]["voice"].startswith("m")
    photo = client.get(f"/api/v1/media/{report['photos'][0]}", headers=auth("operator"))
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    # The phone lost the answer and sends again: the same case, no second one.
    again = client.post("/api/v1/inspector/reports", data=form, files=files, headers=headers)
    assert again.json()["id"] == body["id"]


def test_inspector_report_with_a_bad_photo_leaves_no_case(client, auth, city_places):
    lon, lat = point_in(city_places, YINGCUI)
    before = client.get("/api/v1/cases", headers=auth("admin")).json()["total"]
    form = {"class_code": "06010", "description": "暴露垃圾", "lon": str(lon), "lat": str(lat)}
    files = [_photo("ok.jpg"), ("photos", ("fake.jpg", b"<html>not a photo</html>", "image/jpeg"))]
    refused = client.post(
        "/api/v1/inspector/reports", data=form, files=files, headers=auth("inspector")
    )
    assert refused.status_code == 422
    assert refused.json()["field"] == "photos.1" and "fake.jpg" in refused.json()["detail"]
    too_many = [_photo(f"{i}.jpg") for i in range(10)]
    refused = client.post(
        "/api/v1/inspector/reports", data=form, files=too_many, headers=auth("inspector")
    )
    assert refused.status_code == 422 and "at most 9" in refused.json()["detail"]
    no_photo = client.post("/api/v1/inspector/reports", data=form, headers=auth("inspector"))
    assert no_photo.status_code == 422 and no_photo.json()["field"] == "photos"
    citizen_tries = client.post(
        "/api/v1/inspector/reports", data=form, files=[_photo()], headers=auth("handler")
    )
    assert citizen_tries.status_code == 403
    assert client.get("/api/v1/cases", headers=auth("admin")).json()["total"] == before


def test_citizen_reports_by_address_tracks_and_rates(client, auth, clock, city_session):
    form = {
        "description": "明发商业广场门口污水横溢",
        "phone": "13912340001",
        "address": "厦门市思明区明发商业广场",
        "channel": "wechat",
    }
    created = client.post("/api/v1/citizen/reports", data=form, files=[_photo()])
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["class_code"] == "21004" and body["class_confirmed"] is False
    case = client.get(f"/api/v1/cases/{body['id']}", headers=auth("admin")).json()
    assert case["community_name"] == "盈翠社区"
    assert case["timeline"][0]["payload"]["located_by"]["matched"] == "明发商业广场"
    assert case["timeline"][0]["payload"]["class_suggestions"][0]["name"] == "污水冒溢"
    # Others than the desks see the phone masked.
    assert (
        client.get(f"/api/v1/cases/{body['id']}", headers=auth("dispatcher")).json()[
            "reporter_phone"
        ]
        == "139****0001"
    )
    assert case["reporter_phone"] == "13912340001"

    desk = Desk(client, auth)
    case_id = body["id"]
    desk.act("operator", case_id, "send_to_verify")
    desk.act("inspector", case_id, "verify", confirmed=True, photos=["v.jpg"])
    filed = desk.act("operator", case_id, "file", class_code="21004")
    assert filed["class_confirmed"] is True
    desk.act("dispatcher", case_id, "dispatch")
    desk.act(
        "handler_water",
        case_id,
        "submit_result",
        result="已疏通",
        method="service",
        photos=["after.jpg"],
    )
    desk.act("dispatcher", case_id, "approve_result")
    desk.act("inspector", case_id, "report_check", passed=True, photos=["check.jpg"])
    desk.act("operator", case_id, "close")

    wrong = client.post(
        f"/api/v1/tickets/{body['ticket']}/rating", json={"phone": "13900000000", "satisfied": True}
    )
    assert wrong.status_code == 404
    rated = client.post(
        f"/api/v1/tickets/{body['ticket']}/rating",
        json={"phone": "13912340001", "satisfied": True, "comment": "处理很快"},
    )
    assert rated.status_code == 200 and rated.json()["state"] == "archived"
    tracked = client.get(f"/api/v1/tickets/{body['ticket']}").json()
    assert tracked["state_label"] == "已归档"
    assert "13912340001" not in str(tracked)


def test_citizen_input_errors(client, city_places):
    lon, lat = point_in(city_places, YINGCUI)
    cases = [
        ({"description": "垃圾", "phone": "12345", "lon": lon, "lat": lat}, "phone"),
        ({"description": "垃圾", "phone": "13912340002", "address": "火星路1号"}, "address"),
        ({"description": "垃圾", "phone": "13912340002"}, "lon"),
        (
            {"description": "今天天气不错", "phone": "13912340002", "lon": lon, "lat": lat},
            "class_code",
        ),
        ({"description": "垃圾", "phone": "13912340002", "lon": lon}, "lat"),
        (
            {
                "description": "垃圾",
                "phone": "13912340002",
                "lon": lon,
                "lat": lat,
                "channel": "fax",
            },
            "channel",
        ),
    ]
    for form, field in cases:
        response = client.post("/api/v1/citizen/reports", data={k: str(v) for k, v in form.items()})
        assert response.status_code == 422, (form, response.text)
        assert response.json()["field"] == field, (form, response.json())


def test_a_phone_may_report_ten_times_an_hour(client, city_places):
    lon, lat = point_in(city_places, YINGCUI)
    for index in range(10):
        form = {
            "description": "暴露垃圾",
            "phone": "13912340003",
            "lon": str(lon + index * 0.001),
            "lat": str(lat),
            "class_code": "06010",
        }
        assert client.post("/api/v1/citizen/reports", data=form).status_code == 201
    refused = client.post("/api/v1/citizen/reports", data=form)
    assert refused.status_code == 429 and refused.json()["field"] == "phone"


def test_hotline_consultation_has_no_case_and_complaints_do(client, auth, city_places):
    before = client.get("/api/v1/cases", headers=auth("admin")).json()["total"]
    consult = {
        "line": "12319",
        "kind": "consultation",
        "caller_phone": "13800001111",
        "text": "咨询：占道经营如何举报？",
        "answer": "可拨打12319或通过微信公众号上报",
    }
    answered = client.post("/api/v1/hotline/calls", json=consult, headers=auth("operator"))
    assert answered.status_code == 201 and answered.json()["status"] == "answered"
    assert answered.json()["case_id"] is None
    no_answer = client.post(
        "/api/v1/hotline/calls", json={**consult, "answer": None}, headers=auth("operator")
    )
    assert no_answer.status_code == 422 and no_answer.json()["field"] == "answer"
    assert client.get("/api/v1/cases", headers=auth("admin")).json()["total"] == before

    complaint = {
        "line": "12345",
        "kind": "case",
        "caller_phone": "13800002222",
        "caller_name": "黄先生",
        "text": "厦禾路1108号一套改多套，违规分隔出租",
        "address": "厦禾路1108号",
    }
    made = client.post("/api/v1/hotline/calls", json=complaint, headers=auth("operator")).json()
    assert made["status"] == "case_created" and made["ticket"]
    case = client.get(f"/api/v1/cases/{made['case_id']}", headers=auth("operator")).json()
    assert case["source"] == "hotline_12345" and case["class_code"] == "22002"
    assert case["street_name"] == "梧村街道"

    unknown_place = {**complaint, "address": "老地方那个菜市场后面", "caller_phone": "13800003333"}
    waiting = client.post(
        "/api/v1/hotline/calls", json=unknown_place, headers=auth("operator")
    ).json()
    assert waiting["status"] == "waiting_location" and waiting["case_id"] is None
    lon, lat = point_in(city_places, YINGCUI)
    placed = client.post(
        f"/api/v1/hotline/calls/{waiting['id']}/place",
        json={"lon": lon, "lat": lat},
        headers=auth("operator"),
    )
    assert placed.status_code == 200 and placed.json()["status"] == "case_created"
    twice = client.post(
        f"/api/v1/hotline/calls/{waiting['id']}/place",
        json={"lon": lon, "lat": lat},
        headers=auth("operator"),
    )
    assert twice.status_code == 409
    listed = client.get("/api/v1/hotline/calls", headers=auth("shiftlead")).json()
    assert listed["total"] >= 3
    assert client.get("/api/v1/hotline/calls", headers=auth("dispatcher")).status_code == 403


def test_inspector_positions_and_the_centre_sees_the_last(client, auth, city_places):
    lon, lat = point_in(city_places, YINGCUI)
    points = [{"lon": lon, "lat": lat, "at": f"2026-08-27T09:0{i}:00+08:00"} for i in range(3)]
    stored = client.post(
        "/api/v1/inspector/positions", json={"positions": points}, headers=auth("inspector")
    )
    assert stored.status_code == 201 and stored.json()["stored"] == 3
    latest = client.get("/api/v1/inspectors/positions", headers=auth("leader")).json()
    mine = [p for p in latest if p["name"].startswith("网格员 张伟")]
    assert len(mine) == 1
    assert datetime.fromisoformat(mine[0]["at"]) == datetime(2026, 8, 27, 9, 2, tzinfo=TZ)
    bad = client.post(
        "/api/v1/inspector/positions",
        json={"positions": [{"lon": 500, "lat": lat, "at": "2026-08-27T09:00:00Z"}]},
        headers=auth("inspector"),
    )
    assert bad.status_code == 422 and bad.json()["field"].startswith("positions.0.lon")
    assert (
        client.post(
            "/api/v1/inspector/positions", json={"positions": points}, headers=auth("handler")
        ).status_code
        == 403
    )


def test_leaders_read_the_calls_with_callers_masked(client, auth):
    """R-IN-4: the desk sees the caller to call back; a leader supervising it sees the call
    but not who made it — the same rule as the console's list of the day's calls."""
    call = {
        "line": "12319",
        "kind": "consultation",
        "caller_phone": "13912345678",
        "caller_name": "陈小明",
        "text": "咨询：门前三包怎么落实？",
        "answer": "由沿街单位负责门前市容、环境卫生和秩序",
    }
    made = client.post("/api/v1/hotline/calls", json=call, headers=auth("operator"))
    assert made.status_code == 201
    desk = client.get("/api/v1/hotline/calls", headers=auth("operator")).json()["items"]
    leader = client.get("/api/v1/hotline/calls", headers=auth("leader")).json()["items"]
    seen = next(c for c in desk if c["id"] == made.json()["id"])
    masked = next(c for c in leader if c["id"] == made.json()["id"])
    assert seen["caller_phone"] == "13912345678" and seen["caller_name"] == "陈小明"
    assert masked["caller_phone"] == "139****5678" and masked["caller_name"] == "陈**"
    assert masked["text"] == call["text"]
