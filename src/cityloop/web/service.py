"""What the pages read: desk queues, the big screen's counters and charts, the map layers.

Every query the console needs lives here (pages hold no SQL); writes go through the domain
services (`intake.receive`, `cases.transition`, `cases.add_note`, `taxonomy.update_class`, …).
The big screen's counters and charts are computed from the `cases` table directly until the
`analytics` package serves them.
"""

from __future__ import annotations

import json
import weakref
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import h3
import shapely
from sqlalchemy import String, cast, func, select
from sqlalchemy.orm import Session

from cityloop.cases import service as cases
from cityloop.cases.models import Case
from cityloop.cases.states import BY_ACTION, OPEN_STATES, STAGE_LABELS, state_label
from cityloop.errors import ValidationFailed
from cityloop.intake import service as intake
from cityloop.intake.models import HotlineCall
from cityloop.intake.service import SOURCES
from cityloop.iot import service as iot
from cityloop.kit.calendar import WorkingCalendar
from cityloop.kit.geo import haversine_m
from cityloop.org.models import Department, User
from cityloop.org.service import descendant_ids
from cityloop.places.models import Region, UnitGrid
from cityloop.places.service import PlaceIndex
from cityloop.taxonomy.models import ProblemClass
from cityloop.web.i18n import SOURCE_EN, translate

INTAKE_STATES = ("reported", "verifying", "pending_filing")
TO_DISPATCH_STATES = ("filed", "returned", "coordinating")
LIGHT_RANK = {"green": 0, "yellow": 1, "red": 2}
QUEUE_LIMIT = 200


def source_label(source: str, lang: str) -> str:
    if lang == "en":
        return SOURCE_EN.get(source, source)
    return SOURCES[source][0] if source in SOURCES else source


def class_label(problem_class: ProblemClass | None, code: str, lang: str) -> str:
    if problem_class is None:
        return code
    if lang == "en" and problem_class.name_en:
        return problem_class.name_en
    return problem_class.display_name


def stage_label(stage: str, lang: str) -> str:
    return translate(f"stage_{stage}", lang) if lang == "en" else STAGE_LABELS.get(stage, stage)


# -- rows of the desks -------------------------------------------------------------------------
@dataclass
class CaseRow:
    """One line of a desk's list, with everything the row shows already resolved."""

    case: Case
    class_name: str
    source_name: str
    state_name: str
    place: str
    department: str | None
    light: str | None
    due_at: datetime | None
    suggested: Department | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def worst_light(clocks: list[dict[str, Any]]) -> str | None:
    lights = [c["light"] for c in clocks]
    return max(lights, key=lambda light: LIGHT_RANK.get(light, 0)) if lights else None


def case_rows(
    session: Session,
    items: list[Case],
    *,
    now: datetime,
    calendar: WorkingCalendar,
    lang: str,
    suggest: bool = False,
) -> list[CaseRow]:
    class_codes = {c.class_code for c in items}
    classes = {
        c.code: c
        for c in session.scalars(select(ProblemClass).where(ProblemClass.code.in_(class_codes)))
    }
    names = region_names(session, {code for c in items for code in (c.street, c.community)})
    departments = department_names(session, {c.department_id for c in items})
    rows = []
    for case in items:
        clocks = cases.deadlines(session, case, now=now, calendar=calendar)
        place = " ".join(n for n in (names.get(case.street), names.get(case.community)) if n)
        rows.append(
            CaseRow(
                case=case,
                class_name=class_label(classes.get(case.class_code), case.class_code, lang),
                source_name=source_label(case.source, lang),
                state_name=state_label(case.state, lang),
                place=place or case.district,
                department=departments.get(case.department_id),
                light=worst_light(clocks),
                due_at=min((c["due_at"] for c in clocks), default=None),
                suggested=cases.suggested_department(session, case) if suggest else None,
            )
        )
    return rows


def region_names(session: Session, codes: set[str | None]) -> dict[str | None, str]:
    wanted = sorted(c for c in codes if c)
    if not wanted:
        return {}
    rows = session.execute(select(Region.code, Region.name).where(Region.code.in_(wanted))).all()
    return {code: name for code, name in rows}


def department_names(session: Session, ids: set[int | None]) -> dict[int | None, str]:
    wanted = sorted(i for i in ids if i is not None)
    if not wanted:
        return {}
    rows = session.execute(
        select(Department.id, Department.name).where(Department.id.in_(wanted))
    ).all()
    return {dept_id: name for dept_id, name in rows}


def _ordered(query: Any) -> Any:
    # Most urgent first: the stage clock that runs out soonest.
    return query.order_by(Case.stage_due_at.is_(None), Case.stage_due_at, Case.id)


