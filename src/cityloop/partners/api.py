"""REST edge of partner platforms: forwarded reports (API key in ``X-Api-Key``) and the
administrator's partner register."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Response
from sqlalchemy.orm import Session

from cityloop.cases.models import Case
from cityloop.cases.states import state_label
from cityloop.deps import CaseWritingDep, NowDep, SessionDep, UserDep
from cityloop.errors import Forbidden
from cityloop.org.models import User
from cityloop.partners import service
from cityloop.partners.http import CappedBodyRoute
from cityloop.partners.models import Partner
from cityloop.partners.schemas import (
    PartnerIn,
    PartnerKeyOut,
    PartnerOut,
    PartnerPatch,
    PartnerReportIn,
    PartnerReportOut,
)

router = APIRouter(prefix="/api/v1", tags=["partners 平台对接"], route_class=CappedBodyRoute)

ApiKeyHeader = Annotated[
    str | None,
    Header(alias="X-Api-Key", description="the partner's API key", max_length=200),
]


def _report_out(session: Session, case: Case, ticket_id: str, created: bool) -> PartnerReportOut:
    return PartnerReportOut(
        ticket_id=ticket_id,
        ticket=case.ticket,
        state=case.state,
        state_label=state_label(case.state),
        status="open" if service.is_open(case.state) else "closed",
        merged_into=service.merged_into_ticket(session, case),
        created=created,
    )


@router.post(
    "/partners/reports",
    response_model=PartnerReportOut,
    status_code=201,
    summary="A partner platform forwards a report 平台转办",
    responses={
        200: {"description": "a replay of a ticket already received: the same case"},
        401: {"description": "missing or unknown X-Api-Key"},
        413: {"description": "body over 64 KiB"},
    },
)
def post_partner_report(
    body: PartnerReportIn,
    response: Response,
    writing: CaseWritingDep,
    x_api_key: ApiKeyHeader = None,
) -> PartnerReportOut:
    session = writing.session
    partner = service.authenticate(session, x_api_key)
    case, created = service.receive_partner_report(
        session,
        partner,
        service.PartnerReport(**body.model_dump()),
        places=writing.places,
        calendar=writing.calendar,
        now=writing.now,
    )
    if not created:
        response.status_code = 200
    return _report_out(session, case, body.ticket_id, created)


@router.get(
    "/partners/reports/{ticket_id}",
    response_model=PartnerReportOut,
    summary="Where a forwarded report stands 转办进度",
)
def get_partner_report(
    ticket_id: Annotated[str, Path(max_length=100)],
    session: SessionDep,
    x_api_key: ApiKeyHeader = None,
) -> PartnerReportOut:
    partner = service.authenticate(session, x_api_key)
    case = service.partner_case(session, partner, ticket_id)
    return _report_out(session, case, ticket_id, False)


# -- the administrator's register --------------------------------------------------------------
def _require_admin(user: User) -> None:
    if user.role != "admin":
        raise Forbidden("only an administrator manages partner platforms")


def _out(partner: Partner) -> PartnerOut:
    return PartnerOut.model_validate(partner, from_attributes=True)


def _with_key(partner: Partner, api_key: str) -> PartnerKeyOut:
    return PartnerKeyOut(**_out(partner).model_dump(), api_key=api_key)


@router.get("/partners", response_model=list[PartnerOut], summary="Partner platforms 对接平台")
def list_partners(session: SessionDep, user: UserDep) -> list[PartnerOut]:
    _require_admin(user)
    return [_out(p) for p in service.list_partners(session)]


@router.post(
    "/partners",
    response_model=PartnerKeyOut,
    status_code=201,
    summary="Register a partner platform 新增对接平台 (the key is shown once)",
)
def create_partner(
    body: PartnerIn, session: SessionDep, user: UserDep, now: NowDep
) -> PartnerKeyOut:
    _require_admin(user)
    partner, key = service.create_partner(
        session,
        code=body.code,
        name=body.name,
        source=body.source,
        webhook_url=body.webhook_url,
        now=now,
    )
    return _with_key(partner, key)


@router.patch(
    "/partners/{partner_id}", response_model=PartnerOut, summary="Edit a partner 编辑对接平台"
)
def patch_partner(
    partner_id: int, body: PartnerPatch, session: SessionDep, user: UserDep
) -> PartnerOut:
    _require_admin(user)
    partner = service.update_partner(session, partner_id, body.model_dump(exclude_unset=True))
    return _out(partner)


@router.post(
    "/partners/{partner_id}/key",
    response_model=PartnerKeyOut,
    summary="Issue a new API key 更换密钥 (the old one stops working)",
)
def rotate_partner_key(partner_id: int, session: SessionDep, user: UserDep) -> PartnerKeyOut:
    _require_admin(user)
    partner, key = service.rotate_key(session, partner_id)
    return _with_key(partner, key)


@router.delete(
    "/partners/{partner_id}/key",
    response_model=PartnerOut,
    summary="Revoke the API key 吊销密钥 (the partner stays registered, without a key)",
)
def revoke_partner_key(partner_id: int, session: SessionDep, user: UserDep) -> PartnerOut:
    _require_admin(user)
    return _out(service.revoke_key(session, partner_id))
