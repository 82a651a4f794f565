"""Case-page actions no other page test drives, without a browser, on SQLite and PostgreSQL:
the operator's 派核实 and the grid inspector's 核实 (R-VF), the dispatcher's 协调派遣, and a
department's 回退 followed by the dispatcher's second 派遣 (R-DIS-3). Each step is taken from
the form the case page shows, and checked as the people involved would see it: the state on
the page, which buttons each of them has, the desk lists and the messages."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from cityloop.cases.models import Case
from cityloop.org.models import User
from tests.cases.helpers import YINGCUI, point_in
from tests.web.conftest import form_login
from tests.web.test_pages import _error_under, _report


def _state(city_session: Any, case_id: int) -> str:
    city_session.expire_all()
    return str(city_session.get(Case, case_id).state)


def _shown_state(html: str) -> str:
    """The state label in the case page's heading."""
    return html.split('id="case-state">', 1)[1].split("<", 1)[0]


def _filed_and_dispatched(client: TestClient, auth: Any, case_id: int) -> None:
    filed = client.post(f"/api/v1/cases/{case_id}/actions/file", json={}, headers=auth("operator"))
    assert filed.status_code == 200, filed.text
    sent = client.post(
        f"/api/v1/cases/{case_id}/actions/dispatch", json={}, headers=auth("dispatcher")
    )
    assert sent.status_code == 200, sent.text


