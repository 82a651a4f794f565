"""The command centre's desks and the case page: operator (受理), dispatcher (派遣), department
(处置), and one page per case whose buttons are the transition table's rows this user may take
now. Every write goes through `intake.receive()` or `cases.service.transition()`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from cityloop.cases import service as cases
from cityloop.cases.api import case_detail
from cityloop.cases.models import Case
from cityloop.cases.states import BY_ACTION, STATES, Transition, state_label
from cityloop.errors import DomainError, NotFound
from cityloop.intake.service import HOTLINES, SOURCES, STAFF, Report, receive, register_call
from cityloop.org.models import Department
from cityloop.web import photos, service
from cityloop.web.i18n import translate
from cityloop.web.page import FormDep, Page, StaffPageDep, text
from cityloop.web.schemas import (
    DANGER,
    FieldSpec,
    FormState,
    ReportForm,
    action_payload,
    field_for_error,
    fields_of,
    report_form,
    required,
)

router = APIRouter()

OPERATORS = frozenset({"operator", "shiftlead"})
DISPATCHERS = frozenset({"dispatcher", "shiftlead"})
HANDLERS = frozenset({"handler"})
# Sources a person at the centre registers by hand (calls, visits, the media, …).
# Devices (cameras, sensors) report by themselves, not through this form.
DESK_SOURCES = tuple(
    s for s, (_label, roles) in SOURCES.items() if roles >= STAFF and "device" not in roles
)
# A case registered from a hotline source is recorded as a call of that line too (R-IN-4).
LINE_OF_SOURCE = {source: line for line, source in HOTLINES.items()}


def _partial(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


# -- operator desk (受理) ------------------------------------------------------------------------
@router.get("/desk/accept")
def accept_desk(page: StaffPageDep, tab: str = "intake", source: str = "") -> Response:
    if not page.allowed(OPERATORS):
        return page.forbidden_role()
    db = page.db
    counts = service.intake_counts(db)
    tabs = {
        "intake": sum(counts.values()),
        "close": service.state_counts(db, ("check_reported",))["check_reported"],
        "visit": service.state_counts(db, ("closed",))["closed"],
    }
    today = service.local_day_bounds(page.now.astimezone(page.tz).date(), page.tz)
    tab = tab if tab in tabs else "intake"
    if tab == "intake":
        items = service.state_queue(db, service.INTAKE_STATES, source=source or None)
    elif tab == "close":
        items = service.state_queue(db, ("check_reported",))
    else:
        items = service.closed_without_visit(db)
    rows = service.case_rows(db, items, now=page.now, calendar=page.calendar, lang=page.lang)
    template = "desk_accept_list.html" if _partial(page.request) else "desk_accept.html"
    return page.render(
        template,
        tab=tab,
        tabs=tabs,
        source=source,
        counts=[(s, service.source_label(s, page.lang), n) for s, n in counts.items()],
        rows=rows,
        can=_can_map(page, items),
        calls_today=service.calls_count(db, *today),
    )


def _can_map(page: Page, items: list[Case]) -> dict[int, set[str]]:
    """For each listed case, the actions this user may take on it now (the inline buttons)."""
    return {
        c.id: {
            t.action
            for t in cases.allowed_actions(
                page.db, c, page.actor, now=page.now, calendar=page.calendar
            )
        }
        for c in items
    }


@router.get("/desk/accept/new")
def register_form(page: StaffPageDep, kind: str = "case") -> Response:
    if not page.allowed(OPERATORS):
        return page.forbidden_role()
    call_kind = "consultation" if kind == "consultation" else "case"
    return register_page(page, {"source": "hotline_12345"}, {}, call_kind=call_kind)


def register_page(
    page: Page, values: dict[str, str], errors: dict[str, str], status_code: int = 200, **extra: Any
) -> Response:
    extra.setdefault("call_kind", "case")
    extra.setdefault("consult", {"line": "12345"})
    extra.setdefault("consult_errors", {})
    return page.render(
        "register.html",
        status_code,
        values=values,
        errors=errors,
        sources=[(s, service.source_label(s, page.lang)) for s in DESK_SOURCES],
        lines=[(line, service.source_label(s, page.lang)) for line, s in HOTLINES.items()],
        classes=service.minor_classes(page.db, lang=page.lang),
        bounds=service.bounds_of(page.request.app.state.places()),
        **extra,
    )


@router.post("/desk/accept/new")
def register_case(page: StaffPageDep, form: FormDep) -> Response:
    """Register a problem phoned in, brought in person or seen in the media (R-IN-1, R-AC-1)."""
    if not page.allowed(OPERATORS):
        return page.forbidden_role()
    if not page.csrf_ok(form):
        return page.csrf_refused()
    typed = report_form(form, page.lang, needs_source=True, contact=True)
    if typed.values["source"] and typed.values["source"] not in DESK_SOURCES:
        typed.errors["source"] = translate("required", page.lang)
    line = LINE_OF_SOURCE.get(typed.values["source"])
    if line is not None and not typed.values["reporter_phone"]:
        typed.errors["reporter_phone"] = translate("required", page.lang)
    if typed.errors:
        return register_page(page, typed.values, typed.errors, 422)
    assert typed.lon is not None and typed.lat is not None
    try:
        if line is not None:
            case = _hotline_case(page, typed, line)
            if case is None:
                page.db.rollback()
                message = translate("outside_city", page.lang)
                return register_page(page, typed.values, {"location": message}, 422)
            return page.redirect(f"/case/{case.id}?done=registered")
        case, _created = receive(
            page.db,
            Report(
                source=typed.values["source"],
                class_code=typed.values["class_code"],
                description=typed.values["description"],
                lon=typed.lon,
                lat=typed.lat,
                urgency=typed.values["urgency"] or None,
                address=typed.values["address"] or None,
                reporter_name=typed.values["reporter_name"] or None,
                reporter_phone=typed.values["reporter_phone"] or None,
            ),
            actor=page.actor,
            places=page.request.app.state.places(),
            calendar=page.calendar,
            now=page.now,
        )
    except DomainError as exc:
        page.db.rollback()
        known = set(typed.values) | {"location"}
        return register_page(
            page,
            typed.values,
            {field_for_error(exc.field, known): exc.message},
            exc.status_code,
        )
    return page.redirect(f"/case/{case.id}?done=registered")


def _hotline_case(page: Page, typed: ReportForm, line: str) -> Case | None:
    """A complaint phoned in: the call and its case through the hotline desk's service, as
    `POST /api/v1/hotline/calls` makes them. None when the pin is not in any unit grid."""
    assert page.user is not None and typed.lon is not None and typed.lat is not None
    values = typed.values
    call = register_call(
        page.db,
        actor=page.actor,
        operator_id=page.user.id,
        line=line,
        kind="case",
        caller_phone=values["reporter_phone"],
        caller_name=values["reporter_name"] or None,
        text=values["description"],
        address=values["address"] or None,
        lon=typed.lon,
        lat=typed.lat,
        class_code=values["class_code"],
        urgency=values["urgency"] or None,
        answer=None,
        places=page.request.app.state.places(),
        calendar=page.calendar,
        now=page.now,
        gazetteer=None,
    )
    return cases.get_case(page.db, call.case_id) if call.case_id is not None else None


# -- dispatcher desk (派遣) ----------------------------------------------------------------------
DISPATCH_TABS = ("dispatch", "postpone", "review", "handling", "suspended")


@router.get("/desk/dispatch")
def dispatch_desk(page: StaffPageDep, tab: str = "dispatch") -> Response:
    if not page.allowed(DISPATCHERS):
        return page.forbidden_role()
    db = page.db
    counts = service.state_counts(
        db, (*service.TO_DISPATCH_STATES, "result_submitted", "dispatched", "suspended")
    )
    tabs = {
        "dispatch": sum(counts[s] for s in service.TO_DISPATCH_STATES),
        "postpone": service.postponement_count(db),
        "review": counts["result_submitted"],
        "handling": counts["dispatched"],
        "suspended": counts["suspended"],
    }
    tab = tab if tab in tabs else "dispatch"
    if tab == "dispatch":
        items = service.state_queue(db, service.TO_DISPATCH_STATES)
    elif tab == "postpone":
        items = service.postponement_queue(db)
    elif tab == "review":
        items = service.state_queue(db, ("result_submitted",))
    elif tab == "handling":
        items = service.state_queue(db, ("dispatched",))
    else:
        items = service.state_queue(db, ("suspended",))
    rows = service.case_rows(
        db, items, now=page.now, calendar=page.calendar, lang=page.lang, suggest=tab == "dispatch"
    )
    template = "desk_dispatch_list.html" if _partial(page.request) else "desk_dispatch.html"
    return page.render(
        template,
        tab=tab,
        tabs=tabs,
        rows=rows,
        can=_can_map(page, items),
        departments=service.all_departments(db) if tab == "dispatch" else [],
    )


# -- department desk (处置) ----------------------------------------------------------------------
@router.get("/desk/handle")
def handle_desk(page: StaffPageDep, tab: str = "todo") -> Response:
    if not page.allowed(HANDLERS):
        return page.forbidden_role()
    tab = tab if tab in ("todo", "submitted") else "todo"
    state = "dispatched" if tab == "todo" else "result_submitted"
    items, _total = service.department_queue(page.db, page.actor, state, now=page.now)
    _todo, todo_total = service.department_queue(
        page.db, page.actor, "dispatched", now=page.now, limit=1
    )
    _sub, sub_total = service.department_queue(
        page.db, page.actor, "result_submitted", now=page.now, limit=1
    )
    rows = service.case_rows(page.db, items, now=page.now, calendar=page.calendar, lang=page.lang)
    department = (
        page.db.get(Department, page.user.department_id)
        if page.user and page.user.department_id
        else None
    )
    template = "desk_handle_list.html" if _partial(page.request) else "desk_handle.html"
    return page.render(
        template,
        tab=tab,
        tabs={"todo": todo_total, "submitted": sub_total},
        rows=rows,
        department=department,
    )


# -- the case page -----------------------------------------------------------------------------
@dataclass
class ActionForm:
    row: Transition
    label: str
    fields: tuple[FieldSpec, ...]
    required: tuple[str, ...]
    state: FormState
    danger: bool


def _visible(page: Page, case_id: int) -> Case:
    case = cases.get_case(page.db, case_id)
    if not cases.can_see(page.db, page.actor, case):
        raise NotFound(f"case {case_id} not found")
    return case


DETAIL_KEYS = (
    "department_name",
    "reason",
    "note",
    "result",
    "days",
    "into_ticket",
    "comment",
)


def describe(payload: dict[str, Any], lang: str) -> str:
    """A timeline line's payload in words."""
    parts = []
    for key in DETAIL_KEYS:
        value = payload.get(key)
        if value not in (None, ""):
            parts.append(str(value))
    for key in ("confirmed", "passed"):
        if isinstance(payload.get(key), bool):
            parts.append(
                f"{translate(key, lang)}: {translate('yes' if payload[key] else 'no', lang)}"
            )
    if isinstance(payload.get("satisfied"), bool):
        parts.append(translate("satisfied" if payload["satisfied"] else "not_satisfied", lang))
    if payload.get("method"):
        parts.append(translate(f"method_{payload['method']}", lang))
    return "；".join(parts) if lang == "zh" else "; ".join(parts)


