"""The field force's API contract (R-AN-1, R-AN-4, R-IN-2): vehicles with their terminal
number and latest fix, track replay with the cases reported on the way, duty (上岗 / 下岗 /
请假 / 出格报备) and the out-of-grid alert, positions sent twice stored once, the roster's
"on shift now", and a sweeper's coverage of its road segments on a known route."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from cityloop.fleet import service
from cityloop.org.models import User
from cityloop.places.models import Region
from tests.cases.helpers import YINGCUI, point_in
from tests.conftest import TZ, jpeg_bytes

NOW = datetime(2026, 8, 27, 16, 5, tzinfo=TZ)  # the clock fixture


def _iso(at: datetime) -> str:
    return at.isoformat()


def _vehicle(client, auth, plate="闽D·HW101", kind="sweeper", phone="013912345601") -> dict:
    made = client.post(
        "/api/v1/vehicles",
        json={"plate": plate, "kind": kind, "terminal_phone": phone},
        headers=auth("admin"),
    )
    assert made.status_code == 201, made.text
    return made.json()


def _huli_point(city_session, city_places) -> tuple[float, float]:
    code = city_session.scalar(
        select(Region.code).where(Region.code.like("350206004___")).order_by(Region.code)
    )
    assert code is not None
    return point_in(city_places, code)


def test_vehicles_carry_their_terminal_number_and_latest_fix(client, auth, city_session) -> None:
    vehicle = _vehicle(client, auth)
    assert vehicle["terminal_phone"] == "013912345601" and vehicle["state"] == "never"
    fixes = [
        service.Fix(
            "vehicle",
            vehicle["id"],
            NOW - timedelta(minutes=m),
            118.11 + m / 1e4,
            24.48,
            "jt808",
            9.0,
        )
        for m in (3, 2, 1)
    ]
    service.store_fixes(city_session, fixes, NOW)
    listed = client.get("/api/v1/vehicles", headers=auth("shiftlead")).json()
    row = next(v for v in listed if v["id"] == vehicle["id"])
    assert (row["lon"], row["lat"], row["state"]) == (118.1101, 24.48, "online")
    assert datetime.fromisoformat(row["at"]) == NOW - timedelta(minutes=1)
    assert client.get("/api/v1/vehicles", headers=auth("inspector")).status_code == 403
    again = client.post(
        "/api/v1/vehicles",
        json={"plate": "闽D·X", "kind": "sweeper", "terminal_phone": "13912345601"},
        headers=auth("admin"),
    )
    assert again.status_code == 409 and again.json()["field"] == "terminal_phone"
    bad = client.post(
        "/api/v1/vehicles",
        json={"plate": "闽D·Y", "kind": "sweeper", "terminal_phone": "13A"},
        headers=auth("admin"),
    )
    assert bad.status_code == 422 and bad.json()["field"] == "terminal_phone"


def test_track_replay_of_a_period_leaves_out_jumps(client, auth, city_session) -> None:
    vehicle = _vehicle(client, auth)
    start = NOW - timedelta(hours=2)
    fixes = [
        service.Fix(
            "vehicle",
            vehicle["id"],
            start + timedelta(minutes=i),
            118.10 + i * 0.001,
            24.48,
            "jt808",
            10.0,
        )
        for i in range(30)
    ]
    # A fix 40 km away a minute later: a jump, kept but never drawn.
    fixes.append(
        service.Fix(
            "vehicle",
            vehicle["id"],
            start + timedelta(minutes=30, seconds=5),
            118.5,
            24.48,
            "jt808",
        )
    )
    stored = service.store_fixes(city_session, fixes, NOW)
    assert (stored.stored, stored.flagged) == (31, 1)
    track = client.get(
        f"/api/v1/vehicles/{vehicle['id']}/track",
        params={
            "from": _iso(start + timedelta(minutes=10)),
            "to": _iso(start + timedelta(hours=1)),
        },
        headers=auth("shiftlead"),
    )
    assert track.status_code == 200, track.text
    points = track.json()["points"]
    assert len(points) == 20 and points[0]["lon"] == 118.11
    assert all(p["lon"] < 118.2 for p in points)
    assert 1.9 < track.json()["distance_km"] < 2.1
    wrong = client.get(
        f"/api/v1/vehicles/{vehicle['id']}/track",
        params={"from": _iso(NOW), "to": _iso(NOW - timedelta(hours=1))},
        headers=auth("shiftlead"),
    )
    assert wrong.status_code == 422 and wrong.json()["field"] == "to"


def test_duty_out_of_grid_alert_and_positions_sent_twice(
    client, auth, city_session, city_places
) -> None:
    inspector = auth("inspector")
    inside = point_in(city_places, YINGCUI)
    outside = _huli_point(city_session, city_places)
    assert (
        client.post("/api/v1/me/duty", json={"status": "on"}, headers=inspector).status_code == 200
    )
    batch = {
        "positions": [
            {"lon": inside[0], "lat": inside[1], "at": _iso(NOW - timedelta(minutes=61))},
            {"lon": inside[0] + 0.0003, "lat": inside[1], "at": _iso(NOW - timedelta(minutes=60))},
        ]
    }
    first = client.post("/api/v1/me/positions", json=batch, headers=inspector)
    assert first.status_code == 201 and first.json()["stored"] == 2
    # The phone lost the answer and resends its buffer: nothing is stored twice.
    resent = client.post("/api/v1/me/positions", json=batch, headers=inspector)
    assert resent.json() == {"stored": 0, "duplicates": 2, "refused": 0, "flagged": 0}
    assert client.get("/api/v1/fleet/alerts", headers=auth("shiftlead")).json() == []

    # An hour later (by bus, 11 km away) in 湖里区 江头街道, still on duty, no 出格报备.
    away = {
        "positions": [
            {"lon": outside[0], "lat": outside[1], "at": _iso(NOW - timedelta(seconds=30))}
        ]
    }
    assert client.post("/api/v1/me/positions", json=away, headers=inspector).json()["stored"] == 1
    alerts = client.get("/api/v1/fleet/alerts", headers=auth("shiftlead")).json()
    assert [(a["kind"], a["subject"]) for a in alerts] == [("out_of_grid", "person")]
    assert "未出格报备" in alerts[0]["message"]
    people = client.get("/api/v1/people/positions", headers=auth("shiftlead")).json()
    me = next(p for p in people if p["name"].startswith("网格员 张伟"))
    assert (me["duty"], me["in_grid"], me["lon"]) == ("on", False, outside[0])

    no_reason = client.post("/api/v1/me/duty", json={"status": "out_of_grid"}, headers=inspector)
    assert no_reason.status_code == 422 and no_reason.json()["field"] == "reason"
    reported = client.post(
        "/api/v1/me/duty",
        json={"status": "out_of_grid", "reason": "支援江头街道夜市整治"},
        headers=inspector,
    )
    assert reported.status_code == 200 and reported.json()["status"] == "out_of_grid"
    assert client.get("/api/v1/fleet/alerts", headers=auth("shiftlead")).json() == []
    # 出格报备 made, further fixes outside raise nothing.
    later = {"positions": [{"lon": outside[0], "lat": outside[1] + 0.0002, "at": _iso(NOW)}]}
    client.post("/api/v1/me/positions", json=later, headers=inspector)
    assert client.get("/api/v1/fleet/alerts", headers=auth("shiftlead")).json() == []
    off = client.post("/api/v1/me/duty", json={"status": "off"}, headers=inspector)
    assert off.json()["status"] == "off"
    twice = client.post("/api/v1/me/duty", json={"status": "off"}, headers=inspector)
    assert twice.status_code == 409


def test_bad_fixes_from_the_app_are_refused(client, auth) -> None:
    inspector = auth("inspector")
    client.post("/api/v1/me/duty", json={"status": "on"}, headers=inspector)
    body = {
        "positions": [
            {"lon": 118.1, "lat": 24.48, "at": _iso(NOW + timedelta(days=1))},
            {"lon": 118.1, "lat": 24.48, "at": _iso(NOW - timedelta(days=400))},
            {"lon": 0, "lat": 0, "at": _iso(NOW)},
        ]
    }
    answer = client.post("/api/v1/me/positions", json=body, headers=inspector)
    assert answer.json() == {"stored": 0, "duplicates": 0, "refused": 3, "flagged": 0}
    impossible = client.post(
        "/api/v1/me/positions",
        json={"positions": [{"lon": 500, "lat": 24, "at": _iso(NOW)}]},
        headers=inspector,
    )
    assert impossible.status_code == 422 and impossible.json()["field"].startswith("positions")


def test_person_track_shows_the_cases_reported_along_it(
    client, auth, city_places, city_session
) -> None:
    inspector = auth("inspector")
    lon, lat = point_in(city_places, YINGCUI)
    client.post("/api/v1/me/duty", json={"status": "on"}, headers=inspector)
    points = [
        {"lon": lon + i * 0.0002, "lat": lat, "at": _iso(NOW - timedelta(minutes=20 - i))}
        for i in range(10)
    ]
    client.post("/api/v1/me/positions", json={"positions": points}, headers=inspector)
    report = client.post(
        "/api/v1/inspector/reports",
        data={
            "class_code": "06036",
            "description": "人行道乱堆杂物",
            "lon": str(lon),
            "lat": str(lat),
        },
        files=[("photos", ("p.jpg", jpeg_bytes(), "image/jpeg"))],
        headers=inspector,
    )
    assert report.status_code == 201, report.text
    me = city_session.scalar(select(User).where(User.username == "inspector"))
    assert me is not None
    track = client.get(
        f"/api/v1/people/{me.id}/track",
        params={"from": _iso(NOW - timedelta(hours=1)), "to": _iso(NOW + timedelta(minutes=1))},
        headers=auth("shiftlead"),
    ).json()
    assert len(track["points"]) == 10
    assert [c["ticket"] for c in track["cases"]] == [report.json()["ticket"]]
    patrol = client.get(
        f"/api/v1/people/{me.id}/patrol",
        params={"from": _iso(NOW - timedelta(hours=1)), "to": _iso(NOW + timedelta(minutes=1))},
        headers=auth("shiftlead"),
    ).json()
    assert patrol["fixes"] == 10 and patrol["grids_visited"] >= 1 and patrol["grids_assigned"] > 1
    assert 0 < patrol["grid_share"] < 1
    assert 0.15 < patrol["distance_km"] < 0.22
    assert patrol["duty_minutes"] == 1.0  # 上岗 at 16:05 by the clock, period to 16:06


def test_the_hotline_desk_sees_who_is_on_shift_now(client, auth, city_session) -> None:
    users = {u.username: u.id for u in city_session.scalars(select(User))}
    lead = auth("shiftlead")
    night = NOW.replace(hour=20, minute=0)
    shifts = [
        ("operator", NOW.replace(hour=8, minute=0), NOW.replace(hour=20, minute=0)),
        ("dispatcher", NOW.replace(hour=8, minute=0), NOW.replace(hour=20, minute=0)),
        ("shiftlead", night, night + timedelta(hours=12)),  # across midnight
    ]
    made = []
    for name, start, end in shifts:
        answer = client.post(
            "/api/v1/rosters",
            json={
                "team": "hotline",
                "user_id": users[name],
                "starts_at": _iso(start),
                "ends_at": _iso(end),
            },
            headers=lead,
        )
        assert answer.status_code == 201, answer.text
        made.append(answer.json())
    now = client.get(
        "/api/v1/rosters/now", params={"team": "hotline"}, headers=auth("operator")
    ).json()
    assert sorted(s["user_id"] for s in now) == sorted([users["operator"], users["dispatcher"]])
    overlap = client.post(
        "/api/v1/rosters",
        json={
            "team": "hotline",
            "user_id": users["operator"],
            "starts_at": _iso(NOW),
            "ends_at": _iso(NOW + timedelta(hours=1)),
        },
        headers=lead,
    )
    assert overlap.status_code == 409
    leave = client.post(
        f"/api/v1/rosters/{made[1]['id']}/leave", json={"reason": "病假"}, headers=lead
    )
    assert leave.json()["status"] == "leave"
    swap = client.post(
        f"/api/v1/rosters/{made[0]['id']}/swap", json={"user_id": users["leader"]}, headers=lead
    )
    assert (
        swap.json()["user_id"] == users["leader"]
        and swap.json()["swapped_from_id"] == users["operator"]
    )
    now = client.get(
        "/api/v1/rosters/now", params={"team": "hotline"}, headers=auth("operator")
    ).json()
    assert [s["user_id"] for s in now] == [users["leader"]]
    assert client.post("/api/v1/rosters", json={}, headers=auth("operator")).status_code in (
        403,
        422,
    )
    service_now = service.on_shift(city_session, "hotline", night + timedelta(hours=6))
    assert [u.username for _s, u in service_now] == ["shiftlead"]


def test_sweeper_coverage_on_a_known_route(client, auth, city_session) -> None:
    vehicle = _vehicle(client, auth, plate="闽D·HW201", phone="013912345602")

    # Three segments east-west along one latitude, each ~300 m.
    def line(x0: float) -> list[list[float]]:
        return [[x0, 24.48], [x0 + 0.003, 24.48]]

    features = [
        {
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": line(118.10 + i * 0.004)},
            "properties": {
                "code": f"SM-R{i}",
                "name": f"测试路{i}",
                "district_code": "350203",
                "plate": "闽D·HW201",
            },
        }
        for i in range(3)
    ]
    imported = client.post(
        "/api/v1/road-segments",
        json={"type": "FeatureCollection", "features": features},
        headers=auth("admin"),
    )
    assert imported.status_code == 201, imported.text
    assert all(280 < s["length_m"] < 320 for s in imported.json())
    start = NOW - timedelta(hours=3)
    fixes = []
    # Segment 0 swept at 8 km/h (a fix every 10 s ≈ 22 m); segment 1 driven through at 40 km/h.
    for i in range(14):
        fixes.append(
            service.Fix(
                "vehicle",
                vehicle["id"],
                start + timedelta(seconds=10 * i),
                118.10 + i * 0.00023,
                24.48,
                "jt808",
                8.0,
            )
        )
    for i in range(8):
        fixes.append(
            service.Fix(
                "vehicle",
                vehicle["id"],
                start + timedelta(minutes=10, seconds=4 * i),
                118.104 + i * 0.0004,
                24.48,
                "jt808",
                40.0,
            )
        )
    service.store_fixes(city_session, fixes, NOW)
    answer = client.get(
        f"/api/v1/vehicles/{vehicle['id']}/coverage",
        params={"from": _iso(NOW.replace(hour=0, minute=0)), "to": _iso(NOW)},
        headers=auth("shiftlead"),
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [s["code"] for s in body["covered"]] == ["SM-R0"]
    assert [s["code"] for s in body["missed"]] == ["SM-R1", "SM-R2"]
    assert body["rate"] == 0.333
    bad = client.post(
        "/api/v1/road-segments",
        json={
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [1, 2]},
                    "properties": {"code": "x"},
                }
            ],
        },
        headers=auth("admin"),
    )
    assert bad.status_code == 422 and bad.json()["field"] == "features.0.geometry"
