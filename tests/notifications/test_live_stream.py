"""The live inbox across processes (issue 13): a handler of 思明区城管办 has the desk open in
Debian's Chromium, served by a real `cityloop serve --workers 2`; the dispatcher dispatches
(through the API, in whichever worker takes the request) and the badge shows it without a
reload, a toast too, and a click opens the case; an urging committed by another process
altogether (this test's, as `cityloop worker` would) reaches the page the same way. A
stream client that reconnects with Last-Event-ID misses nothing. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from cityloop.cases.service import Actor, transition
from cityloop.db import begin_write, make_engine, make_session_factory
from cityloop.intake.service import Report, receive
from cityloop.org.models import Department, User
from cityloop.places.service import PlaceIndex
from cityloop.taxonomy.service import working_calendar
from tests.cases.helpers import YINGCUI, point_in
from tests.faults.harness import Server
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS, PASSWORD

pytestmark = pytest.mark.slow


def _filed_case(url: str, description: str, class_code: str = "09005") -> tuple[int, str]:
    engine = make_engine(url)
    factory = make_session_factory(engine)
    try:
        with factory() as session:
            begin_write(session)
            places = PlaceIndex.load(session)
            calendar = working_calendar(session, "Asia/Shanghai")
            lon, lat = point_in(places, YINGCUI)
            now = datetime.now(UTC)
            case, _ = receive(
                session,
                Report(
                    source="public",
                    description=description,
                    class_code=class_code,
                    lon=lon,
                    lat=lat,
                ),
                actor=Actor(None, "公众", "public"),
                places=places,
                calendar=calendar,
                now=now,
            )
            operator = session.scalar(select(User).where(User.username == "operator"))
            assert operator is not None
            transition(session, case.id, "file", Actor.of(operator), now=now, calendar=calendar)
            session.commit()
            return case.id, case.ticket
    finally:
        engine.dispose()


def _urge_from_this_process(url: str, case_id: int) -> None:
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            begin_write(session)
            calendar = working_calendar(session, "Asia/Shanghai")
            shiftlead = session.scalar(select(User).where(User.username == "shiftlead"))
            assert shiftlead is not None
            transition(
                session,
                case_id,
                "urge",
                Actor.of(shiftlead),
                {"note": "群众反映强烈，请立即处置"},
                now=datetime.now(UTC),
                calendar=calendar,
            )
            session.commit()
    finally:
        engine.dispose()


def _department(url: str, code: str) -> int:
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            found = session.scalar(select(Department.id).where(Department.code == code))
            assert found is not None
            return int(found)
    finally:
        engine.dispose()


def _token(base: str, username: str) -> str:
    response = httpx.post(
        f"{base}/api/v1/auth/token", data={"username": username, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture
def server(city_db):
    running = Server(city_db.url, city_db.data_dir, workers=2).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def chromium():
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("needs /usr/bin/chromium (scripts/install_browser.sh)")
        pytest.skip("needs /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_the_badge_appears_without_a_reload_when_the_case_is_dispatched(city_db, server, chromium):
    base = f"http://127.0.0.1:{server.port}"
    case_id, ticket = _filed_case(city_db.url, "店外经营，桌椅摆到门外")
    context = chromium.new_context(base_url=base, locale="zh-CN", timezone_id="Asia/Shanghai")
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/login")
    page.fill("#username", "handler")
    page.fill("#password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/desk/handle.*"))
    # The stream is open once it has said how many are unread.
    page.wait_for_function("document.getElementById('notify-count').dataset.unread === '0'")
    page.evaluate("window.__notLoadedAgain = true")

    dispatched = httpx.post(
        f"{base}/api/v1/cases/{case_id}/actions/dispatch",
        json={"department_id": _department(city_db.url, "D-350203")},
        headers={"Authorization": f"Bearer {_token(base, 'dispatcher')}"},
    )
    assert dispatched.status_code == 200, dispatched.text
    committed = time.monotonic()
    page.wait_for_function(
        "document.getElementById('notify-count').dataset.unread === '1'", timeout=5_000
    )
    seen_after = time.monotonic() - committed
    assert seen_after < 1.5, f"the badge took {seen_after:.2f} s"
    assert page.evaluate("window.__notLoadedAgain") is True  # no reload
    assert page.locator("#notify-count").inner_text() == "1"
    toast = page.locator(".toast").first
    assert ticket in toast.inner_text()

    # Committed by a third process, not a server worker: the page hears it all the same.
    _urge_from_this_process(city_db.url, case_id)
    page.wait_for_function(
        "document.getElementById('notify-count').dataset.unread === '2'", timeout=5_000
    )
    assert page.locator(".toast").count() >= 1
    page.locator(".toast").last.click()
    page.wait_for_url(re.compile(rf".*/case/{case_id}$"))
    assert ticket in page.content()
    assert errors == []
    context.close()


def _frames(
    lines: Any, wanted: int, deadline: float, event: str = "notification"
) -> list[dict[str, Any]]:
    """SSE frames read until ``wanted`` frames of ``event`` came (or the deadline)."""
    frames: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for line in lines:
        if time.monotonic() > deadline:
            break
        if not line:
            if current:
                frames.append(current)
                if sum(1 for f in frames if f.get("event") == event) >= wanted:
                    break
            current = {}
            continue
        key, _, value = line.partition(":")
        current[key] = value.strip()
    return frames


def test_a_stream_client_that_reconnects_misses_nothing(city_db, server):
    base = f"http://127.0.0.1:{server.port}"
    token = _token(base, "handler")
    siming = _department(city_db.url, "D-350203")
    dispatcher = {"Authorization": f"Bearer {_token(base, 'dispatcher')}"}
    headers = {"Authorization": f"Bearer {token}"}

    first_case, first_ticket = _filed_case(city_db.url, "店外经营一")
    with (
        httpx.Client(timeout=10) as client,
        client.stream("GET", f"{base}/api/v1/me/notifications/stream", headers=headers) as stream,
    ):
        lines = stream.iter_lines()
        hello = _frames(lines, 1, time.monotonic() + 5, event="unread")
        assert any(f.get("event") == "unread" for f in hello)
        httpx.post(
            f"{base}/api/v1/cases/{first_case}/actions/dispatch",
            json={"department_id": siming},
            headers=dispatcher,
        ).raise_for_status()
        got = _frames(lines, 1, time.monotonic() + 5)
    [first] = [f for f in got if f.get("event") == "notification"]
    assert json.loads(first["data"])["ticket"] == first_ticket
    last_id = first["id"]

    # Disconnected: two cases are dispatched meanwhile.
    tickets = []
    for n, code in ((2, "06010"), (3, "07001")):
        case_id, ticket = _filed_case(city_db.url, f"问题{n}", code)
        httpx.post(
            f"{base}/api/v1/cases/{case_id}/actions/dispatch",
            json={"department_id": siming},
            headers=dispatcher,
        ).raise_for_status()
        tickets.append(ticket)
    # EventSource's token for browsers that cannot send headers: ?access_token=.
    with (
        httpx.Client(timeout=10) as client,
        client.stream(
            "GET",
            f"{base}/api/v1/me/notifications/stream",
            params={"access_token": token},
            headers={"Last-Event-ID": last_id},
        ) as stream,
    ):
        resumed = _frames(stream.iter_lines(), 2, time.monotonic() + 5)
    missed = [json.loads(f["data"]) for f in resumed if f.get("event") == "notification"]
    assert [m["ticket"] for m in missed] == tickets
    assert [int(f["id"]) for f in resumed if f.get("event") == "notification"] == sorted(
        int(f["id"]) for f in resumed if f.get("event") == "notification"
    )
    # Without a token or a session: refused.
    assert httpx.get(f"{base}/api/v1/me/notifications/stream").status_code == 401
