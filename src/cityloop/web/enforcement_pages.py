"""Pages of enforcement: the officer's phone app 执法通 (`/m/officer`) and the public list of
penalty decisions (`/penalties`, 执法公示, no login).

The phone's on-site form is sent by `static/js/outbox.js` like the inspector's report: it gets
an idempotency key when made, waits in the browser while there is no signal, and a repeated
send returns the same enforcement case (exactly once).
"""

from __future__ import annotations

import uuid
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from cityloop.documents import service as documents
from cityloop.enforcement import service
from cityloop.enforcement.states import TABLE
from cityloop.errors import DomainError, NotFound
from cityloop.kit.privacy import mask_name
from cityloop.web import photos
from cityloop.web.page import FormDep, PageDep, StaffPageDep, text

router = APIRouter()

OFFICERS = frozenset({"officer", "enforcement_chief", "legal_reviewer"})
KEY_FIELD = "idempotency_key"
FIELDS = (
    "violation_code",
    "party_kind",
    "party_name",
    "id_number",
    "credit_code",
    "party_address",
    "facts",
    "address",
    "record_kind",
    "record_text",
    "tier",
)


@router.get("/m/officer")
def officer_app(page: StaffPageDep, tab: str = "cases") -> Response:
    if not page.allowed(OFFICERS):
        return page.forbidden_role()
    tab = tab if tab in ("cases", "onsite") else "cases"
    cases = service.squad_cases(page.db, page.actor)
    rows = []
    for record in cases:
        view = service.case_view(page.db, record, now=page.now, calendar=page.calendar)
        rows.append(
            {
                "record": record,
                "state": TABLE.state_label(record.state, page.lang),
                "violation": view.violation.name,
                "party": view.party.name,
                "due": view.deadlines[0] if view.deadlines else None,
                "documents": service.documents(page.db, record.id),
            }
        )
    return page.render(
        "m_officer.html",
        tab=tab,
        rows=rows,
        key=uuid.uuid4().hex,
        violations=service.all_violations(page.db),
        officers=service.squad_officers(page.db, page.actor),
        bounds=service_bounds(page),
    )


def service_bounds(page: PageDep) -> object:
    from cityloop.web.service import bounds_of

    return bounds_of(page.request.app.state.places())


@router.post("/m/officer/onsite")
def officer_onsite(page: StaffPageDep, form: FormDep) -> Response:
    """An on-site case from the phone: party, evidence with the second officer, and the
    simple-procedure decision when asked; JSON for the outbox."""
    if not page.allowed(OFFICERS):
        return JSONResponse({"errors": {"_form": page.t("forbidden_role")}}, status_code=403)
    if not page.csrf_ok(form):
        return JSONResponse({"errors": {"_form": page.t("csrf_failed")}}, status_code=403)
    sent_key = page.request.headers.get("idempotency-key") or text(form, KEY_FIELD)
    # Keys are the phone's own: scoped by the account, so two officers' keys never meet.
    key = f"{page.user.id if page.user else 0}:{sent_key}" if sent_key else ""
    data: dict[str, object] = {name: text(form, name) for name in FIELDS}
    errors: dict[str, str] = {}
    for name in ("lon", "lat", "fine"):
        raw = text(form, name)
        try:
            data[name] = float(raw) if raw else None
        except ValueError:
            errors[name] = f"{name} must be a number"
    second = text(form, "second_officer_id")
    data["second_officer_id"] = int(second) if second.isdigit() else None
    data["decide"] = text(form, "decide") in ("1", "on", "true")
    if errors:
        return JSONResponse({"errors": errors}, status_code=422)
    existing = service.find_by_key(page.db, key) if key else None
    if existing is not None:
        return page.finish(JSONResponse(_answer(page, existing), status_code=200))
    try:
        ids = photos.store(
            page.db,
            page.settings,
            photos.uploads(form, "photos"),
            user_id=page.user.id if page.user else None,
            now=page.now,
        )
        record, _ = service.on_site(
            page.db,
            data,
            page.actor,
            key=key,
            photos=ids,
            now=page.now,
            calendar=page.calendar,
            secret=page.settings.secret_key,
        )
    except DomainError as exc:
        page.db.rollback()
        return JSONResponse(
            {"errors": {exc.field or "_form": exc.message}},
            status_code=exc.status_code if exc.status_code != 409 else 422,
        )
    return page.finish(JSONResponse(_answer(page, record), status_code=201))


def _answer(page: PageDep, record: object) -> dict[str, object]:
    assert isinstance(record, service.EnforcementCase)
    docs = service.documents(page.db, record.id)
    return {
        "id": record.id,
        "state": record.state,
        "ticket": docs[-1]["number"] if docs else f"#{record.id}",
        "documents": [f"/m/officer/documents/{d['id']}.pdf" for d in docs],
    }


@router.get("/m/officer/documents/{document_id}.pdf")
def officer_document(document_id: int, page: StaffPageDep) -> Response:
    """The PDF on the phone, to print or share (the session cookie, not a bearer token)."""
    document = documents.get_document(page.db, document_id)
    assert page.user is not None
    documents.check_can_read(page.db, page.user, document.subject_type, document.subject_id)
    data = documents.document_pdf(page.db, document_id)
    return Response(
        data,
        media_type="application/pdf",
        # A header is Latin-1: the number's Chinese goes as RFC 5987 filename*.
        headers={
            "Content-Disposition": f'inline; filename="document-{document.id}.pdf"; '
            f"filename*=UTF-8''{quote(document.number)}.pdf"
        },
    )


@router.get("/enforcement/{case_id}")
def enforcement_case_page(case_id: int, page: StaffPageDep) -> Response:
    """An enforcement case for the staff who may see it: state, deadlines, documents and the
    hash-chained timeline; one click back to the case it came from."""
    if not page.allowed(OFFICERS | {"leader"}):
        return page.forbidden_role()
    record = service.get_enforcement_case(page.db, case_id)
    if not service.can_see(page.db, page.actor, record):
        raise NotFound(f"enforcement case {case_id} not found")
    view = service.case_view(page.db, record, now=page.now, calendar=page.calendar)
    return page.render(
        "enforcement_case.html",
        record=record,
        state=TABLE.state_label(record.state, page.lang),
        view=view,
        documents=service.documents(page.db, record.id),
        events=service.timeline(page.db, record.id),
        labels={t.action: t.label for t in TABLE.transitions},
    )


@router.get("/penalties")
def public_penalties(page: PageDep, p: int = 1) -> Response:
    """执法公示: decided and delivered penalties, a person's name masked, no ID numbers."""
    p = max(1, min(p, 10_000))
    rows, total = service.public_penalties(page.db, page=p, page_size=20)
    items = [
        {
            "id": record.id,
            "party": (mask_name(party.name) or "") if party.kind == "person" else party.name,
            "violation": violation.name,
            "basis": service.basis_label(page.db, violation.penalty_article_id),
            "penalty": service._penalty_text(record),
            "delivered_at": record.delivered_at,
        }
        for record, party, violation in rows
    ]
    return page.render("penalties.html", items=items, total=total, p=p, pages=(total + 19) // 20)
