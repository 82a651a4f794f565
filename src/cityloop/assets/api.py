"""REST edge of the component registry."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from cityloop.assets import service
from cityloop.assets.models import Component
from cityloop.deps import PlacesDep, SessionDep, UserDep
from cityloop.errors import Forbidden, ValidationFailed

router = APIRouter(prefix="/api/v1", tags=["assets 部件"])


class ComponentIn(BaseModel):
    identifier: str = Field(description="17 digits (GB/T 47678.5) or a legacy 16-digit code")
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    name: str | None = Field(default=None, max_length=60)
    managing_department_id: int | None = None
    owner_department_id: int | None = None
    maintainer_department_id: int | None = None
    responsible_person: str | None = Field(default=None, max_length=40)
    phone: str | None = Field(default=None, max_length=30)
    status: str = "完好"


class ComponentOut(BaseModel):
    identifier: str
    legacy_identifier: str | None
    class_code: str
    name: str
    lon: float
    lat: float
    unit_grid: str | None
    managing_department_id: int | None
    owner_department_id: int | None
    maintainer_department_id: int | None
    responsible_person: str | None
    phone: str | None
    status: str


def _out(component: Component) -> ComponentOut:
    return ComponentOut.model_validate(component, from_attributes=True)


@router.post(
    "/components",
    response_model=ComponentOut,
    status_code=201,
    summary="Register a component 部件登记",
)
def register(
    body: ComponentIn, session: SessionDep, user: UserDep, places: PlacesDep
) -> ComponentOut:
    if user.role != "admin":
        raise Forbidden("only an administrator registers components")
    location = places.locate(body.lon, body.lat)
    if location is None:
        raise ValidationFailed(
            f"the point ({body.lon}, {body.lat}) is outside the city's area", field="lon"
        )
    return _out(
        service.register_component(session, unit_grid=location.unit_grid, **body.model_dump())
    )


@router.get(
    "/components/{identifier}",
    response_model=ComponentOut,
    summary="A component's ID card 部件信息",
)
def get(identifier: str, session: SessionDep, user: UserDep) -> ComponentOut:
    return _out(service.get_component(session, identifier))
