"""The console's edge of the field force: the inspector app's duty buttons and position
reports (cookie session + CSRF header, as the app's outbox posts), and the big screen's live
layers of people and vehicles (server-sent events) with track replay on a click."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from cityloop.fleet import live, service
from cityloop.fleet.schemas import DutyIn, FixesIn
from cityloop.web.page import StaffPageDep

router = APIRouter()

FIELD = frozenset({"inspector"})
WATCHERS = frozenset({"leader", "shiftlead", "dispatcher", "operator", "admin"})


def _error(status_code: int, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse({"detail": message, "field": field}, status_code=status_code)


@router.post("/m/inspector/duty")
def duty(body: DutyIn, page: StaffPageDep) -> Response:
    """上岗 / 下岗 / 请假 / 出格报备 from the app's buttons; a refused change (a reason
    missing, already off duty) answers as the API does, naming the field."""
    if page.user is None or page.user.role not in FIELD:  # not page.allowed: no admin either
        return _error(403, page.t("forbidden_role"))
    if not page.csrf_ok():
        return _error(403, page.t("csrf_failed"))
    assert page.user is not None
    person = service.set_duty(page.db, page.user, body.status, body.reason, page.now)
    return JSONResponse({"status": person.duty, "label": page.t("duty_" + person.duty)})


@router.post("/m/inspector/positions")
def positions(body: FixesIn, request: Request, page: StaffPageDep) -> Response:
    """The app's buffered fixes; a batch sent again (a lost answer) is stored once."""
    if page.user is None or page.user.role not in FIELD:  # not page.allowed: no admin either
        return _error(403, page.t("forbidden_role"))
    if not page.csrf_ok():
        return _error(403, page.t("csrf_failed"))
    assert page.user is not None
    fixes = [
        service.Fix("person", page.user.id, p.at, p.lon, p.lat, "app", p.speed_kmh)
        for p in body.positions
    ]
    result = service.store_fixes(page.db, fixes, page.now, request.app.state.places())
    return JSONResponse(
        {"stored": result.stored, "refused": result.refused, "flagged": result.flagged},
        status_code=201,
    )


@router.get("/screen/fleet/stream")
async def screen_stream(request: Request, page: StaffPageDep, once: bool = False) -> Response:
    if not page.allowed(WATCHERS):
        return _error(403, page.t("forbidden_role"))
    return StreamingResponse(
        live.events(request.app.state.session_factory, request.is_disconnected, once=once),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store"},
    )


@router.get("/screen/fleet/track")
def screen_track(page: StaffPageDep, subject: str, id: int, hours: float = 2) -> Response:
    """The last `hours` of one unit's track, for the replay drawn on a click."""
    if not page.allowed(WATCHERS):
        return _error(403, page.t("forbidden_role"))
    if subject not in ("vehicle", "person") or not 0 < hours <= 24 * 31:
        return _error(422, "subject is vehicle or person; hours up to 744", "subject")
    until: datetime = page.now + timedelta(minutes=1)
    points = service.track(page.db, subject, id, until - timedelta(hours=hours), until)
    return JSONResponse(
        {
            "points": [[p.lat, p.lon] for p in points],
            "distance_km": round(service.track_distance_m(points) / 1000, 2),
        }
    )
