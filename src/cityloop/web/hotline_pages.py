"""The hotline desk in the console (R-IN-4): a consultation answered at once and recorded with
no case, and the list of a day's calls — consultations and complaints — for the operators,
and for leaders with the callers' names and numbers masked.

Calls are written by `intake.service.register_call`, the service behind
`POST /api/v1/hotline/calls` (a complaint registered on the desk from a hotline source goes
through it too, in `desks.register_case`); the list is read in `web.service.calls_between`.
"""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter
from fastapi.responses import Response

from cityloop.errors import DomainError
from cityloop.fleet.service import on_shift
from cityloop.intake.service import HOTLINES, register_call
from cityloop.kit.privacy import SEES_REPORTER_CONTACT, mask_name, mask_phone
from cityloop.privacy.service import record_call_views
from cityloop.web import service
from cityloop.web.desks import OPERATORS, register_page
from cityloop.web.page import FormDep, Page, StaffPageDep, text
from cityloop.web.schemas import field_for_error, valid_phone

router = APIRouter()

# Who reads the list of calls: the hotline desk, and leaders supervising it (masked).
CALL_READERS = OPERATORS | {"leader"}
CONSULT_FIELDS = ("line", "caller_name", "caller_phone", "text", "answer")
MAX_LENGTH = {"caller_name": 40, "caller_phone": 30, "text": 2000, "answer": 2000}


@router.post("/desk/accept/consult")
def register_consultation(page: StaffPageDep, form: FormDep) -> Response:
    """A call that only asks something: answered on the phone, recorded, no case (R-IN-4)."""
    if not page.allowed(OPERATORS):
        return page.forbidden_role()
    if not page.csrf_ok(form):
        return page.csrf_refused()
    values = {name: text(form, name) for name in CONSULT_FIELDS}
    errors: dict[str, str] = {}
    if values["line"] not in HOTLINES:
        errors["line"] = page.t("choose_from_list")
    for name in ("caller_phone", "text", "answer"):
        if not values[name]:
            errors[name] = page.t("required")
    for name, limit in MAX_LENGTH.items():
        if len(values[name]) > limit:
            errors[name] = page.t("too_long").replace("{n}", str(limit))
    if "caller_phone" not in errors and not valid_phone(values["caller_phone"]):
        errors["caller_phone"] = page.t("phone_invalid")
    if errors:
        return _consult_page(page, values, errors, 422)
    assert page.user is not None
    try:
        call = register_call(
            page.db,
            actor=page.actor,
            operator_id=page.user.id,
            line=values["line"],
            kind="consultation",
            caller_phone=values["caller_phone"],
            caller_name=values["caller_name"] or None,
            text=values["text"],
            address=None,
            lon=None,
            lat=None,
            class_code=None,
            urgency=None,
            answer=values["answer"],
            places=page.request.app.state.places(),
            calendar=page.calendar,
            now=page.now,
            gazetteer=None,
        )
    except DomainError as exc:
        page.db.rollback()
        where = field_for_error(exc.field, set(CONSULT_FIELDS))
        return _consult_page(page, values, {where: exc.message}, exc.status_code)
    return page.redirect(f"/desk/calls?done=consultation&call={call.id}")


def _consult_page(
    page: Page, values: dict[str, str], errors: dict[str, str], status_code: int
) -> Response:
    return register_page(
        page,
        {"source": "hotline_12345"},
        {},
        status_code,
        call_kind="consultation",
        consult=values,
        consult_errors=errors,
    )


@router.get("/desk/calls")
def calls_page(page: StaffPageDep, day: str = "", done: str = "", call: str = "") -> Response:
    """The calls of one day (today by default), newest first."""
    if not page.allowed(CALL_READERS):
        return page.forbidden_role()
    today = page.now.astimezone(page.tz).date()
    errors: dict[str, str] = {}
    try:
        chosen = date.fromisoformat(day) if day else today
    except ValueError:
        errors["day"] = page.t("period_invalid_day")
        chosen = today
    start, end = service.local_day_bounds(chosen, page.tz)
    rows = [] if errors else service.calls_between(page.db, start, end)
    sees_contact = page.role in SEES_REPORTER_CONTACT
    if sees_contact:
        record_call_views(page.db, page.actor, [row.call for row in rows], now=page.now)
    lines = {line: service.source_label(source, page.lang) for line, source in HOTLINES.items()}
    calls = [
        {
            "id": row.call.id,
            "at": row.call.created_at,
            "line": lines.get(row.call.line, row.call.line),
            "kind": row.call.kind,
            "status": row.call.status,
            "caller_name": row.call.caller_name
            if sees_contact
            else mask_name(row.call.caller_name),
            "caller_phone": row.call.caller_phone
            if sees_contact
            else mask_phone(row.call.caller_phone),
            "text": row.call.text,
            "answer": row.call.answer,
            "case_id": row.call.case_id,
            "ticket": row.ticket,
            "operator": row.operator,
        }
        for row in rows
    ]
    return page.render(
        "desk_calls.html",
        422 if errors else 200,
        calls=calls,
        day=day if errors else chosen.isoformat(),
        is_today=chosen == today,
        errors=errors,
        counts={
            "consultation": sum(1 for c in calls if c["kind"] == "consultation"),
            "case": sum(1 for c in calls if c["kind"] == "case"),
        },
        done=done,
        new_call=call,
        desk=page.allowed(OPERATORS),
        on_shift=[u.display_name for _s, u in on_shift(page.db, "hotline", page.now)],
    )
