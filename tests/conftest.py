"""Shared fixtures. Every storage test runs twice: on SQLite (a WAL file) and on PostgreSQL.

PostgreSQL comes from CITYLOOP_TEST_PG_URL (default: the local server, trust auth). When it
cannot be reached the PostgreSQL half is skipped on a laptop, and fails in CI (CI=true).
"""

from __future__ import annotations

import io
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from cityloop.app import create_app
from cityloop.config import Settings
from cityloop.db import Base, make_engine
from cityloop.documents import storage as document_storage
from cityloop.kit.clock import SettableClock
from cityloop.listeners import register_listeners
from cityloop.models import load_all_models
from cityloop.org.models import User
from cityloop.org.service import issue_token
from cityloop.places.service import PlaceIndex
from cityloop.taxonomy import service as taxonomy_service

load_all_models()
# The event stream's listeners, as every process registers them at start-up.
register_listeners()

PG_URL = os.environ.get(
    "CITYLOOP_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ("sqlite", "postgresql")
TZ = ZoneInfo("Asia/Shanghai")
TEST_SETTINGS = Settings(
    database_url="sqlite://",
    secret_key=secrets.token_urlsafe(32),
    data_dir=Path(tempfile.mkdtemp(prefix="cityloop-test-")),
)
# Commands run in-process (CliRunner) and the servers and workers tests start read their key
# from the environment, as in production: the same key as the test apps'.
os.environ.setdefault("CITYLOOP_SECRET_KEY", TEST_SETTINGS.secret_key)
# Documents issued by a service test without an app go where the app's would, not into ./var.
document_storage.configure(TEST_SETTINGS.data_dir)


def _pg_database(name: str) -> str:
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        if os.environ.get("CI"):
            raise RuntimeError(f"PostgreSQL is required in CI but unreachable at {PG_URL}") from exc
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}: {exc}")
    finally:
        admin.dispose()
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def _engine_for(backend: str, name: str, tmp: Path) -> Engine:
    if backend == "sqlite":
        return make_engine(f"sqlite:///{tmp / (name + '.db')}")
    return make_engine(_pg_database(f"{name}_{os.getpid()}"))


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def empty_engine(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = _engine_for(backend, "cityloop_test_empty", tmp_path_factory.mktemp("empty"))
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def city_engine(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The demo city without generated cases: each test makes the cases it needs."""
    from cityloop.demo.build import build

    engine = _engine_for(backend, "cityloop_test_city", tmp_path_factory.mktemp("city"))
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        build(session, cases=0, now=datetime(2026, 8, 1, 9, 0, tzinfo=TZ))
        session.commit()
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def city_places(city_engine: Engine) -> PlaceIndex:
    with Session(city_engine) as session:
        return PlaceIndex.load(session)


@pytest.fixture(autouse=True)
def _forget_cached_classes() -> Iterator[None]:
    # A test's edits to the taxonomy are rolled back behind the application's back: copies of
    # the class rows it kept (taxonomy.service) must not outlive the test.
    yield
    taxonomy_service._class_cache.clear()
    # Likewise the notification rules, templates and recipients kept per process.
    from cityloop.notifications.service import CACHE

    CACHE.drop()


def _bound_session_factory(connection: Connection) -> sessionmaker[Session]:
    # The app's commits release savepoints; the test's outer transaction is rolled back.
    return sessionmaker(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )


@pytest.fixture
def db_session(empty_engine: Engine) -> Iterator[Session]:
    with empty_engine.connect() as connection:
        transaction = connection.begin()
        session = _bound_session_factory(connection)()
        yield session
        session.close()
        transaction.rollback()


@pytest.fixture
def city_connection(city_engine: Engine) -> Iterator[Connection]:
    with city_engine.connect() as connection:
        transaction = connection.begin()
        yield connection
        transaction.rollback()


@pytest.fixture
def city_session(city_connection: Connection) -> Iterator[Session]:
    session = _bound_session_factory(city_connection)()
    yield session
    session.close()


@pytest.fixture
def clock() -> SettableClock:
    """Thursday 2026-08-27 16:05 in Xiamen: the minute seed 002's grid worker reported."""
    return SettableClock(datetime(2026, 8, 27, 16, 5, tzinfo=TZ))


@pytest.fixture
def client(
    city_connection: Connection, city_places: PlaceIndex, clock: SettableClock
) -> Iterator[TestClient]:
    app = create_app(
        TEST_SETTINGS, session_factory=_bound_session_factory(city_connection), clock=clock
    )
    app.state.places = lambda: city_places
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def auth(city_session: Session) -> Callable[[str], dict[str, str]]:
    """Bearer headers for a demo user (a real token, signed with the test secret)."""
    from sqlalchemy import select

    def headers(username: str) -> dict[str, str]:
        user = city_session.scalar(select(User).where(User.username == username))
        assert user is not None, username
        token = issue_token(user, TEST_SETTINGS.keyring().signing, 60, datetime.now(TZ))
        return {"Authorization": f"Bearer {token}"}

    return headers


def jpeg_bytes(color: str = "gray", size: tuple[int, int] = (64, 48)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def upload(client: TestClient, auth: Callable[[str], dict[str, str]]) -> Callable[..., str]:
    """Upload a real generated JPEG through the API; returns its media id."""

    def make(name: str = "photo.jpg", user: str = "admin", color: str = "gray") -> str:
        response = client.post(
            "/api/v1/media",
            files={"file": (name, jpeg_bytes(color), "image/jpeg")},
            headers=auth(user),
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    return make


# -- a committed demo city per test, for tests that run real processes or copy databases -----
@dataclass(frozen=True)
class CityDb:
    """A demo city (no cases) of one test's own: its URL, a data directory for the processes
    the test starts, and unit grid centres (points the city locates)."""

    url: str
    data_dir: Path
    points: list[tuple[float, float]]


@pytest.fixture(scope="session")
def city_db_template(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CityDb]:
    from sqlalchemy import select

    from cityloop.demo.build import build
    from cityloop.places.models import UnitGrid

    root = tmp_path_factory.mktemp("city-template")
    if backend == "sqlite":
        url = f"sqlite:///{root / 'city.db'}"
    else:
        url = _pg_database(f"cityloop_test_template_{os.getpid()}")
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        build(session, cases=0, now=datetime(2026, 9, 1, 9, 0, tzinfo=TZ), media_dir=root / "media")
        session.commit()
        points = [
            (float(lon), float(lat))
            for lon, lat in session.execute(
                select(UnitGrid.centroid_lon, UnitGrid.centroid_lat)
                .order_by(UnitGrid.code)
                .limit(4000)
            )
        ]
    engine.dispose()  # a template database must have no connections left
    yield CityDb(url, root, points)
    if backend == "postgresql":
        _drop_pg_database(make_url(url).database or "")


def _drop_pg_database(name: str) -> None:
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def city_db(backend: str, city_db_template: CityDb, tmp_path: Path) -> Iterator[CityDb]:
    """The demo city copied for this test alone (a file copy, or CREATE DATABASE … TEMPLATE:
    a fraction of a second instead of building it again); committed writes are welcome."""
    import shutil
    import uuid

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    if backend == "sqlite":
        target = tmp_path / "city.db"
        shutil.copyfile(make_url(city_db_template.url).database or "", target)
        yield CityDb(f"sqlite:///{target}", data_dir, city_db_template.points)
        return
    name = f"cityloop_test_city_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    template = make_url(city_db_template.url).database
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    finally:
        admin.dispose()
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    yield CityDb(url, data_dir, city_db_template.points)
    _drop_pg_database(name)
