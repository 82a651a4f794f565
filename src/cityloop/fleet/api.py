"""REST edge of the field force: vehicles (latest fix, track, coverage), people's duty and
positions, patrol figures, alerts, rosters, road segments, and the live stream of the map."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from cityloop.cases.models import Case
from cityloop.deps import ActorDep, NowDep, PlacesDep, SessionDep, UserDep
from cityloop.errors import Forbidden, ValidationFailed
from cityloop.fleet import live, service
from cityloop.fleet.models import Person, Vehicle
from cityloop.fleet.schemas import (
    AlertOut,
    CoverageOut,
    DutyIn,
    DutyOut,
    FixesIn,
    PatrolOut,
    PersonPositionOut,
    PointOut,
    SegmentOut,
    ShiftIn,
    ShiftLeaveIn,
    ShiftOut,
    ShiftSwapIn,
    StoredOut,
    TrackCaseOut,
    TrackOut,
    VehicleIn,
    VehicleOut,
)
from cityloop.org.models import User
from cityloop.org.service import require_user

router = APIRouter(prefix="/api/v1", tags=["fleet 人员车辆"])

WATCH_ROLES = frozenset({"admin", "leader", "shiftlead", "dispatcher", "operator"})
FIELD_ROLES = frozenset({"inspector", "handler"})
ROSTER_EDITORS = frozenset({"admin", "shiftlead"})


def _watch(actor_role: str) -> None:
    if actor_role not in WATCH_ROLES:
        raise Forbidden("the map of people and vehicles is for the command centre")


def _period(since: datetime, until: datetime) -> None:
    for name, value in (("from", since), ("to", until)):
        if value.tzinfo is None:
            raise ValidationFailed(f"{name} needs its UTC offset", field=name)


def _vehicle_out(v: Vehicle) -> VehicleOut:
    return VehicleOut.model_validate(v, from_attributes=True)


# -- vehicles -----------------------------------------------------------------------------------
@router.get(
    "/vehicles", response_model=list[VehicleOut], summary="Vehicles and their latest fix 车辆"
)
def list_vehicles(session: SessionDep, actor: ActorDep) -> list[VehicleOut]:
    _watch(actor.role)
    return [_vehicle_out(v) for v in service.vehicles(session)]


@router.post("/vehicles", response_model=VehicleOut, status_code=201, summary="Register a vehicle")
def create_vehicle(body: VehicleIn, session: SessionDep, user: UserDep) -> VehicleOut:
    if user.role != "admin":
        raise Forbidden("vehicles are registered by an administrator")
    return _vehicle_out(service.register_vehicle(session, **body.model_dump()))


@router.get(
    "/vehicles/{vehicle_id}/track", response_model=TrackOut, summary="A vehicle's track 轨迹"
)
def vehicle_track(
    vehicle_id: int,
    session: SessionDep,
    actor: ActorDep,
    since: Annotated[datetime, Query(alias="from")],
    until: Annotated[datetime, Query(alias="to")],
) -> TrackOut:
    _watch(actor.role)
    _period(since, until)
    vehicle = service.require_vehicle(session, vehicle_id)
    points = service.track(session, "vehicle", vehicle.id, since, until)
    return TrackOut(
        subject="vehicle",
        id=vehicle.id,
        name=vehicle.plate,
        points=[PointOut.model_validate(p, from_attributes=True) for p in points],
        distance_km=round(service.track_distance_m(points) / 1000, 2),
        cases=[],
    )


@router.get(
    "/vehicles/{vehicle_id}/coverage",
    response_model=CoverageOut,
    summary="A sweeper's work coverage of its road segments 作业覆盖率",
)
def vehicle_coverage(
    vehicle_id: int,
    session: SessionDep,
    actor: ActorDep,
    since: Annotated[datetime, Query(alias="from")],
    until: Annotated[datetime, Query(alias="to")],
) -> CoverageOut:
    _watch(actor.role)
    _period(since, until)
    return CoverageOut.model_validate(service.coverage(session, vehicle_id, since, until))


# -- people -------------------------------------------------------------------------------------
@router.post("/me/duty", response_model=DutyOut, summary="上岗 / 下岗 / 请假 / 出格报备")
def post_duty(body: DutyIn, session: SessionDep, user: UserDep, now: NowDep) -> DutyOut:
    if user.role not in FIELD_ROLES:
        raise Forbidden("duty is declared by inspectors and officers")
    person = service.set_duty(session, user, body.status, body.reason, now)
    return DutyOut(status=person.duty, since=person.duty_since, reason=person.reason)


@router.get("/me/duty", response_model=DutyOut, summary="My duty status")
def get_duty(session: SessionDep, user: UserDep) -> DutyOut:
    person = session.get(Person, user.id)
    if person is None:
        return DutyOut(status="off", since=None, reason=None)
    return DutyOut(status=person.duty, since=person.duty_since, reason=person.reason)


@router.post(
    "/me/positions",
    response_model=StoredOut,
    status_code=201,
    summary="The app's positions while on duty (buffered offline; a resent batch is stored once)",
)
def post_my_positions(
    body: FixesIn, session: SessionDep, user: UserDep, now: NowDep, places: PlacesDep
) -> StoredOut:
    if user.role not in FIELD_ROLES:
        raise Forbidden("positions are reported by inspectors and officers")
    fixes = [
        service.Fix(
            subject="person",
            subject_id=user.id,
            at=p.at,
            lon=p.lon,
            lat=p.lat,
            source="app",
            speed_kmh=p.speed_kmh,
        )
        for p in body.positions
    ]
    result = service.store_fixes(session, fixes, now, places)
    return StoredOut(
        stored=result.stored,
        duplicates=len(fixes) - result.stored - result.refused,
        refused=result.refused,
        flagged=result.flagged,
    )


@router.get(
    "/people/positions",
    response_model=list[PersonPositionOut],
    summary="Latest position of every person 人员位置",
)
def people_positions(session: SessionDep, actor: ActorDep, now: NowDep) -> list[PersonPositionOut]:
    _watch(actor.role)
    return [PersonPositionOut(**row) for row in service.people_positions(session, now)]


@router.get(
    "/people/{user_id}/track",
    response_model=TrackOut,
    summary="A person's track with the cases reported on it",
)
def person_track(
    user_id: int,
    session: SessionDep,
    actor: ActorDep,
    since: Annotated[datetime, Query(alias="from")],
    until: Annotated[datetime, Query(alias="to")],
) -> TrackOut:
    if actor.role not in WATCH_ROLES and actor.user_id != user_id:
        raise Forbidden("tracks are for the command centre and the person")
    _period(since, until)
    user = require_user(session, user_id)
    points = service.track(session, "person", user.id, since, until)
    cases = session.execute(
        select(Case.id, Case.ticket, Case.lon, Case.lat, Case.created_at)
        .where(
            Case.reporter_user_id == user.id,
            Case.created_at >= since,
            Case.created_at < until,
        )
        .order_by(Case.created_at)
        .limit(1000)
    ).all()
    return TrackOut(
        subject="person",
        id=user.id,
        name=user.display_name,
        points=[PointOut.model_validate(p, from_attributes=True) for p in points],
        distance_km=round(service.track_distance_m(points) / 1000, 2),
        cases=[
            TrackCaseOut(id=c.id, ticket=c.ticket, lon=c.lon, lat=c.lat, at=c.created_at)
            for c in cases
        ],
    )


@router.get("/people/{user_id}/patrol", response_model=PatrolOut, summary="Patrol figures 巡查统计")
def person_patrol(
    user_id: int,
    session: SessionDep,
    actor: ActorDep,
    places: PlacesDep,
    since: Annotated[datetime, Query(alias="from")],
    until: Annotated[datetime, Query(alias="to")],
) -> PatrolOut:
    if actor.role not in WATCH_ROLES and actor.user_id != user_id:
        raise Forbidden("patrol figures are for the command centre and the person")
    _period(since, until)
    user = require_user(session, user_id)
    return PatrolOut.model_validate(service.patrol_figures(session, places, user, since, until))


@router.get("/fleet/alerts", response_model=list[AlertOut], summary="Open alerts 出格/离线告警")
def alerts(session: SessionDep, actor: ActorDep) -> list[AlertOut]:
    _watch(actor.role)
    return [AlertOut.model_validate(a, from_attributes=True) for a in service.open_alerts(session)]


# -- rosters ------------------------------------------------------------------------------------
def _shift_out(session: Any, shift: Any) -> ShiftOut:
    user = session.get(User, shift.user_id)
    return ShiftOut(
        id=shift.id,
        team=shift.team,
        user_id=shift.user_id,
        name=user.display_name if user else "",
        starts_at=shift.starts_at,
        ends_at=shift.ends_at,
        status=shift.status,
        swapped_from_id=shift.swapped_from_id,
        note=shift.note,
    )


@router.get("/rosters", response_model=list[ShiftOut], summary="Roster shifts in a period 排班")
def list_shifts(
    session: SessionDep,
    actor: ActorDep,
    since: Annotated[datetime, Query(alias="from")],
    until: Annotated[datetime, Query(alias="to")],
    team: str | None = None,
) -> list[ShiftOut]:
    _watch(actor.role)
    _period(since, until)
    if until - since > timedelta(days=62):
        raise ValidationFailed("a roster page covers at most 62 days", field="to")
    return [_shift_out(session, s) for s in service.shifts(session, team, since, until)]


@router.get("/rosters/now", response_model=list[ShiftOut], summary="Who is on shift now 当班")
def on_shift_now(
    session: SessionDep, actor: ActorDep, now: NowDep, team: str = "hotline"
) -> list[ShiftOut]:
    if actor.role not in WATCH_ROLES and actor.role not in FIELD_ROLES:
        raise Forbidden("the roster is for the centre's staff")
    return [_shift_out(session, s) for s, _u in service.on_shift(session, team, now)]


def _roster_editor(user: User) -> None:
    if user.role not in ROSTER_EDITORS:
        raise Forbidden("rosters are kept by a shift leader or an administrator")


@router.post("/rosters", response_model=ShiftOut, status_code=201, summary="Add a shift")
def create_shift(body: ShiftIn, session: SessionDep, user: UserDep) -> ShiftOut:
    _roster_editor(user)
    _period(body.starts_at, body.ends_at)
    return _shift_out(session, service.add_shift(session, **body.model_dump()))


@router.post("/rosters/{shift_id}/swap", response_model=ShiftOut, summary="换班")
def swap_shift(shift_id: int, body: ShiftSwapIn, session: SessionDep, user: UserDep) -> ShiftOut:
    _roster_editor(user)
    return _shift_out(session, service.swap_shift(session, shift_id, body.user_id))


@router.post("/rosters/{shift_id}/leave", response_model=ShiftOut, summary="请假")
def leave_shift(shift_id: int, body: ShiftLeaveIn, session: SessionDep, user: UserDep) -> ShiftOut:
    _roster_editor(user)
    return _shift_out(session, service.leave_shift(session, shift_id, body.reason))


# -- road segments ------------------------------------------------------------------------------
@router.post(
    "/road-segments",
    response_model=list[SegmentOut],
    status_code=201,
    summary="Import road segments (GeoJSON FeatureCollection of LineStrings) 道路",
)
def import_segments(body: dict[str, Any], session: SessionDep, user: UserDep) -> list[SegmentOut]:
    if user.role != "admin":
        raise Forbidden("road segments are imported by an administrator")
    return [
        SegmentOut.model_validate(s, from_attributes=True)
        for s in service.import_segments(session, body)
    ]


# -- the live stream ------------------------------------------------------------------------------
# Not in the OpenAPI document: an event stream has no response schema there, and a generated
# client (or the fuzzer) would wait on it forever. The contract is in README.md.
@router.get(
    "/fleet/stream",
    include_in_schema=False,
    summary="Server-sent events: every change of a person's or vehicle's latest fix",
    response_class=StreamingResponse,
)
async def stream(request: Request, actor: ActorDep, once: bool = False) -> StreamingResponse:
    _watch(actor.role)
    return StreamingResponse(
        live.events(request.app.state.session_factory, request.is_disconnected, once=once),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store"},
    )
