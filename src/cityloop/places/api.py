"""REST edge of places: locate a point, browse the region tree."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from cityloop.deps import PlacesDep, SessionDep
from cityloop.errors import NotFound, ValidationFailed
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
