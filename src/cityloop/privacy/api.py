"""REST edge of privacy: retention rules (admin), citizens' access and erasure requests taken
by the desks that deal with citizens, and the contact-view log (admin)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from cityloop.cases.service import Actor
from cityloop.deps import NowDep, SessionDep, UserDep
from cityloop.errors import Forbidden
from cityloop.org.models import User
from cityloop.privacy import service

router = APIRouter(prefix="/api/v1/privacy", tags=["privacy 个人信息保护"])

# The desks that take a citizen's call or visit and can check who is asking.
TAKES_REQUESTS = frozenset({"admin", "operator", "shiftlead"})


def _require_admin(user: User) -> None:
    if user.role != "admin":
        raise Forbidden("only an administrator manages retention and reads the contact-view log")


class RetentionOut(BaseModel):
    kind: str
    months: int
    label: str


class RetentionIn(BaseModel):
    months: int = Field(description="months kept after the record is done with (1–240)")


@router.get("/retention", response_model=list[RetentionOut], summary="Retention rules 保存期限")
def list_retention(session: SessionDep, user: UserDep) -> list[RetentionOut]:
    _require_admin(user)
    return [
        RetentionOut(kind=r.kind, months=r.months, label=r.label)
        for r in service.retention_rules(session)
    ]


@router.put(
    "/retention/{kind}", response_model=RetentionOut, summary="Set a retention period 设置保存期限"
)
def put_retention(kind: str, body: RetentionIn, session: SessionDep, user: UserDep) -> RetentionOut:
    _require_admin(user)
    row = service.set_retention(session, kind, body.months)
    return RetentionOut(kind=row.kind, months=row.months, label=row.label)


class SubjectRequestIn(BaseModel):
    kind: str = Field(description="access (查询本人信息) or erasure (删除本人信息)")
    phone: str = Field(max_length=30, description="the citizen's phone, checked by the desk")
    note: str | None = Field(default=None, max_length=200)


class SubjectRecordOut(BaseModel):
    subject_type: str
    id: int
    ticket: str | None
    created_at: datetime
    state: str | None
    class_code: str | None
    text: str
    address: str | None
    contact_erased: bool


class SubjectAnswerOut(BaseModel):
    id: int
    kind: str
    records: list[SubjectRecordOut]
    erased: int
    retained: list[str] = Field(description="tickets still being handled: erased after archive")


@router.post(
    "/requests",
    response_model=SubjectAnswerOut,
    status_code=201,
    summary="A citizen's access or erasure request 个人信息查询/删除申请",
)
def subject_request(
    request: Request, body: SubjectRequestIn, session: SessionDep, user: UserDep, now: NowDep
) -> SubjectAnswerOut:
    if user.role not in TAKES_REQUESTS:
        raise Forbidden("requests are taken by the hotline and acceptance desks")
    answer = service.handle_request(
        session,
        kind=body.kind,
        phone=body.phone,
        note=body.note,
        staff=Actor.of(user),
        now=now,
        keyring=request.app.state.keyring,
    )
    return SubjectAnswerOut(
        id=answer.request.id,
        kind=answer.request.kind,
        records=[SubjectRecordOut(**vars(r)) for r in answer.records],
        erased=answer.erased,
        retained=answer.retained,
    )


class ContactViewOut(BaseModel):
    id: int
    at: datetime
    user_id: int | None
    user_name: str
    role: str
    subject_type: str
    subject_id: int
    ticket: str | None


class ContactViewPage(BaseModel):
    items: list[ContactViewOut]
    total: int
    page: int
    page_size: int


@router.get(
    "/contact-views",
    response_model=ContactViewPage,
    summary="Who saw a reporter's contact 联系方式查看记录 (admin)",
)
def list_contact_views(
    session: SessionDep,
    user: UserDep,
    case_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    user_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ContactViewPage:
    _require_admin(user)
    rows, total = service.contact_views(
        session, case_id=case_id, user_id=user_id, page=page, page_size=page_size
    )
    return ContactViewPage(
        items=[ContactViewOut.model_validate(r, from_attributes=True) for r in rows],
        total=total,
        page=page,
        page_size=page_size,
    )