def case_page(
    page: Page,
    case: Case,
    *,
    state: FormState | None = None,
    status_code: int = 200,
    done: str = "",
) -> Response:
    db = page.db
    detail = case_detail(db, case, now=page.now, calendar=page.calendar, actor=page.actor)
    rows = cases.allowed_actions(db, case, page.actor, now=page.now, calendar=page.calendar)
    lower = (
        service.lower_departments(db, case.department_id)
        if any(r.action == "pass_down" for r in rows)
        else []
    )
    # Passing down needs a unit below: a department without sub-units gets no such button.
    rows = [r for r in rows if r.action != "pass_down" or lower]
    allowed = {r.action for r in rows}
    suggested = cases.suggested_department(db, case) if "dispatch" in allowed else None
    forms = []
    for row in rows:
        form_state = state if state is not None and state.form == row.action else None
        if form_state is None:
            form_state = FormState(form=row.action)
            if row.action == "dispatch" and suggested is not None:
                form_state.values["department_id"] = str(suggested.id)
        forms.append(
            ActionForm(
                row=row,
                label=row.label_en if page.lang == "en" else row.label,
                fields=fields_of(row.action),
                required=required(row.action),
                state=form_state,
                danger=row.action in DANGER,
            )
        )
    needs_departments = bool(allowed & {"dispatch", "assign_proxy"})
    events = cases.timeline(db, case.id)
    departments = service.department_names(db, {e.department_id for e in events})
    problem_class = service.problem_class(db, case.class_code)
    nearby = service.nearby_open_same_class(db, case) if "merge" in allowed else []
    return page.render(
        "case.html",
        status_code,
        case=case,
        detail=detail,
        class_name=service.class_label(problem_class, case.class_code, page.lang),
        source_name=service.source_label(case.source, page.lang),
        state_name=state_label(case.state, page.lang),
        forms=forms,
        top_error=state.error("_form") if state is not None else "",
        departments=service.all_departments(db) if needs_departments else [],
        lower=lower,
        suggested=suggested,
        nearby=nearby,
        nearby_points=[
            {"id": other.id, "lon": other.lon, "lat": other.lat, "ticket": other.ticket}
            for other, _distance in nearby
        ],
        photo_groups=service.photo_groups(events),
        timeline=[
            {
                "at": e.at,
                "actor": e.actor_name,
                "role": translate(f"role_{e.actor_role}", page.lang)
                if e.actor_role in ROLE_KEYS
                else e.actor_role,
                "action": service.action_label(e.action, page.lang),
                "from": state_label(e.from_state, page.lang) if e.from_state in STATES else "",
                "to": state_label(e.to_state, page.lang),
                "moved": e.from_state != e.to_state,
                "department": departments.get(e.department_id),
                "detail": describe(e.payload or {}, page.lang),
                "photos": [p for p in (e.photos or []) if isinstance(p, str)],
            }
            for e in events
        ],
        deadlines=[
            {**clock, "label": service.stage_label(clock["stage"], page.lang)}
            for clock in detail.model_dump()["deadlines"]
        ],
        done=done,
        stage_name=service.stage_label(case.stage, page.lang) if case.stage else "",
    )


