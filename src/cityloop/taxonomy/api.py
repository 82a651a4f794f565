"""REST edge of the taxonomy: browse classes and their standards; admins edit them."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from cityloop.deps import SessionDep, UserDep
from cityloop.errors import Forbidden, NotFound
from cityloop.kit.patch import Patch
from cityloop.taxonomy import service
from cityloop.taxonomy.models import ProblemClass

router = APIRouter(prefix="/api/v1", tags=["taxonomy 部件事件分类"])


class ClassOut(BaseModel):
    code: str
    parent_code: str | None
    level: str
    kind: str
    name: str
    matter_name: str | None
    name_en: str | None
    standard: str
    default_urgency: str
    handling_days: dict[str, Any]
    filing_standard: str
    closure_standard: str
    manual: str
    active: bool


class ClassPatch(Patch):
    nullable = frozenset({"name_en"})

    name_en: str | None = None
    default_urgency: str | None = None
    handling_days: dict[str, float] | None = None
    filing_standard: str | None = None
    closure_standard: str | None = None
    manual: str | None = None
    active: bool | None = None


def _out(row: ProblemClass) -> ClassOut:
    return ClassOut.model_validate(row, from_attributes=True)


@router.get("/classes", response_model=list[ClassOut], summary="Problem classes 部件事件分类")
def list_classes(
    session: SessionDep, kind: str | None = None, parent_code: str | None = None
) -> list[ClassOut]:
    return [_out(row) for row in service.list_classes(session, kind=kind, parent_code=parent_code)]


@router.get("/classes/{code}", response_model=ClassOut, summary="One class 分类详情")
def get_class(code: str, session: SessionDep) -> ClassOut:
    row = session.get(ProblemClass, code)
    if row is None:
        raise NotFound(f"problem class {code!r} not found")
    return _out(row)


@router.patch(
    "/classes/{code}", response_model=ClassOut, summary="Edit a class's standards 编辑立结案标准"
)
def patch_class(code: str, body: ClassPatch, session: SessionDep, user: UserDep) -> ClassOut:
    if user.role != "admin":
        raise Forbidden("only an administrator edits the taxonomy")
    return _out(service.update_class(session, code, body.model_dump(exclude_unset=True)))


class OverrideIn(BaseModel):
    is_workday: bool
    note: str = ""


class OverrideOut(OverrideIn):
    day: date


@router.get(
    "/calendar/overrides",
    response_model=list[OverrideOut],
    tags=["calendar 工作日历"],
    summary="Local calendar overrides 日历调整",
)
def list_overrides(session: SessionDep) -> list[OverrideOut]:
    return [
        OverrideOut(day=r.day, is_workday=r.is_workday, note=r.note)
        for r in service.calendar_overrides(session)
    ]


@router.put(
    "/calendar/overrides/{day}",
    response_model=OverrideOut,
    tags=["calendar 工作日历"],
    summary="Declare a day a working day or a holiday 设置工作日/节假日",
)
def put_override(
    day: date, body: OverrideIn, request: Request, session: SessionDep, user: UserDep
) -> OverrideOut:
    if user.role != "admin":
        raise Forbidden("only an administrator edits the calendar")
    service.set_calendar_override(session, day, body.is_workday, body.note)
    request.app.state.time_rules.invalidate()
    return OverrideOut(day=day, is_workday=body.is_workday, note=body.note)
