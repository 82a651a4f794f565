"""REST edge of geocoding: the administrator imports gazetteer points (doorplates, POIs,
places) from CSV or GeoJSON."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, UploadFile
from pydantic import BaseModel

from cityloop.deps import SessionDep, UserDep
from cityloop.errors import Forbidden
from cityloop.geocoding import service

router = APIRouter(prefix="/api/v1", tags=["geocoding 地理编码"])


class PointsImportOut(BaseModel):
    imported: int
    total: int


@router.post(
    "/address-points/import",
    response_model=PointsImportOut,
    status_code=201,
    summary="Import address points 导入地址点 (CSV: name, kind, lon, lat, district?; or GeoJSON)",
)
def import_points(
    session: SessionDep,
    user: UserDep,
    file: Annotated[UploadFile, File(description="CSV or GeoJSON FeatureCollection of Points")],
) -> PointsImportOut:
    if user.role != "admin":
        raise Forbidden("only an administrator imports address points")
    count = service.import_file(session, file.file.read(), file.filename)
    return PointsImportOut(imported=count, total=service.count_points(session))
