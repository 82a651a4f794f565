"""The one intake path at the service level (R-IN-1, R-AC-2): where a duplicate ends and a new
case begins — 50 m, the same class, an open case, the last 7 days — and what a replay returns.
Run on SQLite and PostgreSQL."""

from __future__ import annotations

import importlib
from datetime import datetime

import h3
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cityloop.cases.models import Case, CaseEvent
from cityloop.cases.service import PUBLIC, Actor, transition
from cityloop.cases.states import OPEN_CASE_SQL
from cityloop.errors import ValidationFailed
from cityloop.intake.service import _DISK_CELLS, _DISK_RADIUS, _NEARBY, Report, receive
from cityloop.kit.geo import h3_cell, haversine_m
from cityloop.taxonomy.service import working_calendar
from tests.cases.helpers import point_in
from tests.conftest import TZ

YINGCUI = "350203011003"
BIN = "06042"  # 垃圾箱满溢


@pytest.fixture
def report_at(city_session, city_places, clock):
    calendar = working_calendar(city_session)

    def make(lon, lat, *, class_code=BIN, source="wechat", key=None, actor=PUBLIC, **extra):
        return receive(
            city_session,
            Report(
                source=source,
                class_code=class_code,
                description=extra.pop("description", "垃圾桶满了"),
                lon=lon,
                lat=lat,
                **extra,
            ),
            actor=actor,
            places=city_places,
            calendar=calendar,
            now=clock.now(),
            idempotency_key=key,
        )

    return make


def _east(lon: float, lat: float, metres: float) -> float:
    """The longitude `metres` east of (lon, lat), measured with the same haversine."""
    step = 0.00001
    return lon + step * metres / haversine_m(lon, lat, lon + step, lat)


def test_a_report_within_50_m_of_an_open_case_of_its_class_joins_it(report_at, city_places):
    lon, lat = point_in(city_places, YINGCUI)
    first, created = report_at(lon, lat)
    assert created and first.state == "reported"
    near, _ = report_at(_east(lon, lat, 45), lat)
    assert near.state == "merged" and near.merged_into_id == first.id
    far, _ = report_at(_east(lon, lat, 60), lat)
    assert far.state == "reported" and far.merged_into_id is None
    other_class, _ = report_at(_east(lon, lat, 10), lat, class_code="06010")
    assert other_class.merged_into_id is None


def test_the_duplicate_window_is_seven_days(report_at, city_places, clock):
    lon, lat = point_in(city_places, YINGCUI)
    first, _ = report_at(lon, lat)
    clock.advance(days=6, hours=23)
    inside, _ = report_at(lon, lat)
    assert inside.merged_into_id == first.id
    clock.advance(hours=2)  # the first report is now more than 7 days old
    outside, _ = report_at(lon, lat)
    assert outside.merged_into_id is None


def test_a_closed_case_takes_no_duplicates(report_at, city_places, city_session, clock):
    lon, lat = point_in(city_places, YINGCUI)
    first, _ = report_at(lon, lat)
    operator = Actor.of(_user(city_session, "operator"))
    transition(
        city_session,
        first.id,
        "reject",
        operator,
        {"reason": "非城管职责"},
        now=clock.now(),
        calendar=working_calendar(city_session),
    )
    again, _ = report_at(lon, lat)
    assert again.state == "reported" and again.merged_into_id is None


def test_the_case_a_duplicate_joins_records_it_on_its_timeline(
    report_at, city_places, city_session
):
    lon, lat = point_in(city_places, YINGCUI)
    first, _ = report_at(lon, lat)
    second, _ = report_at(lon, lat, reporter_phone="13900000002")
    last = city_session.scalars(
        select(CaseEvent).where(CaseEvent.case_id == first.id).order_by(CaseEvent.seq.desc())
    ).first()
    assert last is not None and last.action == "duplicate_report"
    assert last.payload["ticket"] == second.ticket


def test_a_replay_returns_the_first_case_and_writes_nothing(report_at, city_places, city_session):
    lon, lat = point_in(city_places, YINGCUI)
    first, created = report_at(lon, lat, key="wx-msg-1")
    before = city_session.scalar(select(func.count()).select_from(Case))
    again, created_again = report_at(lon + 0.01, lat, key="wx-msg-1", description="重发")
    assert created and not created_again and again.id == first.id
    assert city_session.scalar(select(func.count()).select_from(Case)) == before


def test_leader_and_sensor_reports_never_merge(report_at, city_places, city_session):
    lon, lat = point_in(city_places, YINGCUI)
    leader = Actor.of(_user(city_session, "leader"))
    first, _ = report_at(lon, lat, source="leader", actor=leader)
    second, _ = report_at(lon, lat, source="leader", actor=leader)
    assert first.leader_assigned and second.merged_into_id is None
    assert second.state not in ("reported", "merged")


