"""Two users acting on one case at the same moment: one wins, the other gets a conflict and
the timeline has one event. The hash chain finds a timeline row changed behind the
application's back (R-CL-5)."""

from __future__ import annotations

import threading
from datetime import datetime

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cityloop.cases.audit import verify_audit
from cityloop.cases.models import Case, CaseEvent
from cityloop.cases.service import Actor, transition
from cityloop.db import begin_write
from cityloop.errors import Conflict
from cityloop.intake.service import Report, receive
from cityloop.org.models import User
from cityloop.taxonomy.service import working_calendar
from tests.cases.helpers import YINGCUI, point_in
from tests.conftest import TZ

NOW = datetime(2026, 9, 2, 10, 0, tzinfo=TZ)


def _committed_case(engine, places) -> int:
    lon, lat = point_in(places, YINGCUI)
    with Session(engine) as session:
        admin = Actor.of(session.scalar(select(User).where(User.username == "admin")))
        case, _ = receive(
            session,
            Report(source="public", class_code="06010", description="暴露垃圾", lon=lon, lat=lat),
            actor=admin,
            places=places,
            calendar=working_calendar(session),
            now=NOW,
        )
        session.commit()
        return case.id


def test_simultaneous_actions_one_wins_one_conflicts(city_engine, city_places):
    case_id = _committed_case(city_engine, city_places)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def act(username: str, action: str, payload: dict) -> None:
        with Session(city_engine) as session:
            actor = Actor.of(session.scalar(select(User).where(User.username == username)))
            calendar = working_calendar(session)
        with Session(city_engine) as session:
            barrier.wait()
            begin_write(session)
            try:
                transition(session, case_id, action, actor, payload, now=NOW, calendar=calendar)
                session.commit()
                outcomes.append("won")
            except Conflict:
                session.rollback()
                outcomes.append("conflict")

    threads = [
        threading.Thread(target=act, args=("operator", "file", {})),
        threading.Thread(target=act, args=("shiftlead", "reject", {"reason": "重复上报"})),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["conflict", "won"]
    with Session(city_engine) as session:
        events = session.scalars(select(CaseEvent.action).where(CaseEvent.case_id == case_id)).all()
        case = session.get(Case, case_id)
        assert len(events) == 2 and events[0] == "report"
        assert case.state == {"file": "filed", "reject": "rejected"}[events[1]]
        assert case.version == 2
    _delete_case(city_engine, case_id)


def _delete_case(engine, case_id: int) -> None:
    """Committed rows would leak into the other tests of the shared city database."""
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM case_events WHERE case_id = :c"), {"c": case_id})
        conn.execute(text("DELETE FROM cases WHERE id = :c"), {"c": case_id})


def test_a_changed_timeline_row_is_found(city_engine, city_places):
    case_id = _committed_case(city_engine, city_places)
    with Session(city_engine) as session:
        checked, findings = verify_audit(session)
        assert checked >= 1 and not [f for f in findings if f.case_id == case_id]
        session.execute(
            update(CaseEvent).where(CaseEvent.case_id == case_id).values(actor_name="someone else")
        )
        session.commit()
        _, findings = verify_audit(session)
        assert [(f.case_id, f.seq) for f in findings if f.case_id == case_id] == [(case_id, 1)]
    _delete_case(city_engine, case_id)


def test_verify_audit_command_exits_nonzero_on_a_changed_row(tmp_path, city_places, monkeypatch):
    from cityloop.cli import app
    from cityloop.db import Base, make_engine
    from cityloop.demo.build import build

    url = f"sqlite:///{tmp_path / 'audit.db'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        build(session, cases=5, now=NOW, media_dir=tmp_path / "media")
        session.commit()
    runner = CliRunner()
    ok = runner.invoke(app, ["verify-audit", "--db", url])
    assert ok.exit_code == 0, ok.output
    assert "every chain intact" in ok.output
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE case_events SET payload = '{}' WHERE seq = 1 AND case_id = "
                "(SELECT MIN(case_id) FROM case_events)"
            )
        )
    bad = runner.invoke(app, ["verify-audit", "--db", url])
    assert bad.exit_code == 1
    assert "row changed" in bad.output
    engine.dispose()
