"""`cityloop verify-audit` finds a timeline changed behind the application's back (R-CL-5: the
case file can be traced step by step and trusted), on SQLite and on PostgreSQL: a changed row,
a deleted row, and a changed row whose own hash was recomputed all make it exit 1 and name the
case and the event."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cityloop.cases.audit import event_digest, hashed_fields
from cityloop.cases.models import CaseEvent
from cityloop.cases.service import Actor, transition
from cityloop.config import get_settings
from cityloop.intake.service import Report, receive
from cityloop.org.models import User
from cityloop.taxonomy.service import working_calendar
from tests.cases.helpers import YINGCUI, point_in
from tests.conftest import TZ

NOW = datetime(2026, 9, 2, 10, 0, tzinfo=TZ)


@pytest.fixture
def committed_case(city_engine: Engine, city_places, monkeypatch) -> Iterator[int]:
    """A case with three timeline events, committed (the command reads another connection)."""
    monkeypatch.setenv(
        "CITYLOOP_DATABASE_URL", city_engine.url.render_as_string(hide_password=False)
    )
    lon, lat = point_in(city_places, YINGCUI)
    with Session(city_engine) as session:
        operator = Actor.of(session.scalar(select(User).where(User.username == "operator")))
        calendar = working_calendar(session)
        case, _ = receive(
            session,
            Report(source="public", class_code="06010", description="暴露垃圾", lon=lon, lat=lat),
            actor=operator,
            places=city_places,
            calendar=calendar,
            now=NOW,
        )
        transition(session, case.id, "send_to_verify", operator, {}, now=NOW, calendar=calendar)
        transition(
            session,
            case.id,
            "reject",
            operator,
            {"reason": "重复上报"},
            now=NOW,
            calendar=calendar,
        )
        session.commit()
        case_id = case.id
    yield case_id
    get_settings.cache_clear()
    with city_engine.begin() as conn:  # committed rows would leak into other tests
        conn.execute(text("DELETE FROM case_events WHERE case_id = :c"), {"c": case_id})
        conn.execute(text("DELETE FROM cases WHERE id = :c"), {"c": case_id})


def _verify(city_engine: Engine):
    url = city_engine.url.render_as_string(hide_password=False)
    from cityloop.cli import app

    return CliRunner().invoke(app, ["verify-audit", "--db", url])


def _lines_about(output: str, case_id: int) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(f"case {case_id} ")]


def test_an_intact_timeline_passes(city_engine, committed_case):
    result = _verify(city_engine)
    assert result.exit_code == 0, result.output
    assert "every chain intact" in result.output


def test_a_changed_row_is_found(city_engine, committed_case):
    with city_engine.begin() as conn:
        conn.execute(
            update(CaseEvent)
            .where(CaseEvent.case_id == committed_case, CaseEvent.seq == 3)
            .values(payload={"reason": "领导要求不予受理"})
        )
    result = _verify(city_engine)
    assert result.exit_code == 1
    (line,) = _lines_about(result.output, committed_case)
    assert "event 3" in line and "row changed" in line


def test_a_deleted_row_is_found(city_engine, committed_case):
    with city_engine.begin() as conn:
        conn.execute(
            text("DELETE FROM case_events WHERE case_id = :c AND seq = 2"), {"c": committed_case}
        )
    result = _verify(city_engine)
    assert result.exit_code == 1
    lines = _lines_about(result.output, committed_case)
    assert any("event 3" in line and "missing event" in line for line in lines), lines
    assert any("chain broken" in line for line in lines), lines


def test_a_row_rehashed_after_the_change_breaks_the_next_link(city_engine, committed_case):
    with Session(city_engine) as session:
        event = session.scalar(
            select(CaseEvent).where(CaseEvent.case_id == committed_case, CaseEvent.seq == 2)
        )
        assert event is not None
        event.actor_name = "someone else"
        event.hash = event_digest(event.prev_hash, hashed_fields(event))
        session.commit()
    result = _verify(city_engine)
    assert result.exit_code == 1
    (line,) = _lines_about(result.output, committed_case)
    assert "event 3" in line and "chain broken" in line
