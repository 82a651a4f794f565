"""The pages without a browser, on SQLite and PostgreSQL: login, who may open which desk,
CSRF, bad input answered under its field with the typing kept and nothing written, the map
layers (never all unit grids at once), the big screen's data and the admin forms."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from cityloop.cases.models import Case, CaseEvent
from tests.cases.helpers import YINGCUI, point_in
from tests.web.conftest import PASSWORD, csrf_of, form_login


def _report(client: TestClient, auth: Any, places: Any, **extra: Any) -> dict[str, Any]:
    lon, lat = point_in(places, YINGCUI)
    body = {
        "source": "inspector",
        "class_code": "07001",
        "description": "电线杆小广告",
        "lon": lon,
        "lat": lat,
        **extra,
    }
    response = client.post("/api/v1/reports", json=body, headers=auth("inspector"))
    assert response.status_code == 201, response.text
    return dict(response.json())


def _error_under(html: str, field: str) -> str:
    match = re.search(rf'class="field-error" data-field="{field}">([^<]+)<', html)
    assert match, f"no message under {field}"
    return match.group(1)


def test_login_answers_under_the_field_and_sends_each_role_to_its_desk(client: TestClient) -> None:
    """Login and the home that sends each role to its desk (R-AN-1 pages, issue 6 §1)."""
    token = csrf_of(client.get("/login").text)
    wrong = client.post(
        "/login", data={"username": "operator", "password": "nope", "csrf_token": token}
    )
    assert wrong.status_code == 401
    assert _error_under(wrong.text, "password") == "用户名或密码错误"
    assert 'value="operator"' in wrong.text  # what was typed stays

    forged = client.post("/login", data={"username": "operator", "password": PASSWORD})
    assert forged.status_code == 403 and "表单已过期" in forged.text

    for username, desk in (
        ("operator", "/desk/accept"),
        ("dispatcher", "/desk/dispatch"),
        ("handler", "/desk/handle"),
        ("inspector", "/m/inspector"),
        ("leader", "/screen"),
        ("admin", "/admin"),
    ):
        client.cookies.clear()
        form_login(client, username)
        home = client.get("/", follow_redirects=False)
        assert home.headers["location"] == desk, username
        assert client.get(desk).status_code == 200, username


def test_pages_need_a_login_and_the_right_role(client: TestClient) -> None:
    anonymous = client.get("/desk/dispatch?tab=review", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/login?next=%2Fdesk%2Fdispatch%3Ftab%3Dreview"
    form_login(client, "handler")
    for path in ("/desk/accept", "/desk/dispatch", "/screen", "/admin", "/m/inspector"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "您的角色不能使用此页面" in response.text
    assert client.get("/screen/data").status_code == 403
    # The navigation links only the pages this role may open.
    desk = client.get("/desk/handle").text
    assert 'href="/desk/handle"' in desk and 'href="/desk/dispatch"' not in desk


def test_a_form_without_the_sessions_token_changes_nothing(
    client: TestClient, auth: Any, city_places: Any, city_session: Any
) -> None:
    case = _report(client, auth, city_places)
    form_login(client, "operator")
    refused = client.post(f"/case/{case['id']}/act/file", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    refused = client.post(f"/case/{case['id']}/act/file", data={})
    assert refused.status_code == 403
    assert city_session.get(Case, case["id"]).state == "pending_filing"


def test_bad_input_in_an_action_form_is_shown_under_the_field_and_kept(
    client: TestClient, auth: Any, city_places: Any, city_session: Any
) -> None:
    """A handler's postponement request with a bad number of days (R-HD-2): 422, the message
    under `days`, the reason still typed, nothing written to the timeline."""
    case = _report(client, auth, city_places)
    client.post(f"/api/v1/cases/{case['id']}/actions/file", json={}, headers=auth("operator"))
    client.post(f"/api/v1/cases/{case['id']}/actions/dispatch", json={}, headers=auth("dispatcher"))
    held = city_session.get(Case, case["id"])
    city_session.refresh(held)
    assert held.state == "dispatched"
    token = form_login(client, "handler")
    page = client.get(f"/case/{case['id']}").text
    assert 'id="act-request_postpone"' in page and 'id="act-close"' not in page
    events_before = city_session.scalar(
        select(CaseEvent.seq).where(CaseEvent.case_id == case["id"]).order_by(CaseEvent.seq.desc())
    )

    bad = client.post(
        f"/case/{case['id']}/act/request_postpone",
        data={"csrf_token": token, "days": "三天", "reason": "需要采购专用配件"},
    )
    assert bad.status_code == 422
    assert _error_under(bad.text, "days") == "请输入数字"
    assert "需要采购专用配件</textarea>" in bad.text

    missing = client.post(
        f"/case/{case['id']}/act/request_postpone",
        data={"csrf_token": token, "days": "2", "reason": ""},
    )
    assert missing.status_code == 422 and _error_under(missing.text, "reason") == "请填写原因"

    # The service's own check (days above 60) comes back under the field too.
    too_long = client.post(
        f"/case/{case['id']}/act/request_postpone",
        data={"csrf_token": token, "days": "90", "reason": "等待审批"},
    )
    assert too_long.status_code == 422 and "days" in _error_under(too_long.text, "days")

    # A stale version: the message is on top of the page (409).
    stale = client.post(
        f"/case/{case['id']}/act/feedback",
        data={"csrf_token": token, "note": "已到场", "version": "1"},
    )
    assert stale.status_code == 409 and 'id="top-error"' in stale.text

    city_session.expire_all()
    events_after = city_session.scalar(
        select(CaseEvent.seq).where(CaseEvent.case_id == case["id"]).order_by(CaseEvent.seq.desc())
    )
    assert events_after == events_before
    assert city_session.get(Case, case["id"]).postpone_request is None

    good = client.post(
        f"/case/{case['id']}/act/request_postpone",
        data={"csrf_token": token, "days": "2", "reason": "需要采购专用配件"},
        follow_redirects=False,
    )
    assert good.status_code == 303
    city_session.expire_all()
    assert city_session.get(Case, case["id"]).postpone_request["days"] == 2


def test_map_layers_send_unit_grids_only_for_a_small_box(client: TestClient) -> None:
    districts = client.get("/web/layers/regions/district.geojson")
    assert districts.status_code == 200  # public: the citizen's map draws it
    assert len(districts.json()["features"]) == 6
    assert client.get("/web/layers/regions/resp_grid.geojson").status_code == 403
    form_login(client, "leader")
    streets = client.get("/web/layers/regions/street.geojson").json()
    assert {f["properties"]["name"] for f in streets["features"]} >= {"嘉莲街道", "梧村街道"}
    assert client.get("/web/layers/regions/nowhere.geojson").status_code == 422

    assert client.get("/web/layers/unit_grids.geojson").json()["field"] == "bbox"
    city = client.get("/web/layers/unit_grids.geojson?bbox=117.8,24.3,118.5,24.9").json()
    assert city["features"] == [] and city["too_many"] > 10_000
    small = client.get("/web/layers/unit_grids.geojson?bbox=118.13,24.48,118.14,24.49").json()
    assert 0 < len(small["features"]) < 300
    assert all(len(f["properties"]["code"]) == 15 for f in small["features"])


def test_the_screen_data_counts_todays_reports(
    client: TestClient, auth: Any, city_places: Any
) -> None:
    form_login(client, "leader")
    before = client.get("/screen/data").json()
    _report(client, auth, city_places, class_code="09006", description="占道经营水果摊")
    after = client.get("/screen/data").json()
    assert after["counters"]["today_reports"] == before["counters"]["today_reports"] + 1
    assert after["counters"]["open_cases"] == before["counters"]["open_cases"] + 1
    assert len(after["cases"]["features"]) == after["counters"]["open_cases"]
    assert after["charts"]["trend"]["reported"][-1] == after["counters"]["today_reports"]
    assert sum(p[2] for p in after["heat"]) >= 1


def test_admin_edits_class_standards_and_the_calendar(client: TestClient) -> None:
    """R-DX-2 (standards attached to each class) and R-DIS-5 (local calendar overrides)."""
    token = form_login(client, "admin")
    page = client.get("/admin/classes?q=污水冒溢")
    assert page.status_code == 200 and "/admin/classes/21004" in page.text
    bad = client.post(
        "/admin/classes/21004",
        data={
            "csrf_token": token,
            "filing_standard": "路面可见污水漫溢",
            "days_A": "0",
            "days_B": "2",
            "days_C": "4",
            "default_urgency": "A",
            "active": "yes",
        },
    )
    assert bad.status_code == 422
    assert _error_under(bad.text, "days_A") == "请输入大于0的工作日数"
    assert "路面可见污水漫溢</textarea>" in bad.text
    saved = client.post(
        "/admin/classes/21004",
        data={
            "csrf_token": token,
            "filing_standard": "路面可见污水漫溢",
            "days_A": "0.5",
            "days_B": "2",
            "days_C": "4",
            "default_urgency": "A",
            "active": "yes",
        },
    )
    assert saved.status_code == 200 and "已保存" in saved.text
    api = client.get("/api/v1/classes/21004").json()
    assert api["filing_standard"] == "路面可见污水漫溢" and api["handling_days"]["A"] == 0.5

    wrong_day = client.post(
        "/admin/calendar", data={"csrf_token": token, "day": "2027-02-30", "is_workday": "yes"}
    )
    assert wrong_day.status_code == 422 and _error_under(wrong_day.text, "day")
    added = client.post(
        "/admin/calendar",
        data={"csrf_token": token, "day": "2027-02-06", "is_workday": "yes", "note": "春节调休"},
    )
    assert added.status_code == 200 and "春节调休" in added.text
    overrides = client.get("/api/v1/calendar/overrides").json()
    assert {"day": "2027-02-06", "is_workday": True, "note": "春节调休"} in overrides


def test_the_console_serves_its_own_libraries(client: TestClient) -> None:
    """No CDN: the pages load Leaflet, leaflet.heat, ECharts and HTMX from the app."""
    form_login(client, "leader")
    page = client.get("/screen").text
    urls = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert all(url.startswith("/") and not url.startswith("//") for url in urls), urls
    assert {"/web/static/vendor/echarts.min.js", "/web/static/vendor/leaflet-heat.js"} <= set(urls)
    assert client.get("/web/static/css/app.css").status_code == 200
    assert client.get("/web/static/../page.py").status_code == 404
    assert client.get("/web/static/%2e%2e/api.py").status_code == 404


def test_the_operator_registers_a_call_and_merges_a_duplicate_from_the_nearby_list(
    client: TestClient, auth: Any, city_places: Any, city_session: Any
) -> None:
    """Registering a call (R-IN-1, R-AC-1) and merging a duplicate shown among the open cases
    of the same class nearby (issue 6 §2)."""
    token = form_login(client, "operator")
    lon, lat = point_in(city_places, YINGCUI)
    typed = {
        "csrf_token": token,
        "source": "hotline_12345",
        "class_code": "06036",
        "description": "楼道口乱堆杂物，堵塞消防通道",
        "reporter_name": "王先生",
        "reporter_phone": "13800001111",
    }
    no_pin = client.post("/desk/accept/new", data=typed)
    assert no_pin.status_code == 422
    assert _error_under(no_pin.text, "location") == "请在地图上点选问题位置"
    assert "楼道口乱堆杂物，堵塞消防通道</textarea>" in no_pin.text
    assert 'value="13800001111"' in no_pin.text

    made = client.post(
        "/desk/accept/new", data={**typed, "lon": str(lon), "lat": str(lat)}, follow_redirects=False
    )
    assert made.status_code == 303 and made.headers["location"].endswith("?done=registered")
    first_id = int(made.headers["location"].split("/")[2].split("?")[0])
    first = city_session.get(Case, first_id)
    assert (first.source, first.state, first.reporter_phone) == (
        "hotline_12345",
        "reported",
        "13800001111",
    )

    # A second call about the same thing ~120 m away: not an automatic duplicate (over 50 m),
    # but listed on its page among the open cases of the same class nearby.
    second = client.post(
        "/desk/accept/new",
        data={**typed, "lon": str(lon), "lat": str(lat + 0.0011), "reporter_name": "李女士"},
        follow_redirects=False,
    )
    second_id = int(second.headers["location"].split("/")[2].split("?")[0])
    page = client.get(f"/case/{second_id}").text
    assert 'id="nearby"' in page and f'data-case="{first_id}"' in page
    merged = client.post(
        f"/case/{second_id}/act/merge",
        data={"csrf_token": token, "into_case_id": str(first_id)},
        follow_redirects=False,
    )
    assert merged.status_code == 303
    city_session.expire_all()
    assert city_session.get(Case, second_id).merged_into_id == first_id

    # The desk's list refreshes itself through HTMX: a fragment, not a whole page.
    fragment = client.get("/desk/accept", headers={"HX-Request": "true"}).text
    assert "<html" not in fragment and f'data-case="{first_id}"' in fragment


def test_a_department_may_return_a_case_only_while_the_table_allows(
    client: TestClient, auth: Any, city_places: Any, city_session: Any, clock: Any
) -> None:
    """The department desk's 回退 (R-DIS-3): the button is on the case page within one working
    hour of receipt and gone after it; a form sent anyway is refused on the page and changes
    nothing. A leader's case never has it, and its mark reads in English on the English page."""
    from datetime import timedelta

    from cityloop.org.models import User

    case = _report(client, auth, city_places)
    client.post(f"/api/v1/cases/{case['id']}/actions/file", json={}, headers=auth("operator"))
    client.post(f"/api/v1/cases/{case['id']}/actions/dispatch", json={}, headers=auth("dispatcher"))
    token = form_login(client, "handler")
    fresh = client.get(f"/case/{case['id']}").text
    assert 'id="act-return"' in fresh

    start = clock.now()
    clock.set(start + timedelta(days=1))  # Friday 16:05: a whole working day later
    try:
        late = client.get(f"/case/{case['id']}").text
        assert 'id="act-return"' not in late and 'id="act-request_postpone"' in late
        refused = client.post(
            f"/case/{case['id']}/act/return",
            data={"csrf_token": token, "reason": "不属于本单位职责"},
        )
        assert refused.status_code >= 400 and 'id="top-error"' in refused.text
        assert "回退须在接件后1个工作小时内" in refused.text
        city_session.expire_all()
        assert city_session.get(Case, case["id"]).state == "dispatched"
    finally:
        clock.set(start)

    # A leader's assignment, handed to the same department: no return from the first minute.
    handler = city_session.scalar(select(User).where(User.username == "handler"))
    lon, lat = point_in(city_places, YINGCUI)
    made = client.post(
        "/api/v1/reports",
        json={
            "source": "leader",
            "class_code": "06010",
            "description": "领导交办：路口暴露垃圾",
            "lon": lon,
            "lat": lat,
        },
        headers=auth("leader"),
    )
    assert made.status_code == 201, made.text
    assigned = made.json()["id"]
    if made.json()["state"] != "dispatched":
        moved = client.post(
            f"/api/v1/cases/{assigned}/actions/dispatch",
            json={"department_id": handler.department_id},
            headers=auth("dispatcher"),
        )
        assert moved.status_code == 200, moved.text
    page = client.get(f"/case/{assigned}").text
    assert 'id="act-submit_result"' in page and 'id="act-return"' not in page
    assert 'id="leader-assigned">领导交办<' in page
    english = client.get(f"/case/{assigned}?lang=en").text
    assert 'id="leader-assigned">Leader-assigned<' in english and "领导交办<" not in english


