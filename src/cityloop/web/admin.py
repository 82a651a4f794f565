"""Administration: the home page, the problem classes with their filing and closure standards
and command manual (R-DX-2, R-AC-5), and the working calendar's local overrides (R-DIS-5).
Writes go through `taxonomy.service`. Also what every admin page shares (`admin_org`,
`admin_devices`, `admin_places`): the admin-only guard and a domain error under its field."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.datastructures import FormData

from cityloop.errors import DomainError, NotFound
from cityloop.taxonomy import service as taxonomy
from cityloop.taxonomy.models import ProblemClass
from cityloop.web.i18n import translate
from cityloop.web.page import FormDep, Page, StaffPageDep, text

router = APIRouter()

ADMINS: frozenset[str] = frozenset()  # admin only (Page.allowed always lets admin in)
TEXT_FIELDS = ("filing_standard", "closure_standard", "manual")


def guard(page: Page, form: FormData | None = None) -> Response | None:
    """The refusal for anyone but an administrator (and for a form without the session's
    token), or None when the request may go on."""
    if not page.allowed(ADMINS):
        return page.forbidden_role()
    if form is not None and not page.csrf_ok(form):
        return page.csrf_refused()
    return None


def error_of(exc: DomainError, known: Iterable[str]) -> dict[str, str]:
    """The service's message under the field it names (on top of the form when the page has
    no such field)."""
    field = exc.field if exc.field in set(known) else "_form"
    return {field: exc.message}


@router.get("/admin")
def admin_home(page: StaffPageDep) -> Response:
    refused = guard(page)
    if refused:
        return refused
    return page.render("admin_home.html")


@router.get("/admin/classes")
def class_list(page: StaffPageDep, kind: str = "", q: str = "") -> Response:
    refused = guard(page)
    if refused:
        return refused
    rows = taxonomy.list_classes(page.db, kind=kind if kind in ("component", "event") else None)
    wanted = q.strip().lower()
    if wanted:
        rows = [
            r
            for r in rows
            if wanted in r.code or wanted in r.name.lower() or wanted in (r.name_en or "").lower()
        ]
    return page.render("admin_classes.html", rows=rows, kind=kind, q=q)


def _class_page(
    page: Page,
    code: str,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    saved: bool = False,
) -> Response:
    problem_class = _get(page, code)
    if problem_class is None:
        return page.error(404, f"problem class {code} not found")
    days = problem_class.handling_days or {}
    current = {
        "name_en": problem_class.name_en or "",
        "default_urgency": problem_class.default_urgency,
        "filing_standard": problem_class.filing_standard,
        "closure_standard": problem_class.closure_standard,
        "manual": problem_class.manual,
        "active": "yes" if problem_class.active else "no",
        **{f"days_{u}": _number(days.get(u, {"A": 1, "B": 2, "C": 4}[u])) for u in "ABC"},
    }
    return page.render(
        "admin_class.html",
        status_code,
        row=problem_class,
        values={**current, **(values or {})},
        errors=errors or {},
        saved=saved,
    )


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _get(page: Page, code: str) -> ProblemClass | None:
    return page.db.get(ProblemClass, code)


@router.get("/admin/classes/{code}")
def class_form(code: str, page: StaffPageDep, saved: str = "") -> Response:
    refused = guard(page)
    if refused:
        return refused
    return _class_page(page, code, saved=bool(saved))


@router.post("/admin/classes/{code}")
def class_save(code: str, page: StaffPageDep, form: FormDep) -> Response:
    refused = guard(page, form)
    if refused:
        return refused
    values = {name: text(form, name) for name in (*TEXT_FIELDS, "name_en", "default_urgency")}
    values["active"] = "yes" if text(form, "active") == "yes" else "no"
    errors: dict[str, str] = {}
    days: dict[str, float] = {}
    for urgency in "ABC":
        raw = text(form, f"days_{urgency}")
        values[f"days_{urgency}"] = raw
        try:
            number = float(raw)
            if not 0 < number <= 365:
                raise ValueError
            days[urgency] = number
        except ValueError:
            errors[f"days_{urgency}"] = (
                "A number of working days above 0" if page.lang == "en" else "请输入大于0的工作日数"
            )
    for name in TEXT_FIELDS:
        if len(values[name]) > 4000:
            errors[name] = "At most 4000 characters" if page.lang == "en" else "最多4000字"
    if errors:
        return _class_page(page, code, values, errors, 422)
    changes = {
        **{name: values[name] for name in TEXT_FIELDS},
        "name_en": values["name_en"] or None,
        "default_urgency": values["default_urgency"],
        "handling_days": days,
        "active": values["active"] == "yes",
    }
    try:
        taxonomy.update_class(page.db, code, changes)
    except NotFound as exc:
        page.db.rollback()
        return page.error(404, exc.message)
    except DomainError as exc:
        page.db.rollback()
        return _class_page(page, code, values, error_of(exc, values), exc.status_code)
    return page.redirect(f"/admin/classes/{code}?saved=1")


def _calendar_page(
    page: Page,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return page.render(
        "admin_calendar.html",
        status_code,
        overrides=taxonomy.calendar_overrides(page.db),
        values=values or {"is_workday": "no"},
        errors=errors or {},
    )


@router.get("/admin/calendar")
def calendar_list(page: StaffPageDep) -> Response:
    refused = guard(page)
    if refused:
        return refused
    return _calendar_page(page)


@router.post("/admin/calendar")
def calendar_save(page: StaffPageDep, form: FormDep) -> Response:
    refused = guard(page, form)
    if refused:
        return refused
    values = {
        "day": text(form, "day"),
        "is_workday": text(form, "is_workday"),
        "note": text(form, "note"),
    }
    errors: dict[str, str] = {}
    day = None
    try:
        day = date.fromisoformat(values["day"])
    except ValueError:
        errors["day"] = (
            "A date like 2027-01-04" if page.lang == "en" else "请输入日期，如 2027-01-04"
        )
    if values["is_workday"] not in ("yes", "no"):
        errors["is_workday"] = translate("required", page.lang)
    if len(values["note"]) > 100:
        errors["note"] = "At most 100 characters" if page.lang == "en" else "最多100字"
    if errors or day is None:
        return _calendar_page(page, values, errors, 422)
    taxonomy.set_calendar_override(page.db, day, values["is_workday"] == "yes", values["note"])
    return page.redirect("/admin/calendar")
