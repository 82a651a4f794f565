"""REST edge of learning: suggestions for a text, the live accuracy figures."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from cityloop.deps import NowDep, PlacesDep, SessionDep, UserDep
from cityloop.errors import Forbidden, NotFound
from cityloop.learning import integrity, service

router = APIRouter(prefix="/api/v1", tags=["learning 智能建议"])
STAFF = frozenset({"admin", "operator", "shiftlead", "dispatcher", "leader"})


class SuggestionIn(BaseModel):
    text: str = Field(min_length=1, max_length=10_000)
    lon: float | None = Field(default=None, ge=-180, le=180)  # NaN fails the bounds too
    lat: float | None = Field(default=None, ge=-90, le=90)


class ClassP(BaseModel):
    code: str
    name: str
    p: float


class DepartmentP(BaseModel):
    id: int
    name: str
    p: float


class SuggestionOut(BaseModel):
    classes: list[ClassP]
    departments: list[DepartmentP]
    model: str


@router.post("/suggestions", response_model=SuggestionOut)
def suggest(body: SuggestionIn, session: SessionDep, user: UserDep, places: PlacesDep) -> Any:
    """Top-3 classes and departments with calibrated probabilities (any staff role)."""
    if user.role not in STAFF:
        raise Forbidden("suggestions are for staff registering reports")
    district = None
    if body.lon is not None and body.lat is not None:
        found = places.locate(body.lon, body.lat)
        district = found.district if found is not None else None
    result = service.suggest(session, body.text, district=district)
    if result is None:
        raise NotFound("no model trained yet: run `cityloop learn`", field="model")
    return {"classes": result.classes, "departments": result.departments, "model": result.model}


@router.get("/suggestions/accuracy")
def accuracy(session: SessionDep, user: UserDep, now: NowDep) -> Any:
    """The model's live accuracy over the last 7 and 30 days."""
    if user.role not in STAFF:
        raise Forbidden("the live accuracy is for staff")
    return {
        "last_7_days": service.live_accuracy(session, now=now, days=7),
        "last_30_days": service.live_accuracy(session, now=now, days=30),
    }


class PrefileIn(BaseModel):
    enabled: bool
    threshold: float = Field(default=0.9, ge=0.5, le=1.0)


@router.put("/suggestions/prefile/{source}")
def set_prefile(source: str, body: PrefileIn, session: SessionDep, user: UserDep) -> Any:
    """Switch pre-filing on or off for a citizens' source (admin)."""
    if user.role != "admin":
        raise Forbidden("only an administrator switches pre-filing")
    row = service.set_prefile(session, source, enabled=body.enabled, threshold=body.threshold)
    return {"source": row.source, "enabled": row.enabled, "threshold": row.threshold}


class RecheckOut(BaseModel):
    id: int
    case_id: int
    drawn_at: datetime
    inspector_id: int | None
    outcome: str | None
    note: str


class RecheckIn(BaseModel):
    outcome: str = Field(description="confirmed | failed")
    note: str = Field(default="", max_length=2000)


@router.get("/rechecks", response_model=list[RecheckOut])
def rechecks(session: SessionDep, user: UserDep) -> Any:
    """Cases drawn for re-check (抽查) still waiting: an inspector sees the ones given to them,
    the centre all of them."""
    if user.role == "inspector":
        return integrity.open_rechecks(session, inspector_id=user.id)
    if user.role not in STAFF:
        raise Forbidden("re-checks are for the centre and the inspectors drawn")
    return integrity.open_rechecks(session, inspector_id=None)


@router.post("/rechecks/{recheck_id}", response_model=RecheckOut)
def record_recheck(
    recheck_id: int, body: RecheckIn, session: SessionDep, user: UserDep, now: NowDep
) -> Any:
    """The drawn inspector's outcome of a re-check (once: a second answer is 409)."""
    row = integrity.get_recheck(session, recheck_id)
    if user.role != "admin" and row.inspector_id != user.id:
        raise Forbidden("only the inspector drawn for this re-check records its outcome")
    return integrity.record_recheck(
        session, recheck_id, outcome=body.outcome, note=body.note, now=now
    )