def intake_counts(session: Session) -> dict[str, int]:
    """Open intake cases (reported, verifying, pending filing) by source."""
    rows = session.execute(
        select(Case.source, func.count())
        .where(Case.state.in_(INTAKE_STATES))
        .group_by(Case.source)
        .order_by(func.count().desc(), Case.source)
    ).all()
    return {source: count for source, count in rows}


def state_queue(
    session: Session,
    states: tuple[str, ...],
    *,
    source: str | None = None,
    limit: int = QUEUE_LIMIT,
) -> list[Case]:
    """City-wide queue of cases in the given states (for the centre's desks)."""
    query = select(Case).where(Case.state.in_(states))
    if source:
        query = query.where(Case.source == source)
    return list(session.scalars(_ordered(query).limit(limit)))


def state_counts(session: Session, states: tuple[str, ...]) -> dict[str, int]:
    rows = session.execute(
        select(Case.state, func.count()).where(Case.state.in_(states)).group_by(Case.state)
    ).all()
    counts = dict.fromkeys(states, 0)
    counts.update({state: count for state, count in rows})
    return counts


def _postponement_pending() -> Any:
    # A withdrawn request is stored as JSON null, which is not SQL NULL on either backend.
    return Case.postpone_request.is_not(None) & (cast(Case.postpone_request, String) != "null")


def postponement_queue(session: Session, limit: int = QUEUE_LIMIT) -> list[Case]:
    query = select(Case).where(Case.state == "dispatched", _postponement_pending())
    return list(session.scalars(_ordered(query).limit(limit)))


def postponement_count(session: Session) -> int:
    return int(
        session.scalar(
            select(func.count()).where(Case.state == "dispatched", _postponement_pending())
        )
        or 0
    )


def closed_without_visit(session: Session, limit: int = QUEUE_LIMIT) -> list[Case]:
    """Closed cases waiting for the return visit (回访), oldest closure first."""
    query = select(Case).where(Case.state == "closed").order_by(Case.closed_at, Case.id)
    return list(session.scalars(query.limit(limit)))


def department_queue(
    session: Session, actor: cases.Actor, state: str, *, now: datetime, limit: int = QUEUE_LIMIT
) -> tuple[list[Case], int]:
    """A department's cases in one state (its own and its sub-units'), as the API lists them."""
    return cases.list_cases(
        session, actor, cases.CaseFilters(state=state), page=1, page_size=limit, now=now
    )


def grid_tasks(
    session: Session, actor: cases.Actor, state: str, *, now: datetime, limit: int = QUEUE_LIMIT
) -> list[Case]:
    """An inspector's verification (verifying) or check (checking) tasks in their grids."""
    items, _total = cases.list_cases(
        session, actor, cases.CaseFilters(state=state), page=1, page_size=limit, now=now
    )
    return items


def nearby_open_same_class(
    session: Session, case: Case, *, rings: int = 3, limit: int = 20
) -> list[tuple[Case, float]]:
    """Open cases of the same class around this one (h3 cells within `rings`, ~250 m), nearest
    first: the candidates to merge a duplicate into."""
    cells = list(h3.grid_disk(case.h3_cell, rings))
    rows = session.scalars(
        select(Case).where(
            Case.h3_cell.in_(cells),
            Case.class_code == case.class_code,
            Case.state.in_(sorted(OPEN_STATES)),
            Case.id != case.id,
        )
    ).all()
    ranked = sorted(
        ((c, haversine_m(case.lon, case.lat, c.lon, c.lat)) for c in rows), key=lambda p: p[1]
    )
    return ranked[:limit]


def lower_departments(session: Session, department_id: int | None) -> list[Department]:
    """The units below a department (the targets of pass_down), by code."""
    if department_id is None:
        return []
    ids = descendant_ids(session, department_id) - {department_id}
    if not ids:
        return []
    return list(
        session.scalars(select(Department).where(Department.id.in_(ids)).order_by(Department.code))
    )


def all_departments(session: Session) -> list[Department]:
    return list(session.scalars(select(Department).order_by(Department.code)))


