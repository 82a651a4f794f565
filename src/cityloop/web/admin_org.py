"""Administration of the organisation: departments (a tree: create, rename, move), users
(create with role, department and grid scope; reset the password; disable), responsibility
rules (class × region → department, with auto-dispatch) and partner platforms with their API
keys (shown once, revoked). Every write goes through the owning package's service
(`org.service`, `partners.service`), the same functions the JSON API calls.

Also the form readers the admin pages share: numbers and ids from a form (the guard and the
error placement are in `admin`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.datastructures import FormData

from cityloop.errors import DomainError, NotFound
from cityloop.intake.service import SOURCES
from cityloop.org import service as org
from cityloop.org.models import Department, ResponsibilityRule, User
from cityloop.partners import service as partners
from cityloop.partners.hooks import PARTNER_SOURCES
from cityloop.partners.models import Partner
from cityloop.taxonomy.service import list_classes
from cityloop.web import service
from cityloop.web.admin import error_of, guard
from cityloop.web.i18n import translate
from cityloop.web.page import FormDep, Page, StaffPageDep, text

router = APIRouter()


# -- shared helpers ----------------------------------------------------------------------------
def read_id(
    form: FormData, name: str, values: dict[str, str], errors: dict[str, str], lang: str
) -> int | None:
    """An optional id from a <select>: empty is None; anything else must be a whole number."""
    raw = text(form, name)
    values[name] = raw
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        errors[name] = translate("invalid_choice", lang)
        return None


def read_number(
    raw: str, name: str, errors: dict[str, str], lang: str, *, required: bool = True
) -> float | None:
    if not raw:
        if required:
            errors[name] = translate("required", lang)
        return None
    try:
        number = float(raw)
    except ValueError:
        errors[name] = translate("number_required", lang)
        return None
    if number != number or number in (float("inf"), float("-inf")):
        errors[name] = translate("number_required", lang)
        return None
    return number


def read_whole(raw: str, name: str, errors: dict[str, str], lang: str) -> int | None:
    number = read_number(raw, name, errors, lang)
    if number is None:
        return None
    if not number.is_integer():
        errors[name] = translate("whole_number_required", lang)
        return None
    return int(number)


def department_options(page: Page) -> list[tuple[int, str]]:
    """Every department for a <select>, indented under its parent."""
    return [(d.id, "　" * depth + d.name) for d, depth in org.department_tree(page.db)]


def _kind_options(lang: str) -> list[tuple[str, str]]:
    return [(k, translate(f"dept_kind_{k}", lang)) for k in org.DEPARTMENT_KINDS]


def _role_options(lang: str) -> list[tuple[str, str]]:
    return [(r, translate(f"role_{r}", lang)) for r in org.ROLES]


# -- departments -------------------------------------------------------------------------------
DEPARTMENT_FIELDS = ("code", "name", "kind", "parent_id", "region_code", "phone")


def _departments_page(
    page: Page,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    tree = org.department_tree(page.db)
    regions = service.region_names(page.db, {d.region_code for d, _ in tree})
    return page.render(
        "admin_departments.html",
        status_code,
        tree=tree,
        regions=regions,
        kinds=dict(_kind_options(page.lang)),
        kind_options=_kind_options(page.lang),
        parents=[(d.id, "　" * depth + d.name) for d, depth in tree],
        values=values or {},
        errors=errors or {},
    )


@router.get("/admin/departments")
def department_list(page: StaffPageDep) -> Response:
    return guard(page) or _departments_page(page)


def _department_form(
    form: FormData, lang: str
) -> tuple[dict[str, str], dict[str, str], int | None]:
    values = {name: text(form, name) for name in DEPARTMENT_FIELDS}
    errors: dict[str, str] = {}
    parent_id = read_id(form, "parent_id", values, errors, lang)
    return values, errors, parent_id


@router.post("/admin/departments")
def department_create(page: StaffPageDep, form: FormDep) -> Response:
    refused = guard(page, form)
    if refused:
        return refused
    values, errors, parent_id = _department_form(form, page.lang)
    if errors:
        return _departments_page(page, values, errors, 422)
    try:
        department = org.create_department(
            page.db,
            code=values["code"],
            name=values["name"],
            kind=values["kind"],
            parent_id=parent_id,
            region_code=values["region_code"] or None,
            phone=values["phone"] or None,
        )
    except DomainError as exc:
        page.db.rollback()
        return _departments_page(page, values, error_of(exc, values), exc.status_code)
    return page.redirect(f"/admin/departments/{department.id}?saved=1")


def _department_page(
    page: Page,
    department: Department,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    saved: bool = False,
) -> Response:
    current = {
        "name": department.name,
        "kind": department.kind,
        "parent_id": str(department.parent_id or ""),
        "region_code": department.region_code or "",
        "phone": department.phone or "",
    }
    below = org.descendant_ids(page.db, department.id)
    rules = [r for r in org.list_rules(page.db) if r.department_id == department.id]
    return page.render(
        "admin_department.html",
        status_code,
        row=department,
        values={**current, **(values or {})},
        errors=errors or {},
        saved=saved,
        kind_options=_kind_options(page.lang),
        # Not under itself nor under its own sub-units: the service refuses those moves too.
        parents=[(i, label) for i, label in department_options(page) if i not in below],
        users=[u for u in org.list_users(page.db) if u.department_id == department.id],
        rules=rules,
        region=service.region_names(page.db, {department.region_code}).get(department.region_code),
    )


def _department(page: Page, department_id: int) -> Department | None:
    return page.db.get(Department, department_id)


@router.get("/admin/departments/{department_id}")
def department_form(department_id: int, page: StaffPageDep, saved: str = "") -> Response:
    refused = guard(page)
    if refused:
        return refused
    department = _department(page, department_id)
    if department is None:
        return page.error(404, f"department {department_id} not found")
    return _department_page(page, department, saved=bool(saved))


@router.post("/admin/departments/{department_id}")
def department_save(department_id: int, page: StaffPageDep, form: FormDep) -> Response:
    refused = guard(page, form)
    if refused:
        return refused
    department = _department(page, department_id)
    if department is None:
        return page.error(404, f"department {department_id} not found")
    values, errors, parent_id = _department_form(form, page.lang)
    if errors:
        return _department_page(page, department, values, errors, 422)
    try:
        org.update_department(
            page.db,
            department_id,
            {
                "name": values["name"],
                "kind": values["kind"],
                "parent_id": parent_id,
                "region_code": values["region_code"] or None,
                "phone": values["phone"] or None,
            },
        )
    except DomainError as exc:
        page.db.rollback()
        department = _department(page, department_id)
        assert department is not None
        return _department_page(page, department, values, error_of(exc, values), exc.status_code)
    return page.redirect(f"/admin/departments/{department_id}?saved=1")


# -- users -------------------------------------------------------------------------------------
USER_FIELDS = ("username", "display_name", "role", "department_id", "grid_codes", "phone")


def _users_page(
    page: Page,
    *,
    role: str = "",
    q: str = "",
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    rows = org.list_users(page.db, role=role if role in org.ROLES else None, q=q[:40])
    return page.render(
        "admin_users.html",
        status_code,
        rows=rows,
        role=role,
        q=q,
        departments=service.department_names(page.db, {u.department_id for u in rows}),
        role_options=_role_options(page.lang),
        department_options=department_options(page),
        values=values or {"role": "inspector"},
        errors=errors or {},
    )


@router.get("/admin/users")
def user_list(page: StaffPageDep, role: str = "", q: str = "") -> Response:
    return guard(page) or _users_page(page, role=role, q=q)


@router.post("/admin/users")
def user_create(page: StaffPageDep, form: FormDep) -> Response:
    refused = guard(page, form)
    if refused:
        return refused
    values = {name: text(form, name) for name in USER_FIELDS}
    errors: dict[str, str] = {}
    department_id = read_id(form, "department_id", values, errors, page.lang)
    password = form.get("password")
    if errors:
        return _users_page(page, values=values, errors=errors, status_code=422)
    try:
        user = org.create_user(
            page.db,
            username=values["username"],
            password=password if isinstance(password, str) else "",
            role=values["role"],
            display_name=values["display_name"],
            department_id=department_id,
            grid_codes=[c for c in values["grid_codes"].replace("，", ",").split(",") if c.strip()],
            phone=values["phone"] or None,
        )
    except DomainError as exc:
        page.db.rollback()
        known = (*values, "password")
        return _users_page(
            page, values=values, errors=error_of(exc, known), status_code=exc.status_code
        )
    return page.redirect(f"/admin/users/{user.id}?saved=1")


def _user_page(
    page: Page,
    user: User,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    saved: str = "",
) -> Response:
    current = {
        "display_name": user.display_name,
        "role": user.role,
        "department_id": str(user.department_id or ""),
        "grid_codes": ", ".join(user.grid_codes or []),
        "phone": user.phone or "",
    }
    return page.render(
        "admin_user.html",
        status_code,
        row=user,
        values={**current, **(values or {})},
        errors=errors or {},
        saved=saved,
        role_options=_role_options(page.lang),
        department_options=department_options(page),
        department=service.department_names(page.db, {user.department_id}).get(user.department_id),
    )


def _user(page: Page, user_id: int) -> User | None:
    return page.db.get(User, user_id)


@router.get("/admin/users/{user_id}")
def user_form(user_id: int, page: StaffPageDep, saved: str = "") -> Response:
    refused = guard(page)
    if refused:
        return refused
    user = _user(page, user_id)
    if user is None:
        return page.error(404, f"user {user_id} not found")
    return _user_page(page, user, saved=saved)


def _user_change(
    page: Page, user_id: int, changes: dict[str, Any], values: dict[str, str], saved: str
) -> Response:
    try:
        org.update_user(page.db, user_id, changes, by=page.user.id if page.user else None)
    except NotFound as exc:
        page.db.rollback()
        return page.error(404, exc.message)
    except DomainError as exc:
        page.db.rollback()
        user = _user(page, user_id)
        assert user is not None
        return _user_page(page, user, values, error_of(exc, (*values, "active")), exc.status_code)
    return page.redirect(f"/admin/users/{user_id}?saved={saved}")


@router.post("/admin/users/{user_id}")
def user_save(user_id: int, page: StaffPageDep, form: FormDep) -> Response:
    refused = guard(page, form)
    if refused:
        return refused
    user = _user(page, user_id)
    if user is None:
        return page.error(404, f"user {user_id} not found")
    values = {name: text(form, name) for name in USER_FIELDS if name != "username"}
    errors: dict[str, str] = {}
    department_id = read_id(form, "department_id", values, errors, page.lang)
    if errors:
        return _user_page(page, user, values, errors, 422)
    changes = {
        "display_name": values["display_name"],
        "role": values["role"],
        "department_id": department_id,
        "grid_codes": values["grid_codes"],
        "phone": values["phone"] or None,
    }
    return _user_change(page, user_id, changes, values, "1")


@router.post("/admin/users/{user_id}/active")
def user_active(user_id: int, page: StaffPageDep, form: FormDep) -> Response:
    """Disable (the user can no longer log in; their history stays) or enable again."""
    refused = guard(page, form)
    if refused:
        return refused
    active = text(form, "active") == "yes"
    return _user_change(page, user_id, {"active": active}, {}, "enabled" if active else "disabled")


@router.post("/admin/users/{user_id}/password")
def user_password(user_id: int, page: StaffPageDep, form: FormDep) -> Response:
    refused = guard(page, form)
    if refused:
        return refused
    user = _user(page, user_id)
    if user is None:
        return page.error(404, f"user {user_id} not found")
    password = form.get("password")
    try:
        org.reset_password(page.db, user_id, password if isinstance(password, str) else "")
    except DomainError as exc:
        page.db.rollback()
        user = _user(page, user_id)
        assert user is not None
        return _user_page(page, user, None, {"password": exc.message}, exc.status_code)
    return page.redirect(f"/admin/users/{user_id}?saved=password")


# -- responsibility rules ----------------------------------------------------------------------
RULE_FIELDS = ("class_prefix", "region_prefix", "department_id", "note")


def _class_names(page: Page) -> dict[str, str]:
    return {
        c.code: c.name_en if page.lang == "en" and c.name_en else c.name
        for c in list_classes(page.db)
    }


def _rules_page(
    page: Page,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    saved: str = "",
) -> Response:
    rules = org.list_rules(page.db)
    return page.render(
        "admin_rules.html",
        status_code,
        rules=rules,
        classes=_class_names(page),
        regions=service.region_names(page.db, {r.region_prefix for r in rules}),
        departments=service.department_names(page.db, {r.department_id for r in rules}),
        department_options=department_options(page),
        values=values or {},
        errors=errors or {},
        saved=saved,
    )


@router.get("/admin/rules")
def rule_list(page: StaffPageDep, saved: str = "") -> Response:
    return guard(page) or _rules_page(page, saved=saved)


def _rule_form(
    form: FormData, lang: str
) -> tuple[dict[str, str], dict[str, str], int | None, bool]:
    values = {name: text(form, name) for name in RULE_FIELDS}
    values["auto_dispatch"] = "yes" if text(form, "auto_dispatch") == "yes" else "no"
    errors: dict[str, str] = {}
    department_id = read_id(form, "department_id", values, errors, lang)
    if department_id is None and "department_id" not in errors:
        errors["department_id"] = translate("required", lang)
    return values, errors, department_id, values["auto_dispatch"] == "yes"


@router.post("/admin/rules")
def rule_create(page: StaffPageDep, form: FormDep) -> Response:
    refused = guard(page, form)
    if refused:
        return refused
    values, errors, department_id, auto = _rule_form(form, page.lang)
    if errors or department_id is None:
        return _rules_page(page, values=values, errors=errors, status_code=422)
    try:
        rule = org.create_rule(
            page.db,
            class_prefix=values["class_prefix"],
            region_prefix=values["region_prefix"],
            department_id=department_id,
            auto_dispatch=auto,
            note=values["note"],
        )
    except DomainError as exc:
        page.db.rollback()
        return _rules_page(
            page, values=values, errors=error_of(exc, values), status_code=exc.status_code
        )
    return page.redirect(f"/admin/rules?saved={rule.id}#rule-{rule.id}")


def _rule_page(
    page: Page,
    rule: ResponsibilityRule,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    current = {
        "class_prefix": rule.class_prefix,
        "region_prefix": rule.region_prefix,
        "department_id": str(rule.department_id),
        "auto_dispatch": "yes" if rule.auto_dispatch else "no",
        "note": rule.note,
    }
    return page.render(
        "admin_rule.html",
        status_code,
        row=rule,
        values={**current, **(values or {})},
        errors=errors or {},
        department_options=department_options(page),
    )


@router.get("/admin/rules/{rule_id}")
def rule_form(rule_id: int, page: StaffPageDep) -> Response:
    refused = guard(page)
    if refused:
        return refused
    rule = page.db.get(ResponsibilityRule, rule_id)
    if rule is None:
        return page.error(404, f"responsibility rule {rule_id} not found")
    return _rule_page(page, rule)


@router.post("/admin/rules/{rule_id}")
def rule_save(rule_id: int, page: StaffPageDep, form: FormDep) -> Response:
    refused = guard(page, form)
    if refused:
        return refused
    rule = page.db.get(ResponsibilityRule, rule_id)
    if rule is None:
        return page.error(404, f"responsibility rule {rule_id} not found")
    values, errors, department_id, auto = _rule_form(form, page.lang)
    if errors:
        return _rule_page(page, rule, values, errors, 422)
    try:
        org.update_rule(
            page.db,
            rule_id,
            {
                "class_prefix": values["class_prefix"],
                "region_prefix": values["region_prefix"],
                "department_id": department_id,
                "auto_dispatch": auto,
                "note": values["note"],
            },
        )
    except DomainError as exc:
        page.db.rollback()
        rule = page.db.get(ResponsibilityRule, rule_id)
        assert rule is not None
        return _rule_page(page, rule, values, error_of(exc, values), exc.status_code)
    return page.redirect(f"/admin/rules?saved={rule_id}#rule-{rule_id}")


@router.post("/admin/rules/{rule_id}/delete")
def rule_delete(rule_id: int, page: StaffPageDep, form: FormDep) -> Response:
    refused = guard(page, form)
    if refused:
        return refused
    try:
        org.delete_rule(page.db, rule_id)
    except NotFound as exc:
        page.db.rollback()
        return page.error(404, exc.message)
    return page.redirect("/admin/rules?saved=deleted")


# -- partner platforms and their keys ----------------------------------------------------------
PARTNER_FIELDS = ("code", "name", "source", "webhook_url")


def _source_options(lang: str) -> list[tuple[str, str]]:
    return [(s, service.source_label(s, lang)) for s in sorted(PARTNER_SOURCES) if s in SOURCES]


def _partners_page(
    page: Page,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return page.render(
        "admin_partners.html",
        status_code,
        rows=partners.list_partners(page.db),
        source_options=_source_options(page.lang),
        values=values or {},
        errors=errors or {},
    )


@router.get("/admin/partners")
def partner_list(page: StaffPageDep) -> Response:
    return guard(page) or _partners_page(page)


@router.post("/admin/partners")
def partner_create(page: StaffPageDep, form: FormDep) -> Response:
    """Register a partner; the page that answers shows its API key this once."""
    refused = guard(page, form)
    if refused:
        return refused
    values = {name: text(form, name) for name in PARTNER_FIELDS}
    try:
        partner, key = partners.create_partner(
            page.db,
            code=values["code"],
            name=values["name"],
            source=values["source"],
            webhook_url=values["webhook_url"] or None,
            now=page.now,
        )
    except DomainError as exc:
        page.db.rollback()
        return _partners_page(page, values, error_of(exc, values), exc.status_code)
    return _partner_page(page, partner, new_key=key)


def _partner_page(
    page: Page,
    partner: Partner,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    saved: str = "",
    new_key: str = "",
) -> Response:
    current = {
        "name": partner.name,
        "webhook_url": partner.webhook_url or "",
        "active": "yes" if partner.active else "no",
    }
    response = page.render(
        "admin_partner.html",
        status_code,
        row=partner,
        values={**current, **(values or {})},
        errors=errors or {},
        saved=saved,
        new_key=new_key,
        source=service.source_label(partner.source, page.lang),
    )
    if new_key:
        response.headers["Cache-Control"] = "no-store"  # the key must not linger in a cache
    return response


def _partner(page: Page, partner_id: int) -> Partner | None:
    return page.db.get(Partner, partner_id)


@router.get("/admin/partners/{partner_id}")
def partner_form(partner_id: int, page: StaffPageDep, saved: str = "") -> Response:
    refused = guard(page)
    if refused:
        return refused
    partner = _partner(page, partner_id)
    if partner is None:
        return page.error(404, f"partner {partner_id} not found")
    return _partner_page(page, partner, saved=saved)


@router.post("/admin/partners/{partner_id}")
def partner_save(partner_id: int, page: StaffPageDep, form: FormDep) -> Response:
    refused = guard(page, form)
    if refused:
        return refused
    if _partner(page, partner_id) is None:
        return page.error(404, f"partner {partner_id} not found")
    values = {
        "name": text(form, "name"),
        "webhook_url": text(form, "webhook_url"),
        "active": "yes" if text(form, "active") == "yes" else "no",
    }
    try:
        partners.update_partner(
            page.db,
            partner_id,
            {
                "name": values["name"],
                "webhook_url": values["webhook_url"] or None,
                "active": values["active"] == "yes",
            },
        )
    except DomainError as exc:
        page.db.rollback()
        partner = _partner(page, partner_id)
        assert partner is not None
        return _partner_page(page, partner, values, error_of(exc, values), exc.status_code)
    return page.redirect(f"/admin/partners/{partner_id}?saved=1")


@router.post("/admin/partners/{partner_id}/key")
def partner_key(partner_id: int, page: StaffPageDep, form: FormDep) -> Response:
    """Issue a new key (the old one stops working); shown on the answering page only."""
    refused = guard(page, form)
    if refused:
        return refused
    try:
        partner, key = partners.rotate_key(page.db, partner_id)
    except NotFound as exc:
        page.db.rollback()
        return page.error(404, exc.message)
    return _partner_page(page, partner, new_key=key)


@router.post("/admin/partners/{partner_id}/key/revoke")
def partner_key_revoke(partner_id: int, page: StaffPageDep, form: FormDep) -> Response:
    refused = guard(page, form)
    if refused:
        return refused
    try:
        partners.revoke_key(page.db, partner_id)
    except NotFound as exc:
        page.db.rollback()
        return page.error(404, exc.message)
    return page.redirect(f"/admin/partners/{partner_id}?saved=revoked")
