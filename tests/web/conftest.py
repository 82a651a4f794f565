"""Page tests: a real uvicorn server (in a thread) over a fresh demo city on SQLite, and
Debian's chromium driven by Playwright. Playwright downloads no browser here: the project
installs /usr/bin/chromium and a CJK font (scripts/install_browser.sh). Without chromium the
browser tests are skipped on a laptop and fail in CI."""

from __future__ import annotations

import io
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from cityloop.app import create_app
from cityloop.cases.models import Case
from cityloop.cases.service import Actor, transition
from cityloop.cases.states import BY_ACTION
from cityloop.config import Settings
from cityloop.db import Base, make_engine
from cityloop.intake.service import Report, receive
from cityloop.kit.clock import SettableClock
from cityloop.media.service import store_photo
from cityloop.org.models import Department, User
from cityloop.places.demo_xiamen import sample_point
from cityloop.places.service import PlaceIndex
from cityloop.taxonomy.service import working_calendar
from tests.conftest import TZ

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
VENDOR = Path(__file__).resolve().parents[2] / "src/cityloop/web/static/vendor"
# Thursday 2026-08-27 09:00 in Xiamen: a working morning, so no clock runs out mid-test.
NOW = datetime(2026, 8, 27, 9, 0, tzinfo=TZ)
PASSWORD = "cityloop-demo"
YINGCUI = "350203011003"  # 盈翠社区, 嘉莲街道 (the demo inspector's grid)
SCREENSHOTS = Path("/tmp/cityloop-web-tests")


def jpeg(color: str = "gray") -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (80, 60), color).save(buffer, "JPEG")
    return buffer.getvalue()


@dataclass
class LiveServer:
    url: str
    engine: Engine
    clock: SettableClock
    places: PlaceIndex
    data_dir: Path

    def session(self) -> Session:
        return sessionmaker(bind=self.engine, expire_on_commit=False)()

    def point(self, community: str) -> tuple[float, float]:
        return sample_point(self.places, community)

    def case_by_ticket(self, ticket: str) -> Case:
        with self.session() as session:
            case = session.scalar(select(Case).where(Case.ticket == ticket))
            assert case is not None, ticket
            return case

    def cases_described(self, description: str) -> list[Case]:
        with self.session() as session:
            return list(session.scalars(select(Case).where(Case.description == description)))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _screen_data(session: Session, places: PlaceIndex, data_dir: Path) -> None:
    """Cases in several states and places, so the big screen has something to draw."""
    users = {u.username: Actor.of(u) for u in session.scalars(select(User))}
    calendar = working_calendar(session)
    photo = store_photo(session, jpeg(), "before.jpg", directory=data_dir / "media", now=NOW).id
    communities = [
        r.code for r in places.regions("community") if r.code[:6] in ("350203", "350206")
    ]
    stories = (
        ("06010", "路边暴露垃圾", "public", "reported"),
        ("09006", "占道经营，水果摊占用人行道", "video", "dispatched"),
        ("01002", "污水井盖破损", "inspector", "dispatched"),
        ("06042", "垃圾箱满溢", "inspector", "closed"),
        ("09010", "非机动车乱停放", "video", "filed"),
        ("07001", "电线杆上张贴非法小广告", "inspector", "dispatched"),
    )
    for index in range(36):
        class_code, text, source, target = stories[index % len(stories)]
        # One community per case: no report lands within 50 m of another (no duplicates).
        lon, lat = sample_point(places, communities[index * len(communities) // 36])
        at = NOW - timedelta(days=index % 9, hours=index % 5)
        case, _ = receive(
            session,
            Report(source, class_code, f"{text}（大屏{index}）", lon, lat, photos=[photo]),
            actor=users["admin"],
            places=places,
            calendar=calendar,
            now=at,
        )
        path = {
            "reported": [],
            "filed": ["file"],
            "dispatched": ["file", "dispatch"],
            "closed": [
                "file",
                "dispatch",
                "submit_result",
                "approve_result",
                "report_check",
                "close",
            ],
        }[target]
        payloads: dict[str, dict[str, Any]] = {
            "submit_result": {"result": "已清理", "method": "service", "photos": [photo]},
            "report_check": {"passed": True, "photos": [photo]},
        }
        assert case.state != "merged", (index, case.merged_into_id)
        for step, action in enumerate(path):
            if case.state not in BY_ACTION[action].sources:
                continue  # routed automatically already (a component's owner is known)
            transition(
                session,
                case.id,
                action,
                users["admin"],
                payloads.get(action, {}),
                now=at + timedelta(minutes=10 * (step + 1)),
                calendar=calendar,
            )


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    from cityloop.demo.build import build

    tmp = tmp_path_factory.mktemp("web")
    url = f"sqlite:///{tmp / 'web.db'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        build(session, cases=0, now=NOW - timedelta(days=30), media_dir=tmp / "media")
        session.flush()
        places = PlaceIndex.load(session)
        _screen_data(session, places, tmp)
        session.commit()
    settings = Settings(database_url=url, secret_key=secrets.token_urlsafe(32), data_dir=tmp)
    clock = SettableClock(NOW)
    app = create_app(settings, engine=engine, clock=clock)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="cityloop-live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    yield LiveServer(f"http://127.0.0.1:{port}", engine, clock, places, tmp)
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Any]:
    """One Playwright driver per session: every browser below is launched from it."""
    if not CHROMIUM.exists() or not (VENDOR / "leaflet/leaflet.js").exists():
        message = (
            "needs /usr/bin/chromium (scripts/install_browser.sh) and the web assets "
            "(scripts/install_web_assets.sh)"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_driver: Any) -> Iterator[Any]:
    launched = playwright_driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield launched
    launched.close()


# A fake microphone (a beep) that needs no permission prompt: for the voice-note test only,
# in a browser of its own so that no other test runs with a microphone.
FAKE_MEDIA_ARGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


@pytest.fixture(scope="session")
def media_browser(playwright_driver: Any) -> Iterator[Any]:
    launched = playwright_driver.chromium.launch(
        executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *FAKE_MEDIA_ARGS]
    )
    yield launched
    launched.close()