def minor_classes(session: Session, *, lang: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """Active minor classes grouped under their major class, for a <select>."""
    rows = session.scalars(
        select(ProblemClass).where(ProblemClass.active).order_by(ProblemClass.code)
    ).all()
    majors = {r.code: r for r in rows if r.level == "major"}
    groups: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        if row.level != "minor":
            continue
        major = majors.get(row.parent_code or "")
        kind = translate(f"kind_{row.kind}", lang)
        title = f"{kind} · {class_label(major, row.parent_code or '', lang)}" if major else kind
        groups.setdefault(title, []).append((row.code, f"{row.code} {class_label(row, '', lang)}"))
    return list(groups.items())


def problem_class(session: Session, code: str) -> ProblemClass | None:
    return session.get(ProblemClass, code)


# -- the case page -----------------------------------------------------------------------------
def photo_groups(events: list[Any]) -> dict[str, list[str]]:
    """Photos of the timeline split into before (report, verification) and after (result,
    check), and the voice notes that came with them (the inspector's app records one)."""
    before: list[str] = []
    after: list[str] = []
    voice: list[str] = []
    for event in events:
        photos = [p for p in (event.photos or []) if isinstance(p, str)]
        if event.action in ("submit_result", "report_check", "feedback"):
            after.extend(photos)
        else:
            before.extend(photos)
        note = (event.payload or {}).get("voice")
        if isinstance(note, str):
            voice.append(note)
    return {"before": before, "after": after, "voice": voice}


def users_by_id(session: Session, ids: set[int | None]) -> dict[int | None, User]:
    wanted = sorted(i for i in ids if i is not None)
    if not wanted:
        return {}
    return {u.id: u for u in session.scalars(select(User).where(User.id.in_(wanted)))}


# -- the big screen ----------------------------------------------------------------------------
def _local_midnight(now: datetime, tz: ZoneInfo) -> datetime:
    local = now.astimezone(tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def counters(session: Session, *, now: datetime, tz: ZoneInfo) -> dict[str, int]:
    """Today's reports, filings and closures, open cases, and open cases past their stage
    limit."""
    start = _local_midnight(now, tz)

    def count(*conditions: Any) -> int:
        return int(session.scalar(select(func.count()).select_from(Case).where(*conditions)) or 0)

    open_states = sorted(OPEN_STATES)
    return {
        "today_reports": count(Case.created_at >= start, Case.created_at <= now),
        "today_filed": count(Case.filed_at >= start, Case.filed_at <= now),
        "today_closed": count(Case.closed_at >= start, Case.closed_at <= now),
        "open_cases": count(Case.state.in_(open_states)),
        "overdue_open": count(Case.state.in_(open_states), Case.stage_due_at < now),
    }


def charts(
    session: Session, *, now: datetime, tz: ZoneInfo, lang: str, days: int = 30
) -> dict[str, Any]:
    """The four charts of the big screen over the last `days` days."""
    start = _local_midnight(now, tz) - timedelta(days=days - 1)
    rows = session.execute(
        select(Case.created_at, Case.closed_at, Case.class_code, Case.source).where(
            Case.created_at >= start
        )
    ).all()
    closed_rows = session.scalars(
        select(Case.closed_at).where(Case.closed_at >= start, Case.closed_at <= now)
    ).all()
    day_keys = [(start + timedelta(days=i)).date() for i in range(days)]
    reported = Counter(r.created_at.astimezone(tz).date() for r in rows)
    closed = Counter(at.astimezone(tz).date() for at in closed_rows if at is not None)
    classes = Counter(r.class_code for r in rows).most_common(10)
    class_rows = {
        c.code: c
        for c in session.scalars(
            select(ProblemClass).where(ProblemClass.code.in_([code for code, _ in classes]))
        )
    }
    sources = Counter(r.source for r in rows).most_common()
    open_states = sorted(OPEN_STATES)
    open_by_dept = session.execute(
        select(Case.department_id, func.count())
        .where(Case.state.in_(open_states), Case.department_id.is_not(None))
        .group_by(Case.department_id)
        .order_by(func.count().desc(), Case.department_id)
        .limit(10)
    ).all()
    overdue_by_dept = dict(
        session.execute(
            select(Case.department_id, func.count())
            .where(
                Case.state.in_(open_states),
                Case.department_id.is_not(None),
                Case.stage_due_at < now,
            )
            .group_by(Case.department_id)
        ).all()
    )
    names = department_names(session, {d for d, _ in open_by_dept})
    return {
        "trend": {
            "days": [d.strftime("%m-%d") for d in day_keys],
            "reported": [reported.get(d, 0) for d in day_keys],
            "closed": [closed.get(d, 0) for d in day_keys],
        },
        "classes": [
            {"name": class_label(class_rows.get(code), code, lang), "value": n}
            for code, n in classes
        ],
        "departments": [
            {
                "name": _short_department(names.get(d, str(d))),
                "open": n,
                "overdue": int(overdue_by_dept.get(d, 0)),
            }
            for d, n in open_by_dept
        ],
        "sources": [{"name": source_label(s, lang), "value": n} for s, n in sources],
    }


def _short_department(name: str) -> str:
    for long, short in (("城市管理办公室", "城管办"), ("有限公司", ""), ("办事处", "")):
        name = name.replace(long, short)
    return name


def open_case_features(
    session: Session,
    *,
    now: datetime,
    calendar: WorkingCalendar,
    lang: str,
    limit: int = 3000,
) -> dict[str, Any]:
    """Open cases as GeoJSON points coloured by their traffic light (newest first)."""
    items = list(
        session.scalars(
            select(Case)
            .where(Case.state.in_(sorted(OPEN_STATES)))
            .order_by(Case.created_at.desc(), Case.id.desc())
            .limit(limit)
        )
    )
    classes = {
        c.code: c
        for c in session.scalars(
            select(ProblemClass).where(ProblemClass.code.in_({c.class_code for c in items}))
        )
    }
    features = []
    for case in items:
        clocks = cases.deadlines(session, case, now=now, calendar=calendar)
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [case.lon, case.lat]},
                "properties": {
                    "id": case.id,
                    "ticket": case.ticket,
                    "state": state_label(case.state, lang),
                    "class": class_label(classes.get(case.class_code), case.class_code, lang),
                    "light": worst_light(clocks) or "green",
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def heat_points(session: Session, *, now: datetime, days: int = 30) -> list[list[float]]:
    """[lat, lon, weight] per h3 cell with reports in the last `days` days (a GROUP BY)."""
    rows = session.execute(
        select(Case.h3_cell, func.count())
        .where(Case.created_at >= now - timedelta(days=days))
        .group_by(Case.h3_cell)
    ).all()
    points = []
    for cell, count in rows:
        lat, lon = h3.cell_to_latlng(cell)
        points.append([round(lat, 6), round(lon, 6), int(count)])
    return points


# -- layers of the one map ---------------------------------------------------------------------
REGION_LAYERS = {"district": 0.0005, "street": 0.0003, "community": 0.0001, "resp_grid": 0.00005}
MAX_UNIT_GRIDS = 4000

_layer_cache: weakref.WeakKeyDictionary[PlaceIndex, dict[str, bytes]] = weakref.WeakKeyDictionary()


def region_layer(places: PlaceIndex, level: str) -> bytes:
    """One level of the region tree as simplified GeoJSON (cached per loaded index)."""
    if level not in REGION_LAYERS:
        raise ValidationFailed(f"level must be one of {', '.join(REGION_LAYERS)}", field="level")
    cache = _layer_cache.setdefault(places, {})
    if level not in cache:
        tolerance = REGION_LAYERS[level]
        features = []
        for region in places.regions(level):
            geom = shapely.simplify(region.geometry, tolerance, preserve_topology=True)
            geom = shapely.set_precision(geom, 1e-5)
            features.append(
                {
                    "type": "Feature",
                    "geometry": json.loads(shapely.to_geojson(geom)),
                    "properties": {
                        "code": region.code,
                        "name": region.name,
                        "name_en": region.name_en,
                    },
                }
            )
        cache[level] = json.dumps(
            {"type": "FeatureCollection", "features": features},
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
    return cache[level]


def parse_bbox(text: str | None) -> tuple[float, float, float, float]:
    try:
        parts = [float(p) for p in (text or "").split(",")]
    except ValueError:
        parts = []
    if len(parts) != 4:
        raise ValidationFailed("bbox must be minLon,minLat,maxLon,maxLat", field="bbox")
    west, south, east, north = parts
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise ValidationFailed("bbox must be minLon,minLat,maxLon,maxLat", field="bbox")
    return west, south, east, north


def unit_grid_layer(
    session: Session, bbox: tuple[float, float, float, float], *, limit: int = MAX_UNIT_GRIDS
) -> dict[str, Any]:
    """The unit grids whose centre lies in the box, or none and `too_many` when the box holds
    more than `limit` (the client zooms in; 17 000 polygons are never sent at once)."""
    west, south, east, north = bbox
    inside = (
        UnitGrid.centroid_lon.between(west, east),
        UnitGrid.centroid_lat.between(south, north),
    )
    total = int(session.scalar(select(func.count()).select_from(UnitGrid).where(*inside)) or 0)
    if total > limit:
        return {"type": "FeatureCollection", "features": [], "too_many": total}
    rows = session.execute(select(UnitGrid.code, UnitGrid.geometry).where(*inside)).all()
    features = [
        {"type": "Feature", "geometry": json.loads(geometry), "properties": {"code": code}}
        for code, geometry in rows
    ]
    return {"type": "FeatureCollection", "features": features}


def bounds_of(places: PlaceIndex) -> list[list[float]]:
    """[[south, west], [north, east]] of the city, for fitting the map."""
    districts = places.regions("district")
    if not districts:
        return [[-1.0, -1.0], [1.0, 1.0]]
    west, south, east, north = shapely.total_bounds([d.geometry for d in districts])
    return [[float(south), float(west)], [float(north), float(east)]]


def action_label(action: str, lang: str) -> str:
    """A timeline line's name: the table's label for actions, the page's for notes."""
    row = BY_ACTION.get(action)
    if row is None:
        return translate(f"event_{action}", lang).removeprefix("event_")
    return row.label_en if lang == "en" else row.label


# -- devices and people on the one map (R-AN-1) ------------------------------------------------
# An inspector whose phone has not reported for this long is drawn as off patrol.
POSITION_STALE = timedelta(minutes=30)


def _point_feature(lon: float, lat: float, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": properties,
    }


def camera_features(session: Session, *, now: datetime) -> dict[str, Any]:
    """Active cameras with their open cases and detections of the last 24 hours."""
    features = [
        _point_feature(
            view.camera.lon,
            view.camera.lat,
            {
                "code": view.camera.code,
                "name": view.camera.name,
                "open_cases": view.open_cases,
                "detections_24h": view.detections_24h,
            },
        )
        for view in iot.list_cameras(session, now=now)
    ]
    return {"type": "FeatureCollection", "features": features}


def sensor_features(session: Session, *, tz: ZoneInfo, lang: str) -> dict[str, Any]:
    """Active water gauges and manhole covers with their state (normal, alarm, silent), last
    value and the open case an alarm made."""
    features = []
    for view in iot.list_sensors(session):
        sensor = view.sensor
        info = iot.SENSOR_KIND_INFO[sensor.kind]
        state = iot.sensor_state(sensor)
        signal = iot.SIGNALS.get(sensor.last_signal or "")
        features.append(
            _point_feature(
                sensor.lon,
                sensor.lat,
                {
                    "code": sensor.code,
                    "name": sensor.name,
                    "kind": sensor.kind,
                    "kind_label": info.label_en if lang == "en" else info.label,
                    "state": state,
                    "state_label": translate(f"sensor_{state}", lang),
                    "value": sensor.last_value,
                    "unit": sensor.unit,
                    "signal": signal[0] if signal and lang != "en" else sensor.last_signal,
                    "at": sensor.last_reading_at.astimezone(tz).strftime("%m-%d %H:%M")
                    if sensor.last_reading_at
                    else None,
                    "case_id": view.case.id if view.case is not None else None,
                    "ticket": view.case.ticket if view.case is not None else None,
                },
            )
        )
    return {"type": "FeatureCollection", "features": features}


def inspector_features(session: Session, *, now: datetime, tz: ZoneInfo) -> dict[str, Any]:
    """Every inspector's last reported position, marked stale when it is old."""
    features = [
        _point_feature(
            position.lon,
            position.lat,
            {
                "user_id": user.id,
                "name": user.display_name,
                "at": position.at.astimezone(tz).strftime("%m-%d %H:%M"),
                "stale": now - position.at > POSITION_STALE,
            },
        )
        for user, position in intake.latest_positions(session)
    ]
    return {"type": "FeatureCollection", "features": features}


# -- the hotline desk's calls (R-IN-4) ---------------------------------------------------------
@dataclass
class CallRow:
    call: HotlineCall
    ticket: str | None
    operator: str | None


def calls_between(
    session: Session, start: datetime, end: datetime, *, limit: int = QUEUE_LIMIT * 5
) -> list[CallRow]:
    """Hotline calls registered in [start, end), newest first, with the ticket of the case a
    complaint became and the operator who took the call."""
    rows = session.execute(
        select(HotlineCall, Case.ticket, User.display_name)
        .outerjoin(Case, Case.id == HotlineCall.case_id)
        .outerjoin(User, User.id == HotlineCall.operator_id)
        .where(HotlineCall.created_at >= start, HotlineCall.created_at < end)
        .order_by(HotlineCall.created_at.desc(), HotlineCall.id.desc())
        .limit(limit)
    ).all()
    return [CallRow(call, ticket, operator) for call, ticket, operator in rows]


def calls_count(session: Session, start: datetime, end: datetime) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(HotlineCall)
            .where(HotlineCall.created_at >= start, HotlineCall.created_at < end)
        )
        or 0
    )


def local_day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0, 0), tz)
    return start, start + timedelta(days=1)
