"""The queries of evaluation and analytics: counts over the fact rows of a `FactSource`.

Each function answers one question for a time window and returns plain dicts; grouping
columns are chosen by the caller so that one query serves a level of regions, departments
or people. No scoring here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import FromClause

from cityloop.evaluation import cube
from cityloop.evaluation.rollup import FactSource
from cityloop.org.models import Department, User
from cityloop.places.models import Region, UnitGrid

REGION_LEVELS = ("district", "street", "community", "resp_grid", "unit_grid")
METHODS = cube.METHODS


@dataclass(frozen=True)
class Window:
    """[start, end) in UTC-aware datetimes; `end` is already clipped to `now`."""

    start: datetime
    end: datetime
    now: datetime

    @property
    def empty(self) -> bool:
        return self.end <= self.start


def _count_if(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _grouped(
    session: Session,
    source: FromClause,
    by: Sequence[str],
    measures: Mapping[str, Any],
    where: Sequence[ColumnElement[bool]],
) -> list[dict[str, Any]]:
    columns = [source.c[name] for name in by]
    query = select(*columns, *[m.label(k) for k, m in measures.items()]).where(*where)
    if columns:
        query = query.group_by(*columns)
    return [dict(row._mapping) for row in session.execute(query).all()]


def closes(session: Session, src: FactSource, w: Window, by: Sequence[str]) -> list[dict[str, Any]]:
    """结案: close events in the window, with on-time closes (the close payload's on_time),
    on-time handling (the result before it was in time) and the 721 method."""
    return cube.grouped(session, src, cube.SPECS["closes"], w, by)


def overdue_open(
    session: Session, src: FactSource, w: Window, by: Sequence[str]
) -> list[dict[str, Any]]:
    """超期未结案: cases whose handling deadline fell in the window and that were still
    under it (not closed, returned or suspended) at the window's end."""
    h = src.holds.c
    submitted = and_(h.submitted_at.is_not(None), h.submitted_at < w.end)
    return _grouped(
        session,
        src.holds,
        by,
        {
            "overdue_open": func.count(),
            "overdue_submitted": _count_if(submitted),
            "overdue_submitted_on_time": _count_if(and_(submitted, h.submitted_on_time.is_(True))),
        },
        [
            h.due_at >= w.start,
            h.due_at < w.end,
            h.started_at < w.end,
            or_(h.ended_at.is_(None), h.ended_at >= w.end),
        ],
    )


def action_counts(
    session: Session, src: FactSource, w: Window, by: Sequence[str], actions: Sequence[str]
) -> list[dict[str, Any]]:
    """How many rework, approve_postpone and return events in the window."""
    rows = cube.grouped(session, src, cube.SPECS["actions"], w, [*by, "action"])
    return [r for r in rows if r["action"] in actions]


def filings(
    session: Session, src: FactSource, w: Window, by: Sequence[str], public: Sequence[str]
) -> list[dict[str, Any]]:
    """立案: cases filed in the window (their first `file`, or born filed), and how many of
    them came from the public."""
    spec = cube.SPECS["filings"]
    if not set(by) <= set(spec.keys):
        # Finer than the cube (unit grids): count in SQL, one row per place.
        c = src.cases.c
        return _grouped(
            session,
            src.cases,
            by,
            {"filed": func.count(), "public_filed": _count_if(c.source.in_(list(public)))},
            [c.filed_at >= w.start, c.filed_at < w.end],
        )
    public_set = set(public)
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in cube.grouped(session, src, cube.SPECS["filings"], w, [*by, "source"]):
        key = tuple(row[name] for name in by)
        bucket = out.setdefault(
            key, {**dict(zip(by, key, strict=True)), "filed": 0, "public_filed": 0}
        )
        bucket["filed"] += row["filed"]
        if row["source"] in public_set:
            bucket["public_filed"] += row["filed"]
    return list(out.values())


def reported(
    session: Session, src: FactSource, w: Window, by: Sequence[str]
) -> list[dict[str, Any]]:
    """Cases reported in the window and what became of them by now."""
    rows = cube.grouped(session, src, cube.SPECS["reported"], w, by)
    return rows or [{"reports": 0, "filed": 0, "rejected": 0, "merged": 0}]


def flagged(
    session: Session, src: FactSource, w: Window, action: str, by: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """submit_result or return_visit events in the window, with how many carry flag true /
    any flag."""
    spec = {"submit_result": "submits", "return_visit": "visits"}[action]
    return cube.grouped(session, src, cube.SPECS[spec], w, by)


def actor_actions(session: Session, src: FactSource, w: Window) -> list[dict[str, Any]]:
    """Per person and action: how many, how many within the stage limit, how many flagged
    (a dispatch the department returned)."""
    return cube.grouped(session, src, cube.SPECS["actor_actions"], w, ["actor_id", "action"])


def accepted_cases(session: Session, src: FactSource, w: Window) -> dict[int, int]:
    """受理数: cases on which each person took their first acceptance decision in the window."""
    rows = cube.grouped(session, src, cube.SPECS["accepted"], w, ["actor_id"])
    return {r["actor_id"]: r["accepted"] for r in rows}


def voided_filings(session: Session, src: FactSource, w: Window) -> dict[int, int]:
    """作废数: cases a person filed in the window that were later rejected or merged."""
    rows = cube.grouped(session, src, cube.SPECS["voided"], w, ["filed_by"])
    return {r["filed_by"]: r["voided"] for r in rows}


def inspector_reports(session: Session, src: FactSource, w: Window) -> list[dict[str, Any]]:
    """上报数 / 有效上报数: inspectors' own reports in the window, and those filed since."""
    return cube.grouped(session, src, cube.SPECS["inspector_reports"], w, ["reporter_id"])


def site_tasks(
    session: Session, src: FactSource, w: Window, *, fine: bool = False
) -> list[dict[str, Any]]:
    """核实 / 核查 tasks given in the window, by place: those that count (done, or not done
    within the limit) and those done in time. A verification the centre withdrew (rejected or
    merged the case) before its limit ran out does not count."""
    places = [*cube.PLACE, *(["unit_grid"] if fine else [])]
    finished = cube.grouped(session, src, cube.SPECS["site_tasks"], w, ["stage", *places])
    c = src.cases.c
    waiting = _grouped(
        session,
        src.cases,
        ["state_stage", *places],
        {"due": func.count()},
        [
            c.state_stage.in_(("verify", "check")),
            c.state_at >= w.start,
            c.state_at < w.end,
            c.state_deadline < w.now,
        ],
    )
    for row in waiting:
        row["stage"] = row.pop("state_stage")
        row["on_time"] = 0
    return finished + waiting


# -- names ---------------------------------------------------------------------------------
def department_names(session: Session) -> dict[int, dict[str, Any]]:
    rows = session.execute(
        select(Department.id, Department.code, Department.name, Department.kind)
    ).all()
    return {i: {"code": code, "name": name, "kind": kind} for i, code, name, kind in rows}


def region_names(session: Session) -> dict[str, str]:
    return dict(session.execute(select(Region.code, Region.name)).all())


def unit_grid_counts(session: Session) -> dict[str, int]:
    """Unit grids under each region code (district, street, community, responsibility grid)."""
    counts: dict[str, int] = {}
    rows = session.execute(
        select(UnitGrid.community_code, UnitGrid.resp_grid_code, func.count()).group_by(
            UnitGrid.community_code, UnitGrid.resp_grid_code
        )
    ).all()
    for community, resp_grid, n in rows:
        for code in {community[:6], community[:9], community, resp_grid}:
            if code:
                counts[code] = counts.get(code, 0) + n
    return counts


def staff(session: Session, roles: Sequence[str]) -> list[User]:
    return list(session.scalars(select(User).where(User.role.in_(roles)).order_by(User.username)))
