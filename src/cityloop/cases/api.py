"""REST edge of the case loop: list, read, allowed actions, take an action, public ticket."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityloop.cases import service
from cityloop.cases.models import Case
from cityloop.cases.schemas import (
    ActionInfo,
    ActionRequest,
    CaseDetail,
    CasePage,
    CaseSummary,
    PublicStep,
    PublicTicket,
    TimelineEntry,
)
from cityloop.cases.states import BY_ACTION, state_label
from cityloop.deps import ActorDep, CalendarDep, NowDep, SessionDep
from cityloop.errors import NotFound, ValidationFailed
from cityloop.kit.calendar import WorkingCalendar
from cityloop.kit.privacy import SEES_REPORTER_CONTACT, mask_name, mask_phone
from cityloop.org.models import Department
from cityloop.places.models import Region
from cityloop.privacy.service import record_contact_view
from cityloop.taxonomy.models import ProblemClass

router = APIRouter(prefix="/api/v1", tags=["cases 案卷"])


def _names(session: Session, codes: set[str]) -> dict[str, str]:
    codes.discard("")
    if not codes:
        return {}
    rows = session.execute(select(Region.code, Region.name).where(Region.code.in_(codes))).all()
    return {code: name for code, name in rows}


def _summary_fields(
    session: Session,
    case: Case,
    now: Any,
    calendar: WorkingCalendar,
    classes: dict[str, ProblemClass],
    departments: dict[int, str],
) -> dict[str, Any]:
    problem_class = classes.get(case.class_code) or session.get(ProblemClass, case.class_code)
    light = None
    if (
        case.stage_due_at is not None
        and case.stage_started_at is not None
        and case.state in (service.OPEN_STATES)
    ):
        light = service._clock(
            case.stage or "", case.stage_started_at, case.stage_due_at, now, calendar
        )["light"]
    return {
        "id": case.id,
        "ticket": case.ticket,
        "state": case.state,
        "state_label": state_label(case.state),
        "version": case.version,
        "source": case.source,
        "class_code": case.class_code,
        "class_name": problem_class.display_name if problem_class else case.class_code,
        "urgency": case.urgency,
        "district": case.district,
        "street": case.street,
        "community": case.community,
        "department_id": case.department_id,
        "department": departments.get(case.department_id) if case.department_id else None,
        "created_at": case.created_at,
        "due_at": case.due_at,
        "stage_due_at": case.stage_due_at,
        "light": light,
    }


@router.get("/cases", response_model=CasePage, summary="List cases 案卷列表")
def list_cases(
    session: SessionDep,
    actor: ActorDep,
    now: NowDep,
    calendar: CalendarDep,
    state: str | None = None,
    source: str | None = None,
    class_code: str | None = None,
    district: str | None = None,
    street: str | None = None,
    community: str | None = None,
    department_id: int | None = None,
    urgency: str | None = None,
    ticket: str | None = None,
    overdue: bool | None = None,
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 20,
) -> CasePage:
    filters = service.CaseFilters(
        state=state,
        source=source,
        class_code=class_code,
        district=district,
        street=street,
        community=community,
        department_id=department_id,
        urgency=urgency,
        ticket=ticket,
        overdue=overdue,
    )
    items, total = service.list_cases(
        session, actor, filters, page=page, page_size=page_size, now=now
    )
    class_codes = {c.class_code for c in items}
    classes = {
        c.code: c
        for c in session.scalars(select(ProblemClass).where(ProblemClass.code.in_(class_codes)))
    }
    dept_ids = {c.department_id for c in items if c.department_id}
    departments = dict(
        session.execute(
            select(Department.id, Department.name).where(Department.id.in_(dept_ids))
        ).all()
    )
    return CasePage(
        items=[
            CaseSummary(**_summary_fields(session, c, now, calendar, classes, departments))
            for c in items
        ],
        total=total,
        page=page,
        page_size=page_size,
    )


def case_detail(
    session: Session, case: Case, *, now: Any, calendar: WorkingCalendar, actor: service.Actor
) -> CaseDetail:
    problem_class = session.get(ProblemClass, case.class_code)
    assert problem_class is not None
    sees_contact = actor.role in SEES_REPORTER_CONTACT
    if sees_contact and (case.reporter_name or case.reporter_phone):
        # 《个人信息保护法》: who looked at a citizen's contact, when, on which case.
        record_contact_view(
            session, actor, subject_type="case", subject_id=case.id, ticket=case.ticket, now=now
        )
    departments = {}
    if case.department_id:
        dept = session.get(Department, case.department_id)
        departments = {dept.id: dept.name} if dept else {}
    names = _names(session, {case.district, case.street or "", case.community or ""})
    events = service.timeline(session, case.id)
    return CaseDetail(
        **_summary_fields(
            session, case, now, calendar, {problem_class.code: problem_class}, departments
        ),
        kind=case.kind,
        class_confirmed=case.class_confirmed,
        description=case.description,
        address=case.address,
        lon=case.lon,
        lat=case.lat,
        h3_cell=case.h3_cell,
        unit_grid=case.unit_grid,
        resp_grid=case.resp_grid,
        district_name=names.get(case.district),
        street_name=names.get(case.street or ""),
        community_name=names.get(case.community or ""),
        leader_assigned=case.leader_assigned,
        component_id=case.component_id,
        merged_into_id=case.merged_into_id,
        reporter_name=case.reporter_name if sees_contact else mask_name(case.reporter_name),
        reporter_phone=case.reporter_phone if sees_contact else mask_phone(case.reporter_phone),
        filed_at=case.filed_at,
        received_at=case.received_at,
        closed_at=case.closed_at,
        postpone_request=case.postpone_request,
        result_method=case.result_method,
        rework_count=case.rework_count,
        satisfied=case.satisfied,
        enforcement_case_id=case.enforcement_case_id,
        filing_standard=problem_class.filing_standard,
        closure_standard=problem_class.closure_standard,
        manual=problem_class.manual,
        deadlines=service.deadlines(session, case, now=now, calendar=calendar),
        timeline=[
            TimelineEntry(
                seq=e.seq,
                at=e.at,
                actor=e.actor_name,
                role=e.actor_role,
                action=e.action,
                from_state=e.from_state,
                to_state=e.to_state,
                department_id=e.department_id,
                payload=e.payload,
                photos=e.photos,
                hash=e.hash,
            )
            for e in events
        ],
    )


def _visible_case(session: Session, actor: service.Actor, case_id: int) -> Case:
    case = service.get_case(session, case_id)
    if not service.can_see(session, actor, case):
        # 404, not 403: another department must not learn that the case exists.
        raise NotFound(f"case {case_id} not found")
    return case


@router.get("/cases/{case_id}", response_model=CaseDetail, summary="One case 案卷详情")
def get_case(
    case_id: int, session: SessionDep, actor: ActorDep, now: NowDep, calendar: CalendarDep
) -> CaseDetail:
    case = _visible_case(session, actor, case_id)
    return case_detail(session, case, now=now, calendar=calendar, actor=actor)


@router.get(
    "/cases/{case_id}/actions",
    response_model=list[ActionInfo],
    summary="What you may do to this case now 可执行操作",
)
def case_actions(
    case_id: int, session: SessionDep, actor: ActorDep, now: NowDep, calendar: CalendarDep
) -> list[ActionInfo]:
    case = _visible_case(session, actor, case_id)
    return [
        ActionInfo(action=t.action, label=t.label, label_en=t.label_en, required=list(t.required))
        for t in service.allowed_actions(session, case, actor, now=now, calendar=calendar)
    ]


@router.post(
    "/cases/{case_id}/actions/{action}",
    response_model=CaseDetail,
    summary="Take an action on a case 执行操作",
    responses={
        403: {"description": "role or scope"},
        404: {"description": "no such case"},
        409: {"description": "state or version conflict"},
        422: {"description": "bad payload"},
    },
)
def take_action(
    case_id: int,
    action: str,
    body: ActionRequest,
    session: SessionDep,
    actor: ActorDep,
    now: NowDep,
    calendar: CalendarDep,
) -> CaseDetail:
    if action not in BY_ACTION:
        raise NotFound(f"unknown action {action!r}; see GET /api/v1/cases/{case_id}/actions")
    if BY_ACTION[action].repeats_unnoticed and body.version is None:
        # Asked only of a caller who may take the action now: the others get the table's
        # refusal (403, 409) from transition() as for any action.
        shown = _visible_case(session, actor, case_id)
        may = service.allowed_actions(session, shown, actor, now=now, calendar=calendar)
        if any(t.action == action for t in may):
            raise ValidationFailed(
                f"{action} leaves the case as it is: send the version you loaded "
                f"(now {shown.version}), so that a repeat of it is told from a new one",
                field="version",
            )
    payload = body.model_dump(exclude={"version"})
    case = service.transition(
        session,
        case_id,
        action,
        actor,
        payload,
        now=now,
        calendar=calendar,
        expected_version=body.version,
    )
    return case_detail(session, case, now=now, calendar=calendar, actor=actor)


@router.get(
    "/tickets/{ticket}",
    response_model=PublicTicket,
    tags=["public 公众"],
    summary="Track a report by its ticket 进度查询",
)
def track_ticket(ticket: str, session: SessionDep) -> PublicTicket:
    case = service.find_by_ticket(session, ticket)
    if case is None:
        raise NotFound(f"no report with ticket {ticket}")
    # A report attached to an open case follows that case's progress.
    followed = service.get_case(session, case.merged_into_id) if case.merged_into_id else case
    problem_class = session.get(ProblemClass, followed.class_code)
    names = _names(session, {followed.district, followed.street or ""})
    events = service.timeline(session, case.id)
    if followed is not case:
        events += [e for e in service.timeline(session, followed.id) if e.action != "report"]
    steps = [
        PublicStep(at=e.at, step=_public_step(e.action), state=state_label(e.to_state))
        for e in events
        if e.action in BY_ACTION or e.action in _PUBLIC_STEPS
    ]
    return PublicTicket(
        ticket=case.ticket,
        state=followed.state,
        state_label=state_label(followed.state),
        class_name=problem_class.display_name if problem_class else followed.class_code,
        district_name=names.get(followed.district),
        street_name=names.get(followed.street or ""),
        created_at=case.created_at,
        closed_at=followed.closed_at,
        merged_into_ticket=followed.ticket if followed is not case else None,
        rejection_reason=next(
            (
                str(e.payload.get("reason") or "")
                for e in reversed(events)
                if e.action == "reject" and followed.state == "rejected"
            ),
            None,
        ),
        steps=steps,
    )


_PUBLIC_STEPS = {"report": "上报"}


def _public_step(action: str) -> str:
    return BY_ACTION[action].label if action in BY_ACTION else _PUBLIC_STEPS.get(action, action)
