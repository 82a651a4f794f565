"""People and vehicles on the one map (R-AN-1, R-IN-2): the big screen's vehicle moves when
its terminal reports, without a reload and without a request per marker (server-sent
events), and a click replays its track; the inspector app's 上岗 starts position reports,
which wait on the phone without signal and are stored once when it is back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from playwright.sync_api import expect
from sqlalchemy import select

from cityloop.fleet import service
from cityloop.fleet.models import Person, Position
from cityloop.org.models import User
from tests.web.conftest import NOW, YINGCUI, LiveServer, login


def _store(
    live_server: LiveServer, vehicle_id: int, lon: float, lat: float, minutes_ago: float
) -> None:
    with live_server.session() as session:
        service.store_fixes(
            session,
            [
                service.Fix(
                    "vehicle",
                    vehicle_id,
                    NOW - timedelta(minutes=minutes_ago),
                    lon,
                    lat,
                    "jt808",
                    12.0,
                )
            ],
            NOW,
        )
        session.commit()


def test_a_vehicle_moves_on_the_open_screen_and_replays_its_track(
    live_server: LiveServer, new_context: Any
) -> None:
    with live_server.session() as session:
        vehicle = service.register_vehicle(
            session, plate="闽D·LIVE1", kind="sweeper", terminal_phone="013955500001"
        )
        session.commit()
        vid = vehicle.id
    lon, lat = live_server.point(YINGCUI)
    _store(live_server, vid, lon, lat, 3)
    context = new_context(viewport={"width": 1920, "height": 1080})
    page = login(context, "leader")
    per_marker: list[str] = []
    page.on("request", lambda r: per_marker.append(r.url) if "/vehicles/" in r.url else None)
    navigations: list[str] = []
    page.on("framenavigated", lambda f: navigations.append(f.url) if f == page.main_frame else None)
    marker = page.locator(f'[data-unit="vehicle:{vid}"]')
    expect(marker).to_have_attribute("data-lonlat", f"{lon:.6f},{lat:.6f}", timeout=15000)

    _store(live_server, vid, lon + 0.002, lat, 2)
    expect(marker).to_have_attribute("data-lonlat", f"{lon + 0.002:.6f},{lat:.6f}", timeout=15000)
    assert navigations == [] and per_marker == []

    marker.dispatch_event("click")
    expect(page.locator("body")).to_have_attribute("data-replay", "2", timeout=10000)
    assert page.js_errors == []


def test_on_duty_the_app_reports_positions_and_keeps_them_offline(
    live_server: LiveServer, new_context: Any
) -> None:
    where = live_server.point(YINGCUI)
    context = new_context(phone=True, where=where)
    context.clock.install(time=NOW)
    page = login(context, "inspector")
    page.goto("/m/inspector")
    bar = page.locator("#duty-bar")
    expect(bar).to_have_attribute("data-duty", "off")
    context.set_offline(True)
    page.click("#duty-on")  # offline: the duty change fails and says so
    expect(bar).to_have_attribute("data-duty", "off")
    context.set_offline(False)
    page.click("#duty-on")
    expect(bar).to_have_attribute("data-duty", "on")
    with live_server.session() as session:
        user = session.scalar(select(User).where(User.username == "inspector"))
        assert user is not None
        uid = user.id

    def stored() -> int:
        with live_server.session() as session:
            return len(
                session.scalars(
                    select(Position).where(Position.subject == "person", Position.subject_id == uid)
                ).all()
            )

    expect(bar).to_have_attribute("data-buffered", "0", timeout=10000)
    assert stored() == 1
    # Without signal the next fix waits on the phone.
    context.set_offline(True)
    context.set_geolocation({"longitude": where[0] + 0.001, "latitude": where[1]})
    page.clock.run_for(31000)
    expect(bar).to_have_attribute("data-buffered", "1", timeout=10000)
    assert stored() == 1
    context.set_offline(False)
    expect(bar).to_have_attribute("data-buffered", "0", timeout=10000)
    assert stored() == 2
    with live_server.session() as session:
        person = session.get(Person, uid)
        assert person is not None and person.duty == "on" and person.in_grid is True
    page.click("#duty-off")
    expect(bar).to_have_attribute("data-duty", "off")


def test_the_hotline_desk_shows_who_is_on_shift_now(
    live_server: LiveServer, new_context: Any
) -> None:
    with live_server.session() as session:
        users = {u.username: u for u in session.scalars(select(User))}
        service.add_shift(
            session,
            team="hotline",
            user_id=users["operator"].id,
            starts_at=NOW - timedelta(hours=1),
            ends_at=NOW + timedelta(hours=7),
        )
        service.add_shift(
            session,
            team="hotline",
            user_id=users["dispatcher"].id,
            starts_at=NOW + timedelta(hours=7),
            ends_at=NOW + timedelta(hours=15),
        )
        session.commit()
    page = login(new_context(), "operator")
    page.goto("/desk/calls")
    expect(page.locator("#on-shift")).to_contain_text(users["operator"].display_name)
    expect(page.locator("#on-shift")).not_to_contain_text(users["dispatcher"].display_name)
