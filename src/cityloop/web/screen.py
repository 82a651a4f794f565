"""The leaders' big screen (大屏): the one map of the city and the live counters and charts.

The map's layers are GeoJSON served here: the region tree level by level (simplified, cached
per loaded place index), the unit grids only for the visible box (never all 17 000 at once),
open cases coloured by their traffic light, a heat layer of reports per h3 cell, and the
cameras, sensors (coloured by alarm state) and inspectors' last positions (R-AN-1).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from cityloop.errors import ValidationFailed
from cityloop.web import service
from cityloop.web.evaluation_pages import READERS as EVALUATION_READERS
from cityloop.web.page import PageDep, StaffPageDep

router = APIRouter()

VIEWERS = frozenset({"leader", "shiftlead", "dispatcher", "operator"})
# Staff who see the one map's layers (the case points name tickets and classes).
MAP_USERS = VIEWERS | {"handler", "inspector"}
REFRESH_SECONDS = 30


@router.get("/screen")
def big_screen(page: StaffPageDep) -> Response:
    if not page.allowed(VIEWERS):
        return page.forbidden_role()
    return page.render(
        "screen.html",
        bounds=service.bounds_of(page.request.app.state.places()),
        refresh_seconds=REFRESH_SECONDS,
        evaluation=page.allowed(EVALUATION_READERS),
    )


@router.get("/screen/data")
def screen_data(page: StaffPageDep) -> Response:
    """Counters, charts, open cases and heat points: what the screen redraws every refresh."""
    if not page.allowed(VIEWERS):
        return JSONResponse({"detail": page.t("forbidden_role")}, status_code=403)
    body = {
        "at": page.now.astimezone(page.tz).strftime("%Y-%m-%d %H:%M:%S"),
        "counters": service.counters(page.db, now=page.now, tz=page.tz),
        "charts": service.charts(page.db, now=page.now, tz=page.tz, lang=page.lang),
        "cases": service.open_case_features(
            page.db, now=page.now, calendar=page.calendar, lang=page.lang
        ),
        "heat": service.heat_points(page.db, now=page.now),
        "cameras": service.camera_features(page.db, now=page.now),
        "sensors": service.sensor_features(page.db, tz=page.tz, lang=page.lang),
        "inspectors": service.inspector_features(page.db, now=page.now, tz=page.tz),
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


# Administrative boundaries are public (the citizen's page draws them); the responsibility
# grids, unit grids and cases are for staff.
PUBLIC_LEVELS = frozenset({"district", "street", "community"})


@router.get("/web/layers/regions/{level}.geojson")
def region_layer(level: str, page: PageDep) -> Response:
    if level not in PUBLIC_LEVELS and not page.allowed(MAP_USERS):
        return JSONResponse({"detail": page.t("forbidden_role")}, status_code=403)
    try:
        body = service.region_layer(page.request.app.state.places(), level)
    except ValidationFailed as exc:
        return JSONResponse(exc.as_dict(), status_code=exc.status_code)
    return Response(
        body,
        media_type="application/geo+json",
        headers={"Cache-Control": "private, max-age=3600"},
    )


@router.get("/web/layers/unit_grids.geojson")
def unit_grid_layer(page: StaffPageDep, bbox: str = "") -> Response:
    if not page.allowed(MAP_USERS):
        return JSONResponse({"detail": page.t("forbidden_role")}, status_code=403)
    try:
        box = service.parse_bbox(bbox)
    except ValidationFailed as exc:
        return JSONResponse(exc.as_dict(), status_code=exc.status_code)
    return JSONResponse(
        service.unit_grid_layer(page.db, box),
        media_type="application/geo+json",
        headers={"Cache-Control": "private, max-age=600"},
    )
