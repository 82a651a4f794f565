"""REST edge of enforcement: registers, enforcement cases and their actions, public penalties.
Handlers call the service and shape its rows; they build no SQL of their own."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy.orm import Session

from cityloop.deps import ActorDep, CalendarDep, NowDep, SessionDep
from cityloop.enforcement import service
from cityloop.enforcement.models import EnforcementCase, Party
from cityloop.enforcement.schemas import (
    ActionIn,
    ActionOut,
    ArticleOut,
    ArticleRef,
    CaseIn,
    CaseOut,
    Deadline,
    EventOut,
    LawOut,
    PartyIn,
    PartyOut,
    PublicPenalty,
    PublicPenaltyPage,
    ViolationOut,
)
from cityloop.enforcement.states import BY_ACTION, TABLE
from cityloop.errors import Forbidden, NotFound
from cityloop.kit.calendar import WorkingCalendar
from cityloop.kit.privacy import mask_name
from cityloop.workflow.actors import Actor

router = APIRouter(prefix="/api/v1", tags=["enforcement 执法"])

STAFF = frozenset({"officer", "legal_reviewer", "enforcement_chief", "admin", "leader"})


def _staff(actor: Actor) -> None:
    if actor.role not in STAFF:
        raise Forbidden(f"the role {actor.role} has no access to enforcement")


@router.get("/enforcement/laws", response_model=list[LawOut], summary="法律法规库")
def laws(session: SessionDep, actor: ActorDep) -> list[LawOut]:
    return [
        LawOut(
            code=law.code,
            name=law.name,
            issuer=law.issuer,
            articles=[
                ArticleOut(
                    number=a.number,
                    label=service.article_label(a.number),
                    text=a.text,
                    is_summary=a.is_summary,
                )
                for a in articles
            ],
        )
        for law, articles in service.list_laws(session)
    ]


@router.get("/enforcement/violations", response_model=list[ViolationOut], summary="违法行为库")
def violations(session: SessionDep, actor: ActorDep) -> list[ViolationOut]:
    out = []
    for violation, va, pa, vl, pl in service.list_violations(session):
        out.append(
            ViolationOut(
                code=violation.code,
                name=violation.name,
                violation_basis=ArticleRef(
                    law=vl.name,
                    number=va.number,
                    label=f"《{vl.name}》{service.article_label(va.number)}",
                ),
                penalty_basis=ArticleRef(
                    law=pl.name,
                    number=pa.number,
                    label=f"《{pl.name}》{service.article_label(pa.number)}",
                ),
                class_codes=list(violation.class_codes or []),
                standard=service.standard_code(session, violation.standard_id),
            )
        )
    return out


def party_out(party: Party) -> PartyOut:
    return PartyOut(
        id=party.id,
        kind=party.kind,
        name=party.name,
        id_number=party.id_masked,
        credit_code=party.credit_code,
        address=party.address,
    )


@router.post(
    "/enforcement/parties", response_model=PartyOut, status_code=201, summary="登记执法对象"
)
def create_party(
    body: PartyIn, request: Request, session: SessionDep, actor: ActorDep, now: NowDep
) -> PartyOut:
    _staff(actor)
    party = service.create_party(
        session,
        body.model_dump(exclude_none=True),
        now=now,
        secret=request.app.state.settings.secret_key,
    )
    return party_out(party)


@router.post(
    "/enforcement/cases", response_model=CaseOut, status_code=201, summary="受案 (new case)"
)
def create_case(
    body: CaseIn, session: SessionDep, actor: ActorDep, now: NowDep, calendar: CalendarDep
) -> CaseOut:
    _staff(actor)
    data = body.model_dump(exclude_none=True)
    case_id = data.pop("case_id", None)
    if case_id is not None:
        # From a case of the loop: the case loop's own action, so the case moves with it.
        from cityloop.cases import service as cases

        case = cases.transition(
            session,
            case_id,
            "open_enforcement",
            actor,
            data,
            now=now,
            calendar=calendar,
        )
        assert case.enforcement_case_id is not None
        record = service.get_enforcement_case(session, case.enforcement_case_id)
    else:
        record = service.create(
            session, data, actor, now=now, calendar=calendar, source=data.get("source", "patrol")
        )
    return case_out(session, record, now=now, calendar=calendar, actor=actor)


def _visible(session: Session, actor: Actor, case_id: int) -> EnforcementCase:
    _staff(actor)
    record = service.get_enforcement_case(session, case_id)
    if not service.can_see(session, actor, record):
        raise NotFound(f"enforcement case {case_id} not found")
    return record


@router.get("/enforcement/cases/{case_id}", response_model=CaseOut, summary="执法案件")
def read_case(
    case_id: int, session: SessionDep, actor: ActorDep, now: NowDep, calendar: CalendarDep
) -> CaseOut:
    record = _visible(session, actor, case_id)
    return case_out(session, record, now=now, calendar=calendar, actor=actor)


@router.get(
    "/enforcement/cases/{case_id}/actions", response_model=list[ActionOut], summary="可执行操作"
)
def actions(
    case_id: int, session: SessionDep, actor: ActorDep, now: NowDep, calendar: CalendarDep
) -> list[ActionOut]:
    record = _visible(session, actor, case_id)
    return [
        ActionOut(action=t.action, label=t.label, label_en=t.label_en, required=list(t.required))
        for t in service.allowed_actions(session, record, actor, now=now, calendar=calendar)
    ]


@router.post(
    "/enforcement/cases/{case_id}/actions/{action}",
    response_model=CaseOut,
    summary="执行操作",
    responses={
        403: {"description": "role or scope"},
        404: {"description": "no such case or action"},
        409: {"description": "state or version conflict"},
        422: {"description": "bad payload, or a rule of the procedure"},
    },
)
def take_action(
    case_id: int,
    action: str,
    body: ActionIn,
    session: SessionDep,
    actor: ActorDep,
    now: NowDep,
    calendar: CalendarDep,
) -> CaseOut:
    _staff(actor)
    if action not in BY_ACTION:
        raise NotFound(
            f"unknown action {action!r}; see GET /api/v1/enforcement/cases/{case_id}/actions"
        )
    record = service.transition(
        session,
        case_id,
        action,
        actor,
        body.model_dump(exclude={"version"}),
        now=now,
        calendar=calendar,
        expected_version=body.version,
    )
    return case_out(session, record, now=now, calendar=calendar, actor=actor)


def case_out(
    session: Session, record: EnforcementCase, *, now: Any, calendar: WorkingCalendar, actor: Actor
) -> CaseOut:
    view = service.case_view(session, record, now=now, calendar=calendar)
    return CaseOut(
        id=record.id,
        state=record.state,
        state_label=TABLE.state_label(record.state),
        version=record.version,
        procedure=record.procedure,
        source=record.source,
        violation_code=view.violation.code,
        violation_name=view.violation.name,
        party=party_out(view.party),
        facts=record.facts,
        lon=record.lon,
        lat=record.lat,
        address=record.address,
        squad=view.squad.name,
        case_id=record.case_id,
        filed_at=record.filed_at,
        decided_at=record.decided_at,
        delivered_at=record.delivered_at,
        fine_yuan=record.fine_cents / 100,
        penalty=record.penalty,
        paid_yuan=record.paid_cents / 100,
        surcharge_yuan=view.surcharge_cents / 100,
        outstanding_yuan=view.outstanding_cents / 100,
        result=record.result,
        result_note=record.result_note,
        deadlines=[Deadline(**d) for d in view.deadlines],
        discretion=view.discretion,
        reviews=record.reviews or {},
        discussion=record.discussion,
        documents=service.documents(session, record.id),
        timeline=[
            EventOut(
                seq=e.seq,
                at=e.at,
                actor_name=e.actor_name,
                actor_role=e.actor_role,
                action=e.action,
                from_state=e.from_state,
                to_state=e.to_state,
                payload=e.payload,
                photos=e.photos,
                hash=e.hash,
            )
            for e in service.timeline(session, record.id)
        ],
    )


LEADERS = frozenset({"enforcement_chief", "legal_reviewer", "leader", "admin"})


@router.get("/enforcement/figures", summary="执法统计 (for the bureau's leaders)")
def figures(
    session: SessionDep, actor: ActorDep, now: NowDep, calendar: CalendarDep
) -> dict[str, Any]:
    """Cases by stage, on-time rate, fines decided and collected, 全过程记录 coverage, cases
    per squad and officer."""
    if actor.role not in LEADERS:
        raise Forbidden(f"the role {actor.role} may not read the enforcement figures")
    return service.figures(session, now=now, calendar=calendar)


@router.get(
    "/public/penalties",
    response_model=PublicPenaltyPage,
    tags=["public 公众"],
    summary="行政处罚公示 (no login)",
)
def public_penalties(
    session: SessionDep,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> PublicPenaltyPage:
    rows, total = service.public_penalties(session, page=page, page_size=page_size)
    return PublicPenaltyPage(
        items=[
            public_penalty(session, record, party, violation) for record, party, violation in rows
        ],
        total=total,
        page=page,
        page_size=page_size,
    )


def public_penalty(
    session: Session, record: EnforcementCase, party: Party, violation: Any
) -> PublicPenalty:
    assert record.decided_at is not None and record.delivered_at is not None
    parts = []
    if record.fine_cents:
        parts.append(f"罚款{record.fine_cents / 100:g}元")
    if record.penalty:
        parts.append(service.PENALTIES[record.penalty])
    return PublicPenalty(
        id=record.id,
        # A person's name masked (张*); an organisation's full name kept; never an ID number.
        party=(mask_name(party.name) or "") if party.kind == "person" else party.name,
        party_kind=party.kind,
        violation=violation.name,
        penalty_basis=service.basis_label(session, violation.penalty_article_id),
        penalty="、".join(parts),
        fine_yuan=record.fine_cents / 100,
        decided_at=record.decided_at,
        delivered_at=record.delivered_at,
    )