def test_the_operator_sends_a_report_to_verify_and_the_grid_inspector_verifies_it(
    client: TestClient, city_places: Any, city_session: Any
) -> None:
    """派核实 from the case page puts a citizen's report on the verification list of the
    inspector whose grid holds it, and of no other; that inspector's 核实 needs an answer
    (the message under the field) and, with one, makes the case wait for filing."""
    lon, lat = point_in(city_places, YINGCUI)
    made = client.post(
        "/api/v1/reports",
        json={
            "source": "public",
            "class_code": "07001",
            "description": "电线杆上贴满小广告（待核实）",
            "lon": lon,
            "lat": lat,
        },
    )
    assert made.status_code == 201, made.text
    case_id = made.json()["id"]
    assert _state(city_session, case_id) == "reported"

    token = form_login(client, "operator")
    page = client.get(f"/case/{case_id}").text
    assert 'id="act-send_to_verify"' in page and 'id="act-verify"' not in page
    sent = client.post(
        f"/case/{case_id}/act/send_to_verify",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    assert sent.headers["location"] == f"/case/{case_id}?done=send_to_verify"
    assert _state(city_session, case_id) == "verifying"
    after = client.get(sent.headers["location"]).text
    assert 'id="flash">操作成功：派核实<' in after
    assert _shown_state(after) == "核实中"
    # The centre cannot verify on site, nor send it a second time.
    assert 'id="act-verify"' not in after and 'id="act-send_to_verify"' not in after

    # Another grid's inspector has no such task and cannot open the case.
    client.cookies.clear()
    form_login(client, "inspector_huli")
    elsewhere = client.get("/m/inspector?tab=tasks").text
    assert f'data-case="{case_id}"' not in elsewhere.split('id="tasks-verify"', 1)[1]
    assert client.get(f"/case/{case_id}").status_code == 404

    # The grid's own inspector sees it among the verification tasks, not the check tasks.
    client.cookies.clear()
    token = form_login(client, "inspector")
    tasks = client.get("/m/inspector?tab=tasks").text
    verify_list = tasks.split('id="tasks-verify"', 1)[1].split('id="tasks-check"', 1)[0]
    check_list = tasks.split('id="tasks-check"', 1)[1]
    assert f'data-case="{case_id}"' in verify_list
    assert f'data-case="{case_id}"' not in check_list

    page = client.get(f"/case/{case_id}").text
    assert 'id="act-verify"' in page
    assert 'id="act-send_to_verify"' not in page and 'id="act-file"' not in page
    unanswered = client.post(f"/case/{case_id}/act/verify", data={"csrf_token": token})
    assert unanswered.status_code == 422
    assert _error_under(unanswered.text, "confirmed") == "请填写现场核实属实"
    assert _state(city_session, case_id) == "verifying"

    verified = client.post(
        f"/case/{case_id}/act/verify",
        data={"csrf_token": token, "confirmed": "yes"},
        follow_redirects=False,
    )
    assert verified.status_code == 303
    assert _state(city_session, case_id) == "pending_filing"
    after = client.get(verified.headers["location"]).text
    assert 'id="flash">操作成功：核实<' in after
    assert _shown_state(after) == "待立案"
    assert "现场核实属实: 是" in after  # the answer is on the timeline
    assert 'id="act-verify"' not in after
    tasks = client.get("/m/inspector?tab=tasks").text
    assert f'data-case="{case_id}"' not in tasks

    # Back at the centre the case waits to be filed.
    client.cookies.clear()
    form_login(client, "operator")
    page = client.get(f"/case/{case_id}").text
    assert _shown_state(page) == "待立案" and 'id="act-file"' in page


def test_the_dispatcher_coordinates_a_case_only_with_a_note(
    client: TestClient, auth: Any, city_places: Any, city_session: Any
) -> None:
    """协调派遣 from the case page: without a note the message is under the field and the case
    stays filed; with one it is coordinating, still on the dispatch list, and dispatchable."""
    case = _report(client, auth, city_places, class_code="09010", description="非机动车乱停放")
    filed = client.post(
        f"/api/v1/cases/{case['id']}/actions/file", json={}, headers=auth("operator")
    )
    assert filed.status_code == 200, filed.text

    form_login(client, "operator")
    assert 'id="act-coordinate"' not in client.get(f"/case/{case['id']}").text

    client.cookies.clear()
    token = form_login(client, "dispatcher")
    page = client.get(f"/case/{case['id']}").text
    assert 'id="act-coordinate"' in page and 'id="act-dispatch"' in page

    no_note = client.post(
        f"/case/{case['id']}/act/coordinate", data={"csrf_token": token, "note": " "}
    )
    assert no_note.status_code == 422
    assert _error_under(no_note.text, "note") == "请填写说明"
    assert _state(city_session, case["id"]) == "filed"

    done = client.post(
        f"/case/{case['id']}/act/coordinate",
        data={"csrf_token": token, "note": "涉及交警与街道，需联合处置"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert _state(city_session, case["id"]) == "coordinating"
    after = client.get(done.headers["location"]).text
    assert 'id="flash">操作成功：协调派遣<' in after
    assert _shown_state(after) == "协调中"
    assert "涉及交警与街道，需联合处置" in after
    assert 'id="act-coordinate"' not in after and 'id="act-dispatch"' in after

    desk = client.get("/desk/dispatch").text
    assert f'data-case="{case["id"]}"' in desk


def test_a_returned_case_is_on_the_dispatch_desk_and_is_dispatched_again(
    client: TestClient, auth: Any, city_places: Any, city_session: Any
) -> None:
    """A department's 回退 within the hour (R-DIS-3) takes the case away from it and puts it
    on the dispatcher's list marked 回退; the dispatcher dispatches it again from the case
    page and the department has it back."""
    case = _report(client, auth, city_places, description="电线杆小广告（回退）")
    _filed_and_dispatched(client, auth, case["id"])
    handler = city_session.scalar(select(User).where(User.username == "handler"))
    assert city_session.get(Case, case["id"]).department_id == handler.department_id

    token = form_login(client, "handler")
    page = client.get(f"/case/{case['id']}").text
    assert 'id="act-return"' in page
    no_reason = client.post(f"/case/{case['id']}/act/return", data={"csrf_token": token})
    assert no_reason.status_code == 422 and _error_under(no_reason.text, "reason") == "请填写原因"
    assert _state(city_session, case["id"]) == "dispatched"

    returned = client.post(
        f"/case/{case['id']}/act/return",
        data={"csrf_token": token, "reason": "不属于本单位职责"},
        follow_redirects=False,
    )
    assert returned.status_code == 303
    assert _state(city_session, case["id"]) == "returned"
    held = city_session.get(Case, case["id"])
    assert held.department_id is None
    # The department no longer holds it: off its desk, and its page is not theirs to open.
    assert f'data-case="{case["id"]}"' not in client.get("/desk/handle").text
    assert client.get(f"/case/{case['id']}").status_code == 404

    client.cookies.clear()
    token = form_login(client, "dispatcher")
    desk = client.get("/desk/dispatch?tab=dispatch").text
    row = desk.split(f'<tr data-case="{case["id"]}"', 1)[1].split("</tr>", 1)[0]
    assert '<span class="tag warn">回退</span>' in row
    assert 'data-action="dispatch"' in row

    page = client.get(f"/case/{case['id']}").text
    assert _shown_state(page) == "已回退"
    assert "不属于本单位职责" in page  # the department's reason is on the timeline
    assert 'id="act-dispatch"' in page and 'id="act-coordinate"' in page
    again = client.post(
        f"/case/{case['id']}/act/dispatch",
        data={"csrf_token": token, "department_id": str(handler.department_id)},
        follow_redirects=False,
    )
    assert again.status_code == 303
    assert _state(city_session, case["id"]) == "dispatched"
    city_session.expire_all()
    assert city_session.get(Case, case["id"]).department_id == handler.department_id
    after = client.get(again.headers["location"]).text
    assert 'id="flash">操作成功：派遣<' in after and _shown_state(after) == "处置中"
    assert f'data-case="{case["id"]}"' not in client.get("/desk/dispatch?tab=dispatch").text

    client.cookies.clear()
    form_login(client, "handler")
    assert f'data-case="{case["id"]}"' in client.get("/desk/handle").text
    assert 'id="act-submit_result"' in client.get(f"/case/{case['id']}").text
