"""Pages for phones: the inspector's app (城管通) and the citizen's H5 page.

The inspector's report form is sent by `static/js/outbox.js`: each report gets an idempotency
key when it is made, waits in the browser (IndexedDB) while there is no signal, and is sent
when the network is back; the key makes a repeated send return the same case (exactly once).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from cityloop.cases.api import track_ticket
from cityloop.cases.service import PUBLIC, find_by_idempotency_key
from cityloop.errors import DomainError, NotFound
from cityloop.fleet.service import duty_of
from cityloop.intake.service import (
    Report,
    check_citizen_quota,
    rate_by_ticket,
    receive,
    report_fingerprint,
    sender_key,
    spend_anonymous_budget,
)
from cityloop.web import photos, service
from cityloop.web.i18n import translate
from cityloop.web.page import FormDep, Page, PageDep, StaffPageDep, text
from cityloop.web.schemas import field_for_error, report_form

router = APIRouter()

INSPECTORS = frozenset({"inspector"})
# The H5 page is the citizens' web channel; a reporter is known by a mobile number.
CITIZEN_SOURCE = "web"
MOBILE = re.compile(r"1\d{10}")
KEY_FIELD = "idempotency_key"


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


# -- inspector app (城管通) -----------------------------------------------------------------------
@router.get("/m/inspector")
def inspector_app(page: StaffPageDep, tab: str = "report", sent: str = "") -> Response:
    if not page.allowed(INSPECTORS):
        return page.forbidden_role()
    return _inspector_page(page, tab=tab, sent=sent)


def _inspector_page(
    page: Page,
    *,
    tab: str = "report",
    sent: str = "",
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    tab = tab if tab in ("report", "tasks") else "report"
    verify = service.grid_tasks(page.db, page.actor, "verifying", now=page.now)
    check = service.grid_tasks(page.db, page.actor, "checking", now=page.now)
    rows = {
        "verify": service.case_rows(
            page.db, verify, now=page.now, calendar=page.calendar, lang=page.lang
        ),
        "check": service.case_rows(
            page.db, check, now=page.now, calendar=page.calendar, lang=page.lang
        ),
    }
    return page.render(
        "m_inspector.html",
        status_code,
        tab=tab,
        sent=sent,
        values=values or {},
        errors=errors or {},
        key=(values or {}).get(KEY_FIELD) or uuid.uuid4().hex,
        classes=service.minor_classes(page.db, lang=page.lang),
        tasks=rows,
        task_points=[
            {"id": r.case.id, "lon": r.case.lon, "lat": r.case.lat, "ticket": r.case.ticket}
            for r in rows["verify"] + rows["check"]
        ],
        bounds=service.bounds_of(page.request.app.state.places()),
        grids=", ".join(page.user.grid_codes or []) if page.user else "",
        duty=duty_of(page.db, page.user.id) if page.user else "off",
    )


@router.post("/m/inspector/report")
def inspector_report(page: StaffPageDep, form: FormDep) -> Response:
    """An inspector's report from the phone (R-IN-2), with photos and an optional voice note
    recorded in the page: sent by the outbox with its idempotency key, so a report queued
    offline and sent twice makes one case."""
    as_json = _wants_json(page.request)
    if not page.allowed(INSPECTORS):
        return _json_error(403, page.t("forbidden_role")) if as_json else page.forbidden_role()
    if not page.csrf_ok(form):
        return _json_error(403, page.t("csrf_failed")) if as_json else page.csrf_refused()
    key = page.request.headers.get("idempotency-key") or text(form, KEY_FIELD)
    typed = report_form(form, page.lang)
    typed.values[KEY_FIELD] = key
    if len(key) > 100:
        typed.errors["_form"] = "idempotency key too long"
    if typed.errors:
        if as_json:
            return JSONResponse({"errors": typed.errors}, status_code=422)
        return _inspector_page(page, values=typed.values, errors=typed.errors, status_code=422)
    assert typed.lon is not None and typed.lat is not None
    try:
        ids = photos.store(
            page.db,
            page.settings,
            photos.uploads(form, "photos"),
            user_id=page.user.id if page.user else None,
            now=page.now,
        )
        voice = photos.store_voice(
            page.db,
            page.settings,
            next(iter(photos.uploads(form, "voice")), None),
            user_id=page.user.id if page.user else None,
            now=page.now,
        )
        case, created = receive(
            page.db,
            Report(
                source="inspector",
                class_code=typed.values["class_code"],
                description=typed.values["description"],
                lon=typed.lon,
                lat=typed.lat,
                urgency=typed.values["urgency"] or None,
                address=typed.values["address"] or None,
                photos=ids,
                voice=voice,
            ),
            actor=page.actor,
            places=page.request.app.state.places(),
            calendar=page.calendar,
            now=page.now,
            idempotency_key=sender_key(page.actor, key) if key else None,
        )
    except DomainError as exc:
        page.db.rollback()
        known = set(typed.values) | {"location", "photos", "voice"}
        errors = {field_for_error(exc.field, known): exc.message}
        if as_json:
            return JSONResponse({"errors": errors}, status_code=exc.status_code)
        return _inspector_page(
            page, values=typed.values, errors=errors, status_code=exc.status_code
        )
    result = {"id": case.id, "ticket": case.ticket, "state": case.state, "created": created}
    if not created:
        # A replay: the case exists already; drop the photos this second send brought along.
        page.db.rollback()
    if as_json:
        return page.finish(JSONResponse(result, status_code=201 if created else 200))
    return page.redirect(f"/m/inspector?sent={result['ticket']}")


def _json_error(status_code: int, message: str) -> JSONResponse:
    return JSONResponse({"errors": {"_form": message}}, status_code=status_code)


# -- citizen H5 (市民随手拍) -----------------------------------------------------------------
@router.get("/h5")
def citizen_home(page: PageDep) -> Response:
    return page.render("h5_home.html", values={}, errors={})


def _citizen_form(
    page: Page, values: dict[str, str], errors: dict[str, str], status_code: int = 200
) -> Response:
    return page.render(
        "h5_report.html",
        status_code,
        values=values,
        errors=errors,
        key=values.get(KEY_FIELD) or uuid.uuid4().hex,
        classes=service.minor_classes(page.db, lang=page.lang),
        bounds=service.bounds_of(page.request.app.state.places()),
    )


@router.get("/h5/report")
def citizen_report_form(page: PageDep) -> Response:
    return _citizen_form(page, {}, {})


@router.post("/h5/report")
def citizen_report(page: PageDep, form: FormDep) -> Response:
    """A citizen's report with a map pin and photos (R-IN-3), under the citizens' channel's
    rules (a mobile number, a quota per number); the answer is a ticket to follow it."""
    if not page.csrf_ok(form):
        return page.csrf_refused()
    typed = report_form(form, page.lang, contact=True)
    key = text(form, KEY_FIELD)[:100]
    typed.values[KEY_FIELD] = key
    phone = typed.values["reporter_phone"]
    if not MOBILE.fullmatch(phone):
        typed.errors["reporter_phone"] = translate("mobile_invalid", page.lang)
    if typed.errors:
        return _citizen_form(page, typed.values, typed.errors, 422)
    assert typed.lon is not None and typed.lat is not None
    try:
        files = photos.uploads(form, "photos")
        contents = [photos.peek(f, page.settings) for f in files]
        if not (key and find_by_idempotency_key(page.db, f"{CITIZEN_SOURCE}:{key}")):
            client = page.request.client.host if page.request.client else "unknown"
            spend_anonymous_budget(page.db, page.settings, client, contents, page.now)
        check_citizen_quota(page.db, phone, page.now)
        ids = photos.store(page.db, page.settings, files, user_id=None, now=page.now)
        report = Report(
            source=CITIZEN_SOURCE,
            class_code=typed.values["class_code"],
            description=typed.values["description"],
            lon=typed.lon,
            lat=typed.lat,
            address=typed.values["address"] or None,
            reporter_name=typed.values["reporter_name"] or None,
            reporter_phone=phone,
        )
        case, created = receive(
            page.db,
            replace(report, photos=ids),
            actor=PUBLIC,
            places=page.request.app.state.places(),
            calendar=page.calendar,
            now=page.now,
            idempotency_key=key or None,
            fingerprint=report_fingerprint(report, contents) if key else None,
        )
    except DomainError as exc:
        page.db.rollback()
        known = set(typed.values) | {"location", "photos"}
        field = "reporter_phone" if exc.field == "phone" else exc.field
        return _citizen_form(
            page, typed.values, {field_for_error(field, known): exc.message}, exc.status_code
        )
    ticket = case.ticket
    if not created:
        page.db.rollback()  # the form was sent twice: keep the first report, not these photos
    return page.redirect(f"/h5/track?ticket={ticket}&new=1")


@router.get("/h5/track")
def citizen_track(page: PageDep, ticket: str = "", new: str = "", rated: str = "") -> Response:
    return _track_page(page, ticket, new=bool(new), rated=bool(rated))


def _track_page(
    page: Page,
    ticket: str,
    *,
    new: bool = False,
    rated: bool = False,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    ticket = ticket.strip().upper()[:20]
    errors = dict(errors or {})
    progress = None
    if ticket:
        try:
            progress = track_ticket(ticket, page.db)
        except NotFound:
            errors.setdefault("ticket", translate("ticket_not_found", page.lang))
            if status_code == 200:
                status_code = 404
    return page.render(
        "h5_track.html",
        status_code,
        ticket=ticket,
        progress=progress,
        new=new,
        rated=rated,
        errors=errors,
        values=values or {},
    )


@router.post("/h5/rate")
def citizen_rate(page: PageDep, form: FormDep) -> Response:
    """The reporter rates the result of the closed case (R-CL-4): satisfied archives it, not
    satisfied reopens it (the citizens' channel's rule: the ticket and the reporter's number)."""
    if not page.csrf_ok(form):
        return page.csrf_refused()
    ticket = text(form, "ticket").upper()[:20]
    values = {
        "satisfied": text(form, "satisfied"),
        "phone": text(form, "phone"),
        "comment": text(form, "comment"),
    }
    errors = {}
    if values["satisfied"] not in ("yes", "no"):
        errors["satisfied"] = translate("rate_result", page.lang)
    if not MOBILE.fullmatch(values["phone"]):
        errors["phone"] = translate("mobile_invalid", page.lang)
    if len(values["comment"]) > 500:
        errors["comment"] = "At most 500 characters" if page.lang == "en" else "最多500字"
    if errors:
        return _track_page(page, ticket, errors=errors, values=values, status_code=422)
    try:
        rate_by_ticket(
            page.db,
            ticket,
            phone=values["phone"],
            satisfied=values["satisfied"] == "yes",
            comment=values["comment"] or None,
            calendar=page.calendar,
            now=page.now,
        )
    except DomainError as exc:
        page.db.rollback()
        field = "phone" if isinstance(exc, NotFound) else "satisfied"
        return _track_page(
            page, ticket, errors={field: exc.message}, values=values, status_code=exc.status_code
        )
    return page.redirect(f"/h5/track?ticket={ticket}&rated=1")