def test_an_unknown_source_and_an_empty_text_are_refused_naming_the_field(report_at, city_places):
    lon, lat = point_in(city_places, YINGCUI)
    with pytest.raises(ValidationFailed) as unknown:
        report_at(lon, lat, source="carrier-pigeon")
    assert unknown.value.field == "source"
    with pytest.raises(ValidationFailed) as empty:
        report_at(lon, lat, description="   ")
    assert empty.value.field == "description"


def _user(session, username):
    from cityloop.org.models import User

    user = session.scalar(select(User).where(User.username == username))
    assert user is not None
    return user


def test_two_sends_of_one_key_at_once_give_one_case(city_db):
    """A phone that retries before the first answer arrives (R-IN-1): the second send waits
    for the first and is answered with its case — never a second case, never a 500."""
    import threading
    import time

    from sqlalchemy.orm import sessionmaker

    from cityloop.db import begin_write, make_engine
    from cityloop.places.service import PlaceIndex

    engine = make_engine(city_db.url)
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory() as session:
        places = PlaceIndex.load(session)
        calendar = working_calendar(session)
    lon, lat = city_db.points[0]
    first_sent = threading.Event()
    results: dict[str, tuple[int, bool]] = {}
    errors: list[BaseException] = []

    def send(name: str, hold: float) -> None:
        try:
            with factory() as session:
                begin_write(session)
                case, created = receive(
                    session,
                    Report(
                        source="app", class_code=BIN, description="垃圾桶满了", lon=lon, lat=lat
                    ),
                    actor=PUBLIC,
                    places=places,
                    calendar=calendar,
                    now=datetime(2026, 9, 1, 10, 0, tzinfo=TZ),
                    idempotency_key="app-retry-1",
                )
                first_sent.set()
                time.sleep(hold)  # the first send's transaction is still open
                session.commit()
                results[name] = (case.id, created)
        except BaseException as exc:
            errors.append(exc)
            first_sent.set()

    first = threading.Thread(target=send, args=("first", 0.5))
    first.start()
    first_sent.wait(10)
    second = threading.Thread(target=send, args=("second", 0.0))
    second.start()
    first.join(20)
    second.join(20)
    engine_count = sessionmaker(engine)
    with engine_count() as session:
        stored = session.scalar(
            select(func.count()).select_from(Case).where(Case.idempotency_key == "app:app-retry-1")
        )
    engine.dispose()
    assert not errors, errors
    assert results["first"] == (results["second"][0], True)
    assert results["second"][1] is False
    assert stored == 1


def _nearby_plan(session: Session, lon: float, lat: float) -> str:
    """The database's plan for the duplicate search at (lon, lat)."""
    cells = list(h3.grid_disk(h3_cell(lon, lat), _DISK_RADIUS))
    cells += cells[:1] * (_DISK_CELLS - len(cells))
    parameters = {f"cell{i}": cell for i, cell in enumerate(cells)} | {"class_code": BIN}
    connection = session.connection()
    compiled = _NEARBY.compile(dialect=connection.dialect)
    if connection.dialect.name == "sqlite":
        # SQLite rates the two (class, cell) indexes alike and may take either; INDEXED BY
        # makes it use the partial one, and fails ("no query solution") if the query's
        # condition does not imply the index's.
        arguments = tuple(parameters[name] for name in compiled.positiontup or ())
        forced = str(compiled).replace(
            "FROM cases", "FROM cases INDEXED BY ix_cases_open_class_h3", 1
        )
        rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {forced}", arguments).all()
    else:
        # With the table this small a sequential scan is cheapest; what is asked here is
        # whether the partial index can serve the query at all.
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        rows = connection.exec_driver_sql(f"EXPLAIN {compiled}", parameters).all()
    return "\n".join(str(row[-1]) for row in rows)


def test_the_duplicate_search_reads_the_index_of_open_cases_only(
    report_at, city_places, city_session
):
    """R-IN-1 at a hot spot: merged reports and closed cases pile up where the same problem
    comes back; the search for an open duplicate reads the partial index of open cases, whose
    condition it must repeat word for word (a change of the states needs a migration)."""
    migration = importlib.import_module(
        "cityloop.migrations.versions.0006_open_case_duplicate_index"
    )
    assert migration._OPEN == OPEN_CASE_SQL
    lon, lat = point_in(city_places, YINGCUI)
    first, _ = report_at(lon, lat)
    for _ in range(3):
        again, _ = report_at(lon, lat)
        assert again.merged_into_id == first.id
    assert "ix_cases_open_class_h3" in _nearby_plan(city_session, lon, lat)
