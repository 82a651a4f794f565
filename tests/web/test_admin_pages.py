"""The administrator's pages for the organisation and the devices: departments, users,
responsibility rules, partner keys, cameras, sensors, device keys and the places import.

Form posts through the pages on SQLite and PostgreSQL (each test rolled back), and one browser
walk on the live server: a department and a user made in the pages, and that user logging in
to their desk."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityloop.cases.models import Case
from cityloop.cases.service import suggested_department
from cityloop.iot.service import ReadingIn, record_reading
from cityloop.org.models import Department, ResponsibilityRule, User
from cityloop.places.models import UnitGrid
from cityloop.taxonomy.service import working_calendar
from tests.cases.helpers import YINGCUI, point_in
from tests.web.conftest import (
    SCREENSHOTS,
    LiveServer,
    csrf_of,
    department_id,
    form_login,
    login,
)

JIALIAN = "350203011"  # 嘉莲街道


def _error_under(html: str, field: str) -> str:
    match = re.search(rf'class="field-error" data-field="{field}">([^<]+)<', html)
    assert match, f"no message under {field}"
    return match.group(1)


def _dept_id(session: Session, code: str) -> int:
    found = session.scalar(select(Department.id).where(Department.code == code))
    assert found is not None, code
    return int(found)


def _new_department(client: TestClient, token: str, session: Session, code: str) -> int:
    made = client.post(
        "/admin/departments",
        data={
            "csrf_token": token,
            "code": code,
            "name": "盈翠社区环卫保洁组",
            "kind": "professional",
            "parent_id": str(_dept_id(session, "D-350203011")),
            "region_code": YINGCUI,
        },
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    return int(made.headers["location"].split("/")[3].split("?")[0])


def _inspector_report(
    client: TestClient, auth: Any, places: Any, text: str, shift: float = 0.0
) -> dict[str, Any]:
    lon, lat = point_in(places, YINGCUI)
    lon += shift  # ~70 m per 0.0007°: a second report is not a duplicate of the first
    response = client.post(
        "/api/v1/reports",
        json={
            "source": "inspector",
            "class_code": "07001",
            "description": text,
            "lon": lon,
            "lat": lat,
        },
        headers=auth("inspector"),
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_a_rule_made_in_the_page_routes_the_next_matching_case(
    client: TestClient, auth: Any, city_places: Any, city_session: Session
) -> None:
    """R-DIS-1: responsibility is data the administrator edits. A rule (class × region →
    department, auto-dispatch) made in the page sends the next inspector's report straight to
    that department; without auto-dispatch it is only suggested; deleted, it no longer is."""
    token = form_login(client, "admin")
    dept = _new_department(client, token, city_session, "D-YC-HW")
    page = client.get(f"/admin/departments/{dept}?saved=1")
    assert page.status_code == 200 and "已保存" in page.text and "盈翠社区环卫保洁组" in page.text

    bad = client.post(
        "/admin/rules",
        data={
            "csrf_token": token,
            "class_prefix": "07x",
            "region_prefix": YINGCUI,
            "department_id": str(dept),
            "auto_dispatch": "yes",
            "note": "小广告专项",
        },
    )
    assert bad.status_code == 422
    assert "class_prefix" in _error_under(bad.text, "class_prefix")
    assert 'value="小广告专项"' in bad.text  # what was typed stays
    assert (
        city_session.scalar(
            select(ResponsibilityRule.id).where(ResponsibilityRule.department_id == dept)
        )
        is None
    )

    made = client.post(
        "/admin/rules",
        data={
            "csrf_token": token,
            "class_prefix": "07001",
            "region_prefix": YINGCUI,
            "department_id": str(dept),
            "auto_dispatch": "yes",
            "note": "小广告专项",
        },
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    rule_id = int(made.headers["location"].split("saved=")[1].split("#")[0])
    listed = client.get("/admin/rules").text
    assert f'id="rule-{rule_id}"' in listed and "盈翠社区环卫保洁组" in listed

    first = _inspector_report(client, auth, city_places, "灯杆上贴满小广告（规则一）")
    case = city_session.get(Case, first["id"])
    assert (case.state, case.department_id) == ("dispatched", dept)

    # Only a suggestion now: the next report waits at the desks, with this department named.
    edited = client.post(
        f"/admin/rules/{rule_id}",
        data={
            "csrf_token": token,
            "class_prefix": "07001",
            "region_prefix": YINGCUI,
            "department_id": str(dept),
            "note": "小广告专项",
        },
        follow_redirects=False,
    )
    assert edited.status_code == 303
    second = _inspector_report(client, auth, city_places, "墙上又贴了小广告（规则二）", 0.0007)
    case = city_session.get(Case, second["id"])
    assert case.state == "pending_filing"
    assert suggested_department(city_session, case).id == dept

    deleted = client.post(
        f"/admin/rules/{rule_id}/delete", data={"csrf_token": token}, follow_redirects=False
    )
    assert deleted.status_code == 303
    city_session.expire_all()
    assert suggested_department(city_session, case).id != dept


def test_a_partner_key_issued_in_the_page_is_accepted_and_revoked(
    client: TestClient, city_places: Any
) -> None:
    """R-IN-5 / R-DX-1: a partner platform registered in the page; its key, shown once,
    authenticates a forwarded report; revoked, it does not."""
    token = form_login(client, "admin")
    bad = client.post(
        "/admin/partners",
        data={
            "csrf_token": token,
            "code": "Siming 12345",
            "name": "思明区12345分中心",
            "source": "partner_12345",
        },
    )
    assert bad.status_code == 422 and _error_under(bad.text, "code")
    assert 'value="思明区12345分中心"' in bad.text

    made = client.post(
        "/admin/partners",
        data={
            "csrf_token": token,
            "code": "12345-siming",
            "name": "思明区12345分中心",
            "source": "partner_12345",
            "webhook_url": "",
        },
    )
    assert made.status_code == 200
    key = re.search(r'<code id="new-key">([^<]+)</code>', made.text)
    assert key, "the key is shown once"
    partner_id = int(re.search(r'action="/admin/partners/(\d+)/key"', made.text).group(1))
    assert key.group(1) not in client.get(f"/admin/partners/{partner_id}").text

    lon, lat = point_in(city_places, YINGCUI)
    body = {
        "ticket_id": "SM-0001",
        "class_code": "06010",
        "description": "路边垃圾无人清理",
        "lon": lon,
        "lat": lat,
    }
    sent = client.post("/api/v1/partners/reports", json=body, headers={"X-Api-Key": key.group(1)})
    assert sent.status_code == 201, sent.text

    revoked = client.post(
        f"/admin/partners/{partner_id}/key/revoke",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert revoked.status_code == 303
    assert "已吊销" in client.get(f"/admin/partners/{partner_id}").text
    again = client.post(
        "/api/v1/partners/reports",
        json={**body, "ticket_id": "SM-0002"},
        headers={"X-Api-Key": key.group(1)},
    )
    assert again.status_code == 401


def test_a_sensor_made_in_the_page_raises_a_case_over_its_threshold(
    client: TestClient, city_places: Any, city_session: Session, clock: Any
) -> None:
    """R-IN-8: a water gauge registered in the page with its alarm threshold; a reading over
    it files a case; a device key issued in the page lets it post readings itself."""
    token = form_login(client, "admin")
    lon, lat = point_in(city_places, YINGCUI)
    typed = {
        "csrf_token": token,
        "code": "WL-YC-01",
        "kind": "water_level",
        "name": "盈翠路涵洞水尺",
        "lon": str(lon),
        "lat": str(lat),
        "threshold": "三十厘米",
        "silent_after_minutes": "30",
    }
    bad = client.post("/admin/sensors", data=typed)
    assert bad.status_code == 422 and _error_under(bad.text, "threshold") == "请输入数字"
    assert 'value="盈翠路涵洞水尺"' in bad.text

    outside = client.post("/admin/sensors", data={**typed, "threshold": "0.3", "lon": "100.0"})
    assert outside.status_code == 422 and "outside" in _error_under(outside.text, "lon")

    made = client.post("/admin/sensors", data={**typed, "threshold": "0.3"}, follow_redirects=False)
    assert made.status_code == 303, made.text
    page = client.get("/admin/sensors/WL-YC-01").text
    assert 'value="0.3"' in page and "正常" in page

    result = record_reading(
        city_session,
        "WL-YC-01",
        ReadingIn(0.42, "m", clock.now() - timedelta(minutes=1)),
        places=city_places,
        calendar=working_calendar(city_session),
        now=clock.now(),
    )
    assert result.outcome == "alarm" and result.case_created
    assert result.case is not None and result.case.source == "sensor"
    page = client.get("/admin/sensors/WL-YC-01").text
    assert result.case.ticket in page and "报警" in page

    # Raise the threshold in the page; a device key bound to the gauge posts a reading under it.
    raised = client.post(
        "/admin/sensors/WL-YC-01",
        data={
            "csrf_token": token,
            "name": "盈翠路涵洞水尺",
            "lon": str(lon),
            "lat": str(lat),
            "threshold": "0.5",
            "silent_after_minutes": "30",
            "active": "yes",
        },
        follow_redirects=False,
    )
    assert raised.status_code == 303
    issued = client.post(
        "/admin/device-keys",
        data={
            "csrf_token": token,
            "name": "盈翠水尺网关",
            "kind": "sensor",
            "device_code": "WL-YC-01",
        },
    )
    key = re.search(r'<code id="new-key">([^<]+)</code>', issued.text)
    assert issued.status_code == 200 and key
    reading = client.post(
        "/api/v1/sensors/WL-YC-01/readings",
        json={"value": 45, "unit": "cm", "ts": clock.now().isoformat()},
        headers={"X-Api-Key": key.group(1)},
    )
    assert reading.status_code == 201, reading.text
    assert reading.json()["outcome"] == "recovered"  # 0.45 m is under the new 0.5 m


def _count_of(html: str, what: str) -> int:
    match = re.search(rf'data-what="{what}"><td>[^<]*</td><td class="n">(\d+)<', html)
    assert match, what
    return int(match.group(1))


def test_cameras_move_and_places_import_through_the_pages(
    client: TestClient, auth: Any, city_places: Any, city_session: Session
) -> None:
    """R-IN-7 cameras registered and moved (located again in the grids); R-GR-1 unit grids and
    the gazetteer's address points imported from files, all or nothing, with a summary."""
    token = form_login(client, "admin")
    lon, lat = point_in(city_places, YINGCUI)
    made = client.post(
        "/admin/cameras",
        data={
            "csrf_token": token,
            "code": "CAM-YC-01",
            "name": "盈翠里路口",
            "lon": str(lon),
            "lat": str(lat),
            "address": "盈翠里1号",
        },
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    other = point_in(city_places, "350203008001")
    moved = client.post(
        "/admin/cameras/CAM-YC-01",
        data={
            "csrf_token": token,
            "name": "梧村路口",
            "lon": str(other[0]),
            "lat": str(other[1]),
            "address": "",
            "active": "yes",
        },
        follow_redirects=False,
    )
    assert moved.status_code == 303
    camera = client.get("/api/v1/cameras", headers=auth("admin")).json()
    (row,) = [c for c in camera if c["code"] == "CAM-YC-01"]
    assert row["community"] == "350203008001" and row["name"] == "梧村路口"

    before = _count_of(client.get("/admin/places").text, "unit_grid")
    grids = city_session.scalar(select(UnitGrid).where(UnitGrid.community_code == YINGCUI))
    assert grids is not None
    feature = {
        "type": "Feature",
        "properties": {"code": YINGCUI + "987", "community_code": YINGCUI},
        "geometry": json.loads(grids.geometry),
    }
    broken = {"type": "FeatureCollection", "features": [feature, {**feature, "properties": {}}]}
    refused = client.post(
        "/admin/places",
        data={"csrf_token": token, "what": "unit_grid"},
        files={"file": ("grids.geojson", json.dumps(broken).encode(), "application/geo+json")},
    )
    assert refused.status_code == 422
    assert "feature 1" in _error_under(refused.text, "file")
    assert city_session.get(UnitGrid, YINGCUI + "987") is None

    good = {"type": "FeatureCollection", "features": [feature]}
    imported = client.post(
        "/admin/places",
        data={"csrf_token": token, "what": "unit_grid"},
        files={"file": ("grids.geojson", json.dumps(good).encode(), "application/geo+json")},
    )
    assert imported.status_code == 200, imported.text
    assert re.search(r'id="imported-count">1<', imported.text)
    assert city_session.get(UnitGrid, YINGCUI + "987") is not None
    assert _count_of(imported.text, "unit_grid") == before + 1

    csv_text = f"name,kind,lon,lat\n盈翠里88号,doorplate,{lon},{lat}\n"
    points = client.post(
        "/admin/places",
        data={"csrf_token": token, "what": "address_points"},
        files={"file": ("points.csv", csv_text.encode(), "text/csv")},
    )
    assert points.status_code == 200 and re.search(r'id="imported-count">1<', points.text)


def test_bad_user_input_is_shown_under_its_field_and_nothing_is_written(
    client: TestClient, city_session: Session
) -> None:
    """Users: a handler needs a department, an inspector its grids, a password 8 characters;
    each refusal sits under its field with the typing kept (the password never echoed)."""
    token = form_login(client, "admin")
    typed = {
        "csrf_token": token,
        "username": "wang.fang2",
        "display_name": "王芳（测试）",
        "role": "inspector",
        "department_id": "",
        "grid_codes": "",
        "phone": "",
        "password": "long-enough-1",
    }
    for changes, field in (
        ({}, "grid_codes"),
        ({"grid_codes": "350203011, 999999999"}, "grid_codes"),
        ({"grid_codes": JIALIAN, "password": "short"}, "password"),
        ({"role": "handler", "grid_codes": ""}, "department_id"),
        ({"username": "operator", "grid_codes": JIALIAN}, "username"),
    ):
        response = client.post("/admin/users", data={**typed, **changes})
        assert response.status_code == 422, (changes, response.status_code)
        assert _error_under(response.text, field), changes
        assert 'value="王芳（测试）"' in response.text
        assert "long-enough-1" not in response.text and 'value="short"' not in response.text
    assert city_session.scalar(select(User).where(User.username == "wang.fang2")) is None

    made = client.post(
        "/admin/users", data={**typed, "grid_codes": JIALIAN}, follow_redirects=False
    )
    assert made.status_code == 303
    user_id = int(made.headers["location"].split("/")[3].split("?")[0])
    disabled = client.post(
        f"/admin/users/{user_id}/active",
        data={"csrf_token": token, "active": "no"},
        follow_redirects=False,
    )
    assert disabled.status_code == 303
    assert "账号已停用" in client.get(disabled.headers["location"]).text
    client.cookies.clear()
    again = csrf_of(client.get("/login").text)
    refused = client.post(
        "/login",
        data={"username": "wang.fang2", "password": "long-enough-1", "csrf_token": again},
    )
    assert refused.status_code == 401


def test_only_an_administrator_opens_or_posts_the_admin_pages(
    client: TestClient, city_session: Session
) -> None:
    token = form_login(client, "dispatcher")
    for path in (
        "/admin/departments",
        "/admin/users",
        "/admin/rules",
        "/admin/partners",
        "/admin/cameras",
        "/admin/sensors",
        "/admin/device-keys",
        "/admin/places",
    ):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "您的角色不能使用此页面" in response.text
    posted = client.post(
        "/admin/departments",
        data={"csrf_token": token, "code": "D-X", "name": "x", "kind": "professional"},
    )
    assert posted.status_code == 403
    assert city_session.scalar(select(Department).where(Department.code == "D-X")) is None
    # The admin's home links every page.
    client.cookies.clear()
    form_login(client, "admin")
    home = client.get("/admin").text
    for path in (
        "/admin/departments",
        "/admin/users",
        "/admin/rules",
        "/admin/partners",
        "/admin/cameras",
        "/admin/sensors",
        "/admin/device-keys",
        "/admin/places",
    ):
        assert f'href="{path}"' in home
        assert client.get(path).status_code == 200, path
        assert client.get(path + "?lang=en").status_code == 200, path
    assert "Responsibility rules" in client.get("/admin/rules?lang=en").text
    for missing in (
        "/admin/users/999999",
        "/admin/departments/999999",
        "/admin/rules/999999",
        "/admin/partners/999999",
        "/admin/cameras/NOPE",
        "/admin/sensors/NOPE",
    ):
        assert client.get(missing).status_code == 404, missing


def test_a_department_and_a_user_made_in_the_browser_log_in_to_their_desk(
    live_server: LiveServer, new_context: Any
) -> None:
    """The administrator builds a department under 嘉莲街道办 and a handler in it in the
    browser; the handler logs in and lands on the handling desk."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    run = uuid.uuid4().hex[:6]
    code, username = f"D-JL-{run}", f"jl_{run}"
    page = login(new_context(), "admin")
    page.click("#admin-departments")
    page.fill("#code", code)
    page.fill("#name", "嘉莲街道市容巡查队")
    page.select_option("#kind", "street_office")
    page.select_option("#parent_id", str(department_id(live_server, "D-350203011")))
    page.fill("#region_code", "3502")  # not a region: refused under the field
    with page.expect_navigation():
        page.click("#department-form button[type=submit]")
    expect(page.locator('.field-error[data-field="region_code"]')).to_be_visible()
    expect(page.locator("#name")).to_have_value("嘉莲街道市容巡查队")
    page.fill("#region_code", JIALIAN)
    with page.expect_navigation():
        page.click("#department-form button[type=submit]")
    expect(page.locator("#flash")).to_have_text("已保存")
    new_dept = department_id(live_server, code)

    page.goto("/admin/users")
    page.fill("#username", username)
    page.fill("#display_name", "巡查队 陈刚")
    page.select_option("#role", "handler")
    page.select_option("#department_id", str(new_dept))
    page.fill("#password", "short")
    with page.expect_navigation():
        page.click("#user-form button[type=submit]")
    expect(page.locator('.field-error[data-field="password"]')).to_be_visible()
    expect(page.locator("#username")).to_have_value(username)
    page.fill("#password", "xuncha-2026")
    with page.expect_navigation():
        page.click("#user-form button[type=submit]")
    expect(page.locator("#flash")).to_have_text("已保存")
    page.screenshot(path=str(SCREENSHOTS / "admin-user.png"), full_page=True)
    assert not page.js_errors

    desk = new_context().new_page()
    desk.goto("/login")
    desk.fill("#username", username)
    desk.fill("#password", "xuncha-2026")
    with desk.expect_navigation():
        desk.click("#login-form button[type=submit]")
    expect(desk).to_have_url(re.compile(r".*/desk/handle$"))
    expect(desk.locator(".who .me")).to_contain_text("巡查队 陈刚")
