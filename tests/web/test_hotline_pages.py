"""The hotline desk in the console (R-IN-4, R-IN-1): the operator answers a call that only asks
something and records it as a consultation — no case — and registers a complaint phoned in,
which is recorded as a call with its case; both are in the list of today's calls; a leader
reads the list with the callers' names and numbers masked. In chromium over the fixture city;
bad input, roles and CSRF without a browser on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from playwright.sync_api import expect
from sqlalchemy import func, select

from cityloop.cases.models import Case
from cityloop.intake.models import HotlineCall
from tests.cases.helpers import point_in
from tests.web.conftest import SCREENSHOTS, YINGCUI, LiveServer, csrf_of, form_login, login

QUESTION = "咨询：小区门口占道经营应该向哪个部门反映？（热线页面测试）"
ANSWER = "已告知可拨打12319或通过“市民随手拍”上报，由属地街道处理。"
PHONE = "13912345678"


def _case_count(live: LiveServer) -> int:
    with live.session() as session:
        return int(session.scalar(select(func.count()).select_from(Case)) or 0)


def test_a_consultation_is_recorded_without_a_case_and_listed_with_the_calls(
    live_server: LiveServer, new_context: Any
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    cases_before = _case_count(live_server)
    operator = login(new_context(), "operator")
    calls_before = int(operator.locator("#tab-calls .count").inner_text())
    with operator.expect_navigation():
        operator.click("#consult-link")
    expect(operator.locator("#call-kind-consultation")).to_be_checked()
    expect(operator.locator("#register-form")).to_be_hidden()

    # Nothing typed in the answer: the message is under it and the question is kept.
    operator.select_option("#line", "12319")
    operator.fill("#caller_name", "陈先生")
    operator.fill("#caller_phone", PHONE)
    operator.fill("#question", QUESTION)
    with operator.expect_navigation() as nav:
        operator.click("#save-consultation")
    assert nav.value is not None and nav.value.status == 422
    expect(operator.locator('.field-error[data-field="answer"]')).to_have_text("必填")
    expect(operator.locator("#question")).to_have_value(QUESTION)
    expect(operator.locator("#line")).to_have_value("12319")

    # Switching to 案件 and back keeps what was typed in either form.
    operator.check("#call-kind-case")
    expect(operator.locator("#register-form")).to_be_visible()
    expect(operator.locator("#consult-form")).to_be_hidden()
    operator.check("#call-kind-consultation")
    expect(operator.locator("#question")).to_have_value(QUESTION)

    operator.fill("#answer", ANSWER)
    with operator.expect_navigation():
        operator.click("#save-consultation")
    expect(operator).to_have_url(re.compile(r".*/desk/calls\?done=consultation.*"))
    expect(operator.locator("#done")).to_be_visible()
    row = operator.locator('#calls tr[data-kind="consultation"]', has_text=QUESTION)
    expect(row).to_have_count(1)
    expect(row.locator(".c-phone")).to_have_text(PHONE)  # the desk calls people back
    expect(row.locator(".c-answer")).to_have_text(ANSWER)
    with live_server.session() as session:
        call = session.scalar(select(HotlineCall).where(HotlineCall.text == QUESTION))
        assert call is not None
        assert (call.kind, call.status, call.line, call.case_id) == (
            "consultation",
            "answered",
            "12319",
            None,
        )
    assert _case_count(live_server) == cases_before  # no case

    # A complaint phoned in on the same desk: a call of its line with its case.
    complaint = "楼下烧烤摊油烟扰民，每晚到十二点（热线页面测试）"
    with operator.expect_navigation():
        operator.click("#new-case")
    operator.select_option("#source", "hotline_12345")
    operator.select_option("#class_code", "06029")
    operator.fill("#description", complaint)
    operator.fill("#reporter_name", "林女士")
    operator.fill("#reporter_phone", "13600001234")
    box = operator.locator("#picker").bounding_box()
    assert box is not None
    operator.mouse.click(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.45)
    expect(operator.locator("#lon")).not_to_have_value("")
    with operator.expect_navigation():
        operator.click("#register-form button[type=submit]")
    expect(operator).to_have_url(re.compile(r".*/case/\d+\?done=registered"))
    assert _case_count(live_server) == cases_before + 1
    operator.goto("/desk/accept")
    expect(operator.locator("#tab-calls .count")).to_have_text(str(calls_before + 2))
    operator.click("#tab-calls")
    case_row = operator.locator('#calls tr[data-kind="case"]', has_text=complaint)
    expect(case_row.locator(".c-answer a.ticket")).to_have_count(1)
    operator.screenshot(path=str(SCREENSHOTS / "hotline-calls.png"), full_page=True)

    # A leader reads the calls (热线 in the navigation) with names and numbers masked.
    leader = login(new_context(), "leader")
    with leader.expect_navigation():
        leader.click("#to-evaluation")  # the big screen links the pages with a header
    with leader.expect_navigation():
        leader.click('header nav a[href="/desk/calls"]')
    row = leader.locator('#calls tr[data-kind="consultation"]', has_text=QUESTION)
    expect(row.locator(".c-phone")).to_have_text("139****5678")
    expect(row.locator(".c-caller")).to_have_text("陈**")
    assert PHONE not in leader.content() and "13600001234" not in leader.content()
    assert not operator.js_errors and not leader.js_errors


# -- without a browser, on both databases ----------------------------------------------------
def _calls(session: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(HotlineCall)) or 0)


def test_bad_consultations_are_answered_under_their_fields(
    client: TestClient, city_session: Any
) -> None:
    """Bad input to the consultation form (R-IN-4): 422, each message under its field, the
    typing kept, nothing written; a forged form is refused."""
    token = form_login(client, "operator")
    before = _calls(city_session)
    typed = {
        "csrf_token": token,
        "line": "110",
        "caller_name": "王",
        "caller_phone": "call me",
        "text": "",
        "answer": "答复" * 1001,
    }
    response = client.post("/desk/accept/consult", data=typed)
    assert response.status_code == 422
    messages = dict(re.findall(r'class="field-error" data-field="(\w+)">([^<]+)<', response.text))
    assert messages == {
        "line": "请从列表中选择",
        "caller_phone": "请输入正确的手机号或座机号",
        "text": "必填",
        "answer": "最多2000字",
    }
    assert 'value="call me"' in response.text and 'id="call-kind-consultation" checked' in (
        response.text
    )
    forged = client.post("/desk/accept/consult", data={**typed, "csrf_token": "x"})
    assert forged.status_code == 403
    city_session.expire_all()
    assert _calls(city_session) == before


def test_who_registers_and_reads_calls(
    client: TestClient, city_session: Any, city_places: Any
) -> None:
    """Only the hotline desk records calls; leaders read them masked, dispatchers not at all
    (R-IN-4). A complaint from a hotline source is a call with its case."""
    token = form_login(client, "operator")
    lon, lat = point_in(city_places, YINGCUI)
    made = client.post(
        "/desk/accept/new",
        data={
            "csrf_token": token,
            "source": "hotline_12319",
            "class_code": "06029",
            "description": "夜市露天烧烤油烟扰民",
            "reporter_name": "黄先生",
            "reporter_phone": "13800009999",
            "lon": str(lon),
            "lat": str(lat),
        },
        follow_redirects=False,
    )
    assert made.status_code == 303
    case_id = int(made.headers["location"].split("/")[2].split("?")[0])
    city_session.expire_all()
    call = city_session.scalar(select(HotlineCall).where(HotlineCall.case_id == case_id))
    assert call is not None and (call.line, call.kind, call.status) == (
        "12319",
        "case",
        "case_created",
    )
    no_phone = client.post(
        "/desk/accept/new",
        data={
            "csrf_token": token,
            "source": "hotline_12345",
            "class_code": "06029",
            "description": "无来电号码",
            "lon": str(lon),
            "lat": str(lat),
        },
    )
    assert no_phone.status_code == 422 and 'data-field="reporter_phone">必填<' in no_phone.text

    listed = client.get("/desk/calls")
    assert listed.status_code == 200 and "13800009999" in listed.text
    english = client.get("/desk/calls?lang=en").text
    assert "Today&#39;s calls" in english and "Hotline 12319" in english
    assert "Record the consultation" in client.get("/desk/accept/new?kind=consultation").text
    assert client.get("/desk/calls?day=2026-02-30").status_code == 422

    client.cookies.clear()
    form_login(client, "leader")
    masked = client.get("/desk/calls").text
    assert "138****9999" in masked and "13800009999" not in masked and "黄**" in masked
    leader_token = csrf_of(masked)
    refused = client.post(
        "/desk/accept/consult",
        data={"csrf_token": leader_token, "line": "12345", "caller_phone": "1", "text": "x"},
    )
    assert refused.status_code == 403

    client.cookies.clear()
    form_login(client, "dispatcher")
    assert client.get("/desk/calls").status_code == 403
