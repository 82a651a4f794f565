"""REST edge of intake: the minimal report endpoint that starts the loop."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header
from pydantic import BaseModel, Field

from cityloop.deps import CalendarDep, NowDep, OptionalActorDep, PlacesDep, SessionDep
from cityloop.intake.service import Report, receive

router = APIRouter(prefix="/api/v1", tags=["intake 信息收集"])


class ReportIn(BaseModel):
    source: str = Field(
        description="where the report comes from, e.g. inspector, public, hotline_12345, leader"
    )
    class_code: str = Field(description="GB/T 47678.5 class code (5 digits) or a legacy alias")
    description: str = Field(min_length=1, max_length=2000)
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    urgency: str | None = Field(default=None, pattern="^[ABC]$")
    address: str | None = Field(default=None, max_length=200)
    reporter_name: str | None = Field(default=None, max_length=40)
    reporter_phone: str | None = Field(default=None, max_length=30)
    component_id: str | None = Field(default=None, max_length=17)
    photos: list[str] = Field(default_factory=list, max_length=9)


class ReportOut(BaseModel):
    id: int
    ticket: str
    state: str


@router.post(
    "/reports", response_model=ReportOut, status_code=201, summary="Report a problem 上报问题"
)
def post_report(
    body: ReportIn,
    session: SessionDep,
    actor: OptionalActorDep,
    places: PlacesDep,
    calendar: CalendarDep,
    now: NowDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> ReportOut:
    case, _created = receive(
        session,
        Report(**body.model_dump()),
        actor=actor,
        places=places,
        calendar=calendar,
        now=now,
        idempotency_key=idempotency_key,
    )
    return ReportOut(id=case.id, ticket=case.ticket, state=case.state)
