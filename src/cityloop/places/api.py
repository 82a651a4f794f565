"""REST edge of places: locate a point, browse the region tree; the administrator imports
regions and unit grids from GeoJSON."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from pydantic import BaseModel
from sqlalchemy.orm import Session

from cityloop.deps import PlacesDep, SessionDep, UserDep
from cityloop.errors import Forbidden, NotFound, ValidationFailed
from cityloop.places import service

router = APIRouter(prefix="/api/v1", tags=["places 网格"])


class RegionOut(BaseModel):
    code: str
    level: str
    name: str
    parent_code: str | None
    centroid_lon: float
    centroid_lat: float
    area_km2: float


@router.get("/places/locate", summary="Which grid is this point in 网格定位")
def locate(
    places: PlacesDep,
    lon: float = Query(ge=-180, le=180),
    lat: float = Query(ge=-90, le=90),
) -> dict[str, Any]:
    location = places.locate(lon, lat)
    if location is None:
        raise ValidationFailed(f"the point ({lon}, {lat}) is outside the city's area", field="lon")
    return asdict(location)


@router.get("/regions", response_model=list[RegionOut], summary="Region tree 区域")
def regions(session: SessionDep, parent_code: str | None = None) -> list[RegionOut]:
    if parent_code is None:
        rows = service.children(session, "")
    else:
        if service.get_region(session, parent_code) is None:
            raise NotFound(f"region {parent_code} not found")
        rows = service.children(session, parent_code)
    return [RegionOut.model_validate(r, from_attributes=True) for r in rows]


class ImportOut(BaseModel):
    level: str
    imported: int
    counts: dict[str, int]


def commit_and_reload(request: Request, session: Session) -> None:
    """Commit the import, then drop the process's grid index so the next request locates
    points in the new grids. (Dropped after the commit: a request loading it in between
    would otherwise keep the old grids for good.)"""
    session.commit()
    reset = getattr(request.app.state.places, "reset", None)
    if callable(reset):
        reset()


@router.post(
    "/places/import",
    response_model=ImportOut,
    status_code=201,
    summary="Import regions or unit grids from GeoJSON 导入区域/单元网格 (admin)",
)
def import_places(
    request: Request,
    session: SessionDep,
    user: UserDep,
    level: Annotated[str, Form(description=", ".join(service.IMPORT_LEVELS))],
    file: Annotated[UploadFile, File(description="a GeoJSON FeatureCollection (WGS-84)")],
) -> ImportOut:
    if user.role != "admin":
        raise Forbidden("only an administrator imports places")
    count = service.import_file(session, file.file.read(), level)
    counts = service.level_counts(session)
    commit_and_reload(request, session)
    return ImportOut(level=level, imported=count, counts=counts)
