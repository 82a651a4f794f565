"""Analytics queries: heat map, high incidence, stages, trends, case export."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import h3
from sqlalchemy import ColumnElement, case, func, or_, select
from sqlalchemy.orm import Session

from cityloop.cases.models import Case
from cityloop.cases.service import Actor
from cityloop.cases.states import OPEN_STATES, STAGE_LABELS, STATES, state_label
from cityloop.errors import Forbidden, ValidationFailed
from cityloop.evaluation.periods import Period
from cityloop.evaluation.repository import Window
from cityloop.evaluation.rollup import FactSource
from cityloop.evaluation.service import READERS, visible_departments, window_of
from cityloop.intake.service import SOURCES
from cityloop.kit.calendar import WorkingCalendar
from cityloop.org.models import Department
from cityloop.places.models import Region
from cityloop.taxonomy.models import ProblemClass
from cityloop.taxonomy.service import stage_limits

MAX_RESOLUTION = 10  # Case.h3_cell is resolution 10
WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")


@dataclass(frozen=True)
class CaseFilter:
    """Filters on the cases counted: class (a code or the prefix of a major class), source,
    current state (or "open" / "closed"), place prefix, department (current holder)."""

    class_code: str | None = None
    source: str | None = None
    state: str | None = None
    region: str | None = None
    department_id: int | None = None

    def check(self) -> None:
        if self.source is not None and self.source not in SOURCES:
            raise ValidationFailed(f"unknown source {self.source!r}", field="source")
        if self.state is not None and self.state not in (*STATES, "open", "closed"):
            raise ValidationFailed(
                f"state must be one of {', '.join(STATES)}, open or closed", field="state"
            )
        if self.class_code is not None and not self.class_code.isalnum():
            raise ValidationFailed("class_code is a class code or its prefix", field="class_code")
        if self.region is not None and not self.region.replace("R", "").isdigit():
            raise ValidationFailed("region is a region code (or its prefix)", field="region")


def check_reader(actor: Actor) -> None:
    if actor.role not in READERS and actor.role != "handler":
        raise Forbidden(f"the role {actor.role} may not read the analytics")


@dataclass
class Scope:
    session: Session
    source: FactSource
    window: Window
    period: Period
    departments: set[int] | None  # None: the whole city
    calendar: WorkingCalendar


def scope(
    session: Session,
    source: FactSource,
    period: Period,
    *,
    actor: Actor,
    now: datetime,
    calendar: WorkingCalendar,
) -> Scope:
    check_reader(actor)
    return Scope(
        session,
        source,
        window_of(period, calendar, now),
        period,
        visible_departments(session, actor),
        calendar,
    )


def _case_conditions(
    sc: Scope, f: CaseFilter, *, reported_in_window: bool = True
) -> list[ColumnElement[bool]]:
    c = sc.source.cases.c
    where: list[ColumnElement[bool]] = []
    if reported_in_window:
        where += [c.created_at >= sc.window.start, c.created_at < sc.window.end]
    if f.class_code:
        where.append(
            c.class_code == f.class_code
            if len(f.class_code) >= 5
            else c.class_code.startswith(f.class_code)
        )
    if f.source:
        where.append(c.source == f.source)
    if f.state == "open":
        where.append(c.state.in_(OPEN_STATES))
    elif f.state == "closed":
        where.append(c.state.in_(("closed", "archived")))
    elif f.state:
        where.append(c.state == f.state)
    if f.region:
        where.append(
            or_(
                *[
                    c[level].startswith(f.region)
                    for level in ("district", "street", "community", "resp_grid", "unit_grid")
                ]
            )
        )
    if f.department_id is not None:
        where.append(c.department_id == f.department_id)
    if sc.departments is not None:
        where.append(c.department_id.in_(sc.departments or [-1]))
    return where


# -- heat map -----------------------------------------------------------------------------------
def heatmap(
    sc: Scope, f: CaseFilter, *, resolution: int = 9, top: int = 10, boundaries: bool = False
) -> dict[str, Any]:
    """Case counts per h3 cell (resolution ≤ 10) and the hot spots ranked (R-AN-2)."""
    if not 0 <= resolution <= MAX_RESOLUTION:
        raise ValidationFailed(f"resolution must be 0..{MAX_RESOLUTION}", field="resolution")
    c = sc.source.cases.c
    counts: dict[str, int] = {}
    places: dict[str, dict[tuple[str | None, str | None], int]] = {}
    if not sc.window.empty:
        query = (
            select(c.h3_cell, c.street, c.community, func.count())
            .where(*_case_conditions(sc, f))
            .group_by(c.h3_cell, c.street, c.community)
        )
        parent_of: dict[str, str] = {}
        for cell, street, community, n in sc.session.execute(query):
            parent = parent_of.get(cell)
            if parent is None:
                parent = (
                    cell if resolution == MAX_RESOLUTION else h3.cell_to_parent(cell, resolution)
                )
                parent_of[cell] = parent
            counts[parent] = counts.get(parent, 0) + n
            spot = places.setdefault(parent, {})
            spot[(street, community)] = spot.get((street, community), 0) + n
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    cells = []
    for cell, n in ordered:
        lat, lon = h3.cell_to_latlng(cell)
        cells.append({"cell": cell, "count": n, "lat": round(lat, 6), "lon": round(lon, 6)})
    names = _region_names(
        sc.session, {code for spot in places.values() for pair in spot for code in pair if code}
    )
    hot = []
    for position, item in enumerate(cells[:top], start=1):
        spot = places[item["cell"]]
        (street, community), _ = max(spot.items(), key=lambda kv: (kv[1], str(kv[0])))
        entry = {
            **item,
            "rank": position,
            "street": street,
            "street_name": names.get(street or ""),
            "community": community,
            "community_name": names.get(community or ""),
        }
        if boundaries:
            entry["boundary"] = [
                [round(lon, 6), round(lat, 6)] for lat, lon in h3.cell_to_boundary(item["cell"])
            ]
        hot.append(entry)
    return {
        "resolution": resolution,
        "total": sum(counts.values()),
        "cells": cells,
        "hot_spots": hot,
    }


# -- high incidence -------------------------------------------------------------------------------
def incidence(sc: Scope, f: CaseFilter, *, top: int = 20) -> dict[str, Any]:
    """When, where, what kind and from where (R-AN-2, R-AN-3)."""
    c = sc.source.cases.c
    where = _case_conditions(sc, f)
    empty = sc.window.empty
    matrix = [[0] * 24 for _ in range(7)]
    classes: list[tuple[str, int]] = []
    streets: list[tuple[str, int]] = []
    communities: list[tuple[str, int]] = []
    sources: list[tuple[str, int]] = []
    if not empty:
        for weekday, hour, n in sc.session.execute(
            select(c.local_weekday, c.local_hour, func.count())
            .where(*where)
            .group_by(c.local_weekday, c.local_hour)
        ):
            matrix[weekday][hour] = n

        def ranked(column: Any) -> list[tuple[str, int]]:
            rows = sc.session.execute(
                select(column, func.count().label("n"))
                .where(*where, column.is_not(None))
                .group_by(column)
                .order_by(func.count().desc(), column)
            )
            return [(str(k), int(n)) for k, n in rows]

        classes, streets = ranked(c.class_code), ranked(c.street)
        communities, sources = ranked(c.community), ranked(c.source)
    total = sum(n for _, n in sources)
    class_names = dict(
        sc.session.execute(
            select(ProblemClass.code, func.coalesce(ProblemClass.matter_name, ProblemClass.name))
        ).all()
    )
    names = _region_names(sc.session, {k for k, _ in streets[:top] + communities[:top]})

    def share(n: int) -> float | None:
        return n / total if total else None

    hours = [sum(matrix[d][h] for d in range(7)) for h in range(24)]
    days = [sum(row) for row in matrix]
    return {
        "total": total,
        "by_hour_weekday": {"weekdays": list(WEEKDAYS), "hours": list(range(24)), "counts": matrix},
        "by_hour": hours,
        "by_weekday": days,
        "peak": _peak(matrix),
        "classes": [
            {
                "rank": i,
                "class_code": k,
                "name": class_names.get(k, k),
                "count": n,
                "share": share(n),
            }
            for i, (k, n) in enumerate(classes[:top], start=1)
        ],
        "streets": [
            {"rank": i, "code": k, "name": names.get(k, k), "count": n, "share": share(n)}
            for i, (k, n) in enumerate(streets[:top], start=1)
        ],
        "communities": [
            {"rank": i, "code": k, "name": names.get(k, k), "count": n, "share": share(n)}
            for i, (k, n) in enumerate(communities[:top], start=1)
        ],
        "sources": [
            {"source": k, "label": SOURCES.get(k, (k,))[0], "count": n, "share": share(n)}
            for k, n in sources
        ],
    }


def _peak(matrix: list[list[int]]) -> dict[str, Any] | None:
    best = max(((matrix[d][h], d, h) for d in range(7) for h in range(24)), default=(0, 0, 0))
    if best[0] == 0:
        return None
    return {
        "weekday": best[1],
        "weekday_label": WEEKDAYS[best[1]],
        "hour": best[2],
        "count": best[0],
    }


def _region_names(session: Session, codes: set[str]) -> dict[str, str]:
    codes.discard("")
    if not codes:
        return {}
    return dict(
        session.execute(select(Region.code, Region.name).where(Region.code.in_(codes))).all()
    )


# -- stages ---------------------------------------------------------------------------------------
def stages(sc: Scope, f: CaseFilter) -> dict[str, Any]:
    """Time spent in each node of the loop (working minutes), where cases wait now, and the
    stages the sweep marked overdue (R-AN-3)."""
    e = sc.source.events.c
    c = sc.source.cases.c
    limits = stage_limits(sc.session)
    event_where: list[ColumnElement[bool]] = [
        e.stage.is_not(None),
        e.stage_entered_at.is_not(None),
        e.at >= sc.window.start,
        e.at < sc.window.end,
    ]
    event_where += _event_filters(sc, f)
    spent: dict[str, dict[str, Any]] = {}
    overdue_marks: dict[str, int] = {}
    if not sc.window.empty:
        rows = sc.session.execute(
            select(
                e.stage,
                func.count(),
                func.avg(e.stage_minutes),
                func.max(e.stage_minutes),
                func.sum(func.coalesce(e.stage_minutes, 0)),
                func.coalesce(func.sum(_one_if(e.on_time.is_(False))), 0),
            )
            .where(*event_where)
            .group_by(e.stage)
        )
        for stage, n, avg, longest, total, late in rows:
            spent[stage] = {
                "visits": int(n),
                "avg_working_minutes": round(float(avg or 0), 1),
                "max_working_minutes": round(float(longest or 0), 1),
                "total_working_minutes": round(float(total or 0), 1),
                "late": int(late),
                "late_share": int(late) / int(n) if n else None,
            }
        overdue_marks = dict(
            sc.session.execute(
                select(e.stage, func.count())
                .where(
                    e.action == "clock_overdue",
                    e.at >= sc.window.start,
                    e.at < sc.window.end,
                    *_event_filters(sc, f),
                )
                .group_by(e.stage)
            ).all()
        )
    wait_where: list[ColumnElement[bool]] = [c.state_stage.is_not(None), c.state.in_(OPEN_STATES)]
    # Where cases wait is a picture of now, whenever they were reported.
    wait_where += _case_conditions(sc, f, reported_in_window=False)
    waiting = {
        stage: (int(n), int(late), oldest)
        for stage, n, late, oldest in sc.session.execute(
            select(
                c.state_stage,
                func.count(),
                func.coalesce(func.sum(_one_if(c.state_deadline < sc.window.now)), 0),
                func.min(c.state_at),
            )
            .where(*wait_where)
            .group_by(c.state_stage)
        )
    }
    out = []
    for stage, label in STAGE_LABELS.items():
        done = spent.get(stage, {})
        count, late_now, oldest = waiting.get(stage, (0, 0, None))
        out.append(
            {
                "stage": stage,
                "label": label,
                "limit_working_minutes": None if stage == "handle" else limits.get(stage),
                "visits": done.get("visits", 0),
                "avg_working_minutes": done.get("avg_working_minutes"),
                "max_working_minutes": done.get("max_working_minutes"),
                "total_working_minutes": done.get("total_working_minutes", 0.0),
                "late": done.get("late", 0),
                "late_share": done.get("late_share"),
                "overdue_marks": int(overdue_marks.get(stage, 0)),
                "waiting_now": count,
                "waiting_overdue_now": late_now,
                "oldest_waiting_since": oldest,
            }
        )
    bottleneck = max(out, key=lambda s: s["total_working_minutes"]) if spent else None
    return {
        "stages": out,
        "bottleneck": None if bottleneck is None else bottleneck["stage"],
        "most_waiting": max(out, key=lambda s: s["waiting_now"])["stage"]
        if any(s["waiting_now"] for s in out)
        else None,
    }


def _one_if(condition: ColumnElement[bool]) -> Any:
    return case((condition, 1), else_=0)


def _event_filters(sc: Scope, f: CaseFilter) -> list[ColumnElement[bool]]:
    e = sc.source.events.c
    where: list[ColumnElement[bool]] = []
    if f.class_code:
        where.append(
            e.class_code == f.class_code
            if len(f.class_code) >= 5
            else e.class_code.startswith(f.class_code)
        )
    if f.source:
        where.append(e.source == f.source)
    if f.region:
        where.append(
            or_(
                *[
                    e[level].startswith(f.region)
                    for level in ("district", "street", "community", "resp_grid", "unit_grid")
                ]
            )
        )
    if f.department_id is not None:
        where.append(e.department_id == f.department_id)
    if sc.departments is not None:
        where.append(e.department_id.in_(sc.departments or [-1]))
    return where


# -- trends ---------------------------------------------------------------------------------------
TREND_SERIES = {
    "reported": "上报",
    "filed": "立案",
    "dispatched": "派遣",
    "closed": "结案",
    "closed_on_time": "按期结案",
    "overdue_marks": "超期",
}


def trends(sc: Scope, f: CaseFilter, *, bucket: str = "day") -> dict[str, Any]:
    """Counts per day, week or month over the period (R-AN-3)."""
    buckets = sc.period.buckets(bucket)
    if len(buckets) > 800:
        raise ValidationFailed("too many buckets: choose a larger bucket", field="bucket")
    e = sc.source.events.c
    per_day: dict[date, dict[str, int]] = {}
    if not sc.window.empty:
        rows = sc.session.execute(
            select(
                e.local_day, e.action, e.to_state, func.count(), func.sum(_one_if(e.flag.is_(True)))
            )
            .where(
                e.action.in_(("report", "file", "dispatch", "close", "clock_overdue")),
                e.at >= sc.window.start,
                e.at < sc.window.end,
                *_event_filters(sc, f),
            )
            .group_by(e.local_day, e.action, e.to_state)
        )
        for day, action, to_state, n, flagged in rows:
            counts = per_day.setdefault(day, {})
            key = {
                "report": "reported",
                "file": "filed",
                "dispatch": "dispatched",
                "close": "closed",
                "clock_overdue": "overdue_marks",
            }[action]
            counts[key] = counts.get(key, 0) + int(n)
            if action == "report" and to_state == "filed":
                counts["filed"] = counts.get("filed", 0) + int(n)
            if action == "close":
                counts["closed_on_time"] = counts.get("closed_on_time", 0) + int(flagged or 0)
    points = []
    for b in buckets:
        values = {k: 0 for k in TREND_SERIES}
        for day, counts in per_day.items():
            if b.first <= day <= b.last:
                for k, n in counts.items():
                    values[k] += n
        points.append(
            {"bucket": b.key, "label": b.label, "first_day": b.first.isoformat(), **values}
        )
    return {
        "bucket": bucket,
        "series": [{"key": k, "label": v} for k, v in TREND_SERIES.items()],
        "points": points,
    }


# -- CSV export -----------------------------------------------------------------------------------
CSV_COLUMNS = (
    ("ticket", "案卷编号"),
    ("created_at", "上报时间"),
    ("source", "来源"),
    ("class_code", "类别代码"),
    ("class_name", "类别"),
    ("urgency", "紧急程度"),
    ("district", "区"),
    ("street", "街道"),
    ("community", "社区"),
    ("unit_grid", "单元网格"),
    ("address", "地址"),
    ("description", "问题描述"),
    ("state", "状态"),
    ("department", "处置部门"),
    ("filed_at", "立案时间"),
    ("due_at", "处置期限"),
    ("closed_at", "结案时间"),
    ("result_method", "处置方式"),
    ("lon", "经度"),
    ("lat", "纬度"),
)


def check_export(actor: Actor, f: CaseFilter, urgency: str | None) -> None:
    """Refuse a reader or a filter before a byte of the export is sent."""
    check_reader(actor)
    f.check()
    if urgency is not None and urgency not in ("A", "B", "C"):
        raise ValidationFailed("urgency must be A, B or C", field="urgency")


def export_cases(
    session: Session,
    period: Period,
    f: CaseFilter,
    *,
    actor: Actor,
    calendar: WorkingCalendar,
    now: datetime,
    urgency: str | None = None,
) -> Iterator[str]:
    """Cases reported in the period, as CSV lines (UTF-8 with BOM, for Excel). No reporter
    names or phone numbers."""
    check_export(actor, f, urgency)
    window = window_of(period, calendar, now)
    where: list[ColumnElement[bool]] = [
        Case.created_at >= window.start,
        Case.created_at < window.end,
    ]
    if f.class_code:
        where.append(
            Case.class_code == f.class_code
            if len(f.class_code) >= 5
            else Case.class_code.startswith(f.class_code)
        )
    if f.source:
        where.append(Case.source == f.source)
    if f.state == "open":
        where.append(Case.state.in_(OPEN_STATES))
    elif f.state == "closed":
        where.append(Case.state.in_(("closed", "archived")))
    elif f.state:
        where.append(Case.state == f.state)
    if f.region:
        where.append(
            or_(
                Case.district.startswith(f.region),
                Case.street.startswith(f.region),
                Case.community.startswith(f.region),
                Case.resp_grid.startswith(f.region),
                Case.unit_grid.startswith(f.region),
            )
        )
    if f.department_id is not None:
        where.append(Case.department_id == f.department_id)
    visible = visible_departments(session, actor)
    if visible is not None:
        where.append(Case.department_id.in_(visible or [-1]))
    if urgency:
        where.append(Case.urgency == urgency)
    classes = dict(
        session.execute(
            select(ProblemClass.code, func.coalesce(ProblemClass.matter_name, ProblemClass.name))
        ).all()
    )
    departments = dict(session.execute(select(Department.id, Department.name)).all())
    regions = dict(session.execute(select(Region.code, Region.name)).all())
    tz = calendar.tz
    methods = {"service": "服务", "management": "管理", "enforcement": "执法"}

    def local(value: datetime | None) -> str:
        return value.astimezone(tz).strftime("%Y-%m-%d %H:%M") if value else ""

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([label for _, label in CSV_COLUMNS])
        yield "\ufeff" + buffer.getvalue()
        query = select(Case).where(*where).order_by(Case.created_at, Case.id)
        for row in session.scalars(query.execution_options(yield_per=2000)):
            buffer.seek(0)
            buffer.truncate()
            writer.writerow(
                [
                    row.ticket,
                    local(row.created_at),
                    SOURCES.get(row.source, (row.source,))[0],
                    row.class_code,
                    classes.get(row.class_code, ""),
                    row.urgency,
                    regions.get(row.district, row.district),
                    regions.get(row.street or "", row.street or ""),
                    regions.get(row.community or "", row.community or ""),
                    row.unit_grid or "",
                    _safe(row.address or ""),
                    _safe(row.description),
                    state_label(row.state),
                    departments.get(row.department_id, "") if row.department_id else "",
                    local(row.filed_at),
                    local(row.due_at),
                    local(row.closed_at),
                    methods.get(row.result_method or "", ""),
                    round(row.lon, 6),
                    round(row.lat, 6),
                ]
            )
            yield buffer.getvalue()

    return lines()


def _safe(text: str) -> str:
    """Keep a spreadsheet from reading a citizen's text as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