ROLE_KEYS = frozenset(
    {
        "admin",
        "operator",
        "shiftlead",
        "dispatcher",
        "inspector",
        "handler",
        "leader",
        "system",
        "public",
        "partner",
        "device",
    }
)


@router.get("/case/{case_id}")
def show_case(case_id: int, page: StaffPageDep, done: str = "") -> Response:
    try:
        case = _visible(page, case_id)
    except NotFound as exc:
        return page.error(404, exc.message)
    return case_page(page, case, done=done)


@router.post("/case/{case_id}/act/{action}")
def take_action(case_id: int, action: str, page: StaffPageDep, form: FormDep) -> Response:
    """One row of the transition table, taken from a form (the case page's or a desk's)."""
    if not page.csrf_ok(form):
        return page.csrf_refused()
    try:
        case = _visible(page, case_id)
    except NotFound as exc:
        return page.error(404, exc.message)
    if action not in BY_ACTION:
        return page.error(404, f"unknown action {action}")
    payload, state, photo_fields = action_payload(action, form, page.lang)
    if not state.ok:
        return case_page(page, case, state=state, status_code=422)
    version = payload.pop("version", None)
    known = {spec.name for spec in fields_of(action)}
    try:
        for name in photo_fields:
            files = photos.uploads(form, name)
            if files:
                payload[name] = photos.store(
                    page.db,
                    page.settings,
                    files,
                    user_id=page.user.id if page.user else None,
                    now=page.now,
                    field=name,
                )
            elif name in required(action):
                state.errors[name] = translate("photo_input", page.lang)
        if not state.ok:
            page.db.rollback()
            return case_page(page, _visible(page, case_id), state=state, status_code=422)
        cases.transition(
            page.db,
            case.id,
            action,
            page.actor,
            payload,
            now=page.now,
            calendar=page.calendar,
            expected_version=version,
        )
    except DomainError as exc:
        page.db.rollback()
        state.errors[field_for_error(exc.field, known)] = exc.message
        case = _visible(page, case_id)
        return case_page(page, case, state=state, status_code=exc.status_code)
    target = text(form, "next")
    if target.startswith("/desk/") or target.startswith("/m/"):
        return page.redirect(target)
    return page.redirect(f"/case/{case.id}?done={action}")