def test_the_operator_rejects_a_report_only_with_a_reason(
    client: TestClient, auth: Any, city_places: Any, city_session: Any
) -> None:
    """不予受理 from the case page (issue 6 §2): without a reason the message is under the
    field (in the language chosen) and nothing changes; with one, the case is rejected."""
    case = _report(client, auth, city_places, class_code="09010", description="非机动车乱停放")
    token = form_login(client, "operator")
    page = client.get(f"/case/{case['id']}").text
    assert 'id="act-reject"' in page and 'id="act-send_to_verify"' in page

    client.get(f"/case/{case['id']}?lang=en")  # English from now on (a cookie)
    empty = client.post(
        f"/case/{case['id']}/act/reject", data={"csrf_token": token, "reason": "  "}
    )
    assert empty.status_code == 422
    assert _error_under(empty.text, "reason") == "Required: Reason"
    city_session.expire_all()
    assert city_session.get(Case, case["id"]).state == "pending_filing"

    done = client.post(
        f"/case/{case['id']}/act/reject",
        data={"csrf_token": token, "reason": "非本市管辖范围"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    city_session.expire_all()
    assert city_session.get(Case, case["id"]).state == "rejected"
    closed = client.get(done.headers["location"]).text
    assert 'id="flash">Done: Reject<' in closed  # still in English
    assert 'id="no-actions"' in closed and "非本市管辖范围" in closed


def test_the_dispatcher_decides_postponements_from_the_desk_and_the_case_page(
    client: TestClient, auth: Any, city_places: Any, city_session: Any
) -> None:
    """A department's postponement request (R-HD-2) reaches the dispatcher's 延期 tab with its
    days, reason and light; refusing needs a reason (the message under the field), approving is
    one inline button on the desk, which goes back to the desk."""
    case = _report(client, auth, city_places, description="电线杆小广告（延期）")
    client.post(f"/api/v1/cases/{case['id']}/actions/file", json={}, headers=auth("operator"))
    client.post(f"/api/v1/cases/{case['id']}/actions/dispatch", json={}, headers=auth("dispatcher"))
    ask = {"days": 3, "reason": "需要高空作业车"}
    api = f"/api/v1/cases/{case['id']}/actions/request_postpone"
    assert client.post(api, json=ask, headers=auth("handler")).status_code == 200

    token = form_login(client, "dispatcher")
    desk = client.get("/desk/dispatch?tab=postpone").text
    row = desk.split(f'data-case="{case["id"]}"', 1)[1].split("</tr>", 1)[0]
    assert "需要高空作业车" in row and 'class="light light-' in row
    assert 'class="inline act-approve_postpone"' in row

    page = client.get(f"/case/{case['id']}").text
    assert 'id="act-refuse_postpone"' in page and 'id="act-approve_postpone"' in page
    no_reason = client.post(
        f"/case/{case['id']}/act/refuse_postpone",
        data={"csrf_token": token, "reason": ""},
    )
    assert no_reason.status_code == 422 and _error_under(no_reason.text, "reason") == "请填写原因"
    refused = client.post(
        f"/case/{case['id']}/act/refuse_postpone",
        data={"csrf_token": token, "reason": "本单位有作业车，按期完成"},
        follow_redirects=False,
    )
    assert refused.status_code == 303
    city_session.expire_all()
    held = city_session.get(Case, case["id"])
    assert held.state == "dispatched" and held.postpone_request is None

    assert client.post(api, json=ask, headers=auth("handler")).status_code == 200
    city_session.expire_all()
    version = city_session.get(Case, case["id"]).version
    approved = client.post(
        f"/case/{case['id']}/act/approve_postpone",
        data={"csrf_token": token, "version": str(version), "next": "/desk/dispatch?tab=postpone"},
        follow_redirects=False,
    )
    assert approved.status_code == 303
    assert approved.headers["location"] == "/desk/dispatch?tab=postpone"
    city_session.expire_all()
    assert city_session.get(Case, case["id"]).postpone_request is None
    assert f'data-case="{case["id"]}"' not in client.get("/desk/dispatch?tab=postpone").text
