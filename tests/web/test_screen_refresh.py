"""The big screen refreshes itself (R-AN-1): with the leader's screen open, a report made
through the API shows on it without a reload once the page's own 30 s timer fires. The
page's clock is Playwright's, so the test moves it forward instead of waiting half a
minute; the screen's refresh function is never called from the test."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import expect
from sqlalchemy import select

from cityloop.cases.models import Case
from tests.web.conftest import PASSWORD, YINGCUI, LiveServer, login


def test_a_new_report_shows_on_the_open_screen_without_a_reload(
    live_server: LiveServer, new_context: Any
) -> None:
    context = new_context(viewport={"width": 1920, "height": 1080})
    # Fake timers in every page of the context, installed before the screen is loaded.
    context.clock.install()
    page = login(context, "leader")
    expect(page).to_have_url(f"{live_server.url}/screen")
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url) if "/screen/data" in r.url else None)
    navigations: list[str] = []
    page.on("framenavigated", lambda f: navigations.append(f.url) if f == page.main_frame else None)

    counter = page.locator("#counter-today_reports")
    before = int(counter.inner_text())
    assert before > 0

    lon, lat = live_server.point(YINGCUI)
    with httpx.Client(base_url=live_server.url, timeout=10) as client:
        token = client.post(
            "/api/v1/auth/token", data={"username": "inspector", "password": PASSWORD}
        )
        assert token.status_code == 200, token.text
        created = client.post(
            "/api/v1/reports",
            json={
                "source": "inspector",
                "class_code": "07001",
                "description": "电线杆小广告（大屏刷新）",
                "lon": lon,
                "lat": lat,
            },
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        )
        assert created.status_code == 201, created.text
    with live_server.session() as session:
        case = session.scalar(select(Case).where(Case.ticket == created.json()["ticket"]))
        assert case is not None

    # The server already counts it; the screen does not show it until its timer fires.
    page.wait_for_timeout(500)
    assert int(counter.inner_text()) == before
    assert fetched == []

    page.clock.run_for(31_000)  # past the 30 s refresh interval
    expect(counter).to_have_text(str(before + 1))
    assert len(fetched) >= 1
    assert navigations == []  # the same page, not reloaded
    assert not page.js_errors