@pytest.fixture
def new_context(browser: Any, live_server: LiveServer) -> Iterator[Callable[..., Any]]:
    """Open browser contexts (one per person); all are closed after the test."""
    yield from _contexts(browser, live_server)


@pytest.fixture
def media_context(media_browser: Any, live_server: LiveServer) -> Iterator[Callable[..., Any]]:
    """Like `new_context`, in the browser with a fake microphone."""
    yield from _contexts(media_browser, live_server)


def _contexts(browser: Any, live_server: LiveServer) -> Iterator[Callable[..., Any]]:
    opened: list[Any] = []

    def make(*, phone: bool = False, where: tuple[float, float] | None = None, **kw: Any) -> Any:
        options: dict[str, Any] = {
            "base_url": live_server.url,
            "locale": "zh-CN",
            "timezone_id": "Asia/Shanghai",
            "viewport": {"width": 390, "height": 844} if phone else {"width": 1440, "height": 900},
        }
        if phone:
            options.update(is_mobile=True, has_touch=True, device_scale_factor=2)
        if where is not None:
            options.update(
                geolocation={"longitude": where[0], "latitude": where[1]},
                permissions=["geolocation"],
            )
        options.update(kw)
        context = browser.new_context(**options)
        context.set_default_timeout(15_000)
        opened.append(context)
        return context

    yield make
    for context in opened:
        context.close()


def login(context: Any, username: str) -> Any:
    """A page of `context` logged in as a demo user, on their desk."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/(desk|m|screen|admin)/?.*"))
    return page


def department_id(live: LiveServer, code: str) -> int:
    with live.session() as session:
        found = session.scalar(select(Department.id).where(Department.code == code))
        assert found is not None
        return int(found)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def form_login(client: TestClient, username: str) -> str:
    """Log in through the login form; returns the session's CSRF token."""
    token = csrf_of(client.get("/login").text)
    response = client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get(response.headers["location"]).text)
