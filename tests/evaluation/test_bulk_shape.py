"""The bulk writer of bench/synthetic_history.py writes the rows transition() writes: the
benchmark and the published-bulletin test count rows of the real shape, not look-alikes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bench.synthetic_history import CaseSpec, CityInfo, Grid, Step, write_cases
from sqlalchemy import select

from cityloop.cases.audit import verify_audit
from cityloop.cases.models import Case, CaseEvent
from cityloop.cases.service import PUBLIC, SYSTEM
from cityloop.places.models import UnitGrid
from tests.evaluation.helpers import Story, at

IGNORED_CASE_COLUMNS = {
    "id",
    "ticket",
    "idempotency_key",
    "lon",
    "lat",
    "h3_cell",
    "unit_grid",
    "resp_grid",
}


def _normal(value: Any) -> Any:
    """Payload timestamps are ISO text in whatever offset the writer had; compare instants."""
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and "T" in value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    return value


def _case_row(session, case_id: int) -> dict[str, Any]:
    case = session.get(Case, case_id)
    session.refresh(case)
    return {
        column.key: getattr(case, column.key)
        for column in Case.__table__.columns
        if column.name not in IGNORED_CASE_COLUMNS
    }


def _events(session, case_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq)
    )
    return [
        {
            "seq": e.seq,
            "at": e.at,
            "actor_id": e.actor_id,
            "actor_name": e.actor_name,
            "actor_role": e.actor_role,
            "action": e.action,
            "from_state": e.from_state,
            "to_state": e.to_state,
            "department_id": e.department_id,
            "payload": _normal(e.payload),
            "photos": e.photos,
        }
        for e in rows
    ]


def test_bulk_rows_equal_the_rows_transition_writes(story: Story, city_session):
    """R-CL-5: the same story told through transition() and through the bulk writer gives
    equal case rows and equal timelines (and the bulk rows carry a valid hash chain)."""
    siming, jialian = story.department("D-350203"), story.department("D-350203011")
    start = at(2, 9, 0)
    real = story.report(start, source="public", class_code="09006")
    plan: list[tuple[str, str, datetime, dict[str, Any]]] = [
        ("send_to_verify", "operator", start + timedelta(minutes=10), {}),
        ("verify", "inspector", start + timedelta(minutes=50), {"confirmed": True}),
        ("file", "shiftlead", start + timedelta(minutes=70), {}),
        ("dispatch", "dispatcher", start + timedelta(minutes=80), {"department_id": siming}),
        ("pass_down", "handler", start + timedelta(minutes=90), {"department_id": jialian}),
        ("request_postpone", "handler_jialian", at(3, 10), {"days": 2, "reason": "需协调"}),
        ("approve_postpone", "dispatcher", at(3, 11), {}),
        (
            "submit_result",
            "handler_jialian",
            at(7, 9),
            {"result": "已处置", "method": "management"},
        ),
        ("send_back", "dispatcher", at(7, 10), {"reason": "照片不清"}),
        (
            "submit_result",
            "handler_jialian",
            at(7, 15),
            {"result": "已重新处置", "method": "service"},
        ),
        ("approve_result", "dispatcher", at(7, 16), {}),
        ("report_check", "inspector", at(8, 9), {"passed": False}),
        ("rework", "operator", at(8, 10), {"reason": "未处置到位"}),
        (
            "submit_result",
            "handler_jialian",
            at(9, 9),
            {"result": "返工完成", "method": "enforcement"},
        ),
        ("approve_result", "dispatcher", at(9, 10), {}),
        ("report_check", "inspector", at(9, 11), {"passed": True}),
        ("close", "operator", at(9, 14, 30), {}),
        ("return_visit", "operator", at(10, 9), {"satisfied": False}),
        ("urge", "dispatcher", at(10, 10), {}),
    ]
    story.run(real, plan)
    city_session.flush()
    case = city_session.get(Case, real)
    grid_row = city_session.get(UnitGrid, case.unit_grid)
    grid = Grid(
        case.unit_grid, case.community, case.resp_grid, grid_row.centroid_lon, grid_row.centroid_lat
    )
    actors = story.actors
    steps = [Step(action, actors[by], when, dict(payload)) for action, by, when, payload in plan]
    for step in steps:
        if step.action in ("submit_result", "report_check"):
            step.payload["photos"] = [story.photo]
    spec = CaseSpec(
        source="public",
        class_code="09006",
        grid=grid,
        lon=case.lon,
        lat=case.lat,
        reporter=PUBLIC,
        created_at=start,
        description=case.description,
        steps=steps,
    )
    (bulk,) = write_cases(city_session, [spec], hash_chain=True)
    city_session.flush()
    assert _case_row(city_session, bulk) == _case_row(city_session, real)
    real_events, bulk_events = _events(city_session, real), _events(city_session, bulk)
    assert [e["action"] for e in bulk_events] == [e["action"] for e in real_events]
    for mine, theirs in zip(bulk_events, real_events, strict=True):
        assert mine == theirs, mine["action"]
    checked, findings = verify_audit(city_session)
    assert checked >= len(bulk_events) * 2 and findings == []
    assert CityInfo(city_session).handling_days("09006", "B") == 2


def test_clock_notes_are_written_like_the_sweeps(story: Story, city_session):
    """The sweep's overdue mark and automatic urging, written in bulk, look like the sweep's."""
    from cityloop.supervision.sweep import sweep

    siming = story.department("D-350203")
    real = story.report(at(2, 9), class_code="07001")
    story.run(
        real,
        [
            ("file", "operator", at(2, 9, 5), {}),
            ("dispatch", "dispatcher", at(2, 9, 10), {"department_id": siming}),
        ],
    )
    marked = at(9, 9, 20)  # urgency C: 4 working days from 2 Sep 09:10 end 8 Sep 09:10
    result = sweep(city_session, now=marked, calendar=story.calendar)
    assert result.overdue == 1 and result.urged == 1
    case = city_session.get(Case, real)
    grid_row = city_session.get(UnitGrid, case.unit_grid)
    grid = Grid(
        case.unit_grid, case.community, case.resp_grid, grid_row.centroid_lon, grid_row.centroid_lat
    )
    actors = story.actors
    due = case.due_at
    spec = CaseSpec(
        source="inspector",
        class_code="07001",
        grid=grid,
        lon=case.lon,
        lat=case.lat,
        reporter=actors["inspector"],
        created_at=at(2, 9),
        description=case.description,
        steps=[
            Step("file", actors["operator"], at(2, 9, 5)),
            Step("dispatch", actors["dispatcher"], at(2, 9, 10), {"department_id": siming}),
            Step(
                "clock_overdue",
                SYSTEM,
                marked,
                {"stage": "handle", "due_at": due.isoformat(), "note": "处置超期"},
            ),
            Step(
                "urge", SYSTEM, marked, {"note": "处置已超过期限，系统自动催办", "automatic": True}
            ),
        ],
    )
    (bulk,) = write_cases(city_session, [spec], hash_chain=True)
    city_session.flush()
    assert _case_row(city_session, bulk) == _case_row(city_session, real)
    assert _events(city_session, bulk) == _events(city_session, real)
