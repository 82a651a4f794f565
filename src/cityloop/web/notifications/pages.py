"""Routes of the notification pages (see the package docstring)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from cityloop.errors import DomainError
from cityloop.notifications import service
from cityloop.notifications.channels import read_sms_log
from cityloop.notifications.defaults import CHANNELS, PLACEHOLDERS
from cityloop.notifications.models import RECIPIENT_KINDS
from cityloop.notifications.settings import NotifySettings
from cityloop.org.service import ROLES, list_departments
from cityloop.outbox import service as outbox
from cityloop.web.admin import guard
from cityloop.web.page import FormDep, Page, StaffPageDep, text

router = APIRouter()
PAGE_SIZE = 30


# -- the inbox ---------------------------------------------------------------------------
@router.get("/inbox")
def inbox_page(page: StaffPageDep, p: int = 1) -> Response:
    assert page.user is not None
    number = max(p, 1)
    items, total, unread = service.inbox(page.db, page.user.id, page=number, page_size=PAGE_SIZE)
    return page.render(
        "notifications/inbox.html",
        items=items,
        total=total,
        unread=unread,
        number=number,
        pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
    )


@router.post("/inbox/{notification_id}/read")
def inbox_read(notification_id: int, page: StaffPageDep) -> Response:
    # Called by the toast's click (fetch with the CSRF header) and the inbox's "open" form.
    if not page.csrf_ok():
        return page.csrf_refused()
    assert page.user is not None
    row = service.mark_read(page.db, page.user.id, notification_id, page.now)
    return page.redirect(row.link)


@router.post("/inbox/{notification_id}/open")
def inbox_open(notification_id: int, page: StaffPageDep, form: FormDep) -> Response:
    if not page.csrf_ok(form):
        return page.csrf_refused()
    assert page.user is not None
    row = service.mark_read(page.db, page.user.id, notification_id, page.now)
    return page.redirect(row.link)


@router.post("/inbox/read-all")
def inbox_read_all(page: StaffPageDep, form: FormDep) -> Response:
    if not page.csrf_ok(form):
        return page.csrf_refused()
    assert page.user is not None
    service.mark_all_read(page.db, page.user.id, page.now)
    return page.redirect("/inbox")


def _choices(page: Page) -> list[tuple[str, list[str]]]:
    """The events whose rules could reach this user on a channel besides the inbox: what
    the preferences page offers to turn off."""
    assert page.user is not None
    found: dict[str, list[str]] = {}
    for rule in service.list_rules(page.db):
        if rule.recipient == "reporter":
            continue
        if rule.recipient == "role" and rule.role != page.user.role:
            continue
        if rule.recipient == "grid" and page.user.role != "inspector":
            continue
        for channel in rule.channels:
            if channel != "inbox" and channel not in found.setdefault(rule.event, []):
                found[rule.event].append(channel)
    return [(event, channels) for event, channels in sorted(found.items()) if channels]


@router.get("/inbox/preferences")
def preferences_page(page: StaffPageDep, saved: str = "") -> Response:
    assert page.user is not None
    return page.render(
        "notifications/preferences.html",
        choices=_choices(page),
        muted=service.preferences(page.db, page.user.id),
        saved=bool(saved),
    )


@router.post("/inbox/preferences")
def preferences_save(page: StaffPageDep, form: FormDep) -> Response:
    if not page.csrf_ok(form):
        return page.csrf_refused()
    assert page.user is not None
    wanted = set(form.getlist("on"))
    off = [
        (event, channel)
        for event, channels in _choices(page)
        for channel in channels
        if f"{event}:{channel}" not in wanted
    ]
    service.set_preferences(page.db, page.user.id, off)
    return page.redirect("/inbox/preferences?saved=1")


# -- administration -----------------------------------------------------------------------------
def _admin_page(
    page: Page,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    saved: str = "",
    status: str = "",
) -> Response:
    messages, total = outbox.list_messages(
        page.db,
        status=status if status in ("pending", "delivered", "failed") else None,
        page=1,
        page_size=50,
    )
    return page.render(
        "notifications/admin.html",
        status_code,
        rules=service.list_rules(page.db),
        templates=service.list_templates(page.db),
        placeholders=PLACEHOLDERS,
        recipients=RECIPIENT_KINDS,
        channels=CHANNELS,
        roles=ROLES,
        messages=messages,
        total=total,
        counts=outbox.counts(page.db),
        status=status,
        sms_log=read_sms_log(NotifySettings(), limit=30),
        departments=list_departments(page.db),
        values=values or {},
        errors=errors or {},
        saved=saved,
    )


def _error(exc: DomainError, prefix: str = "") -> dict[str, str]:
    return {prefix + (exc.field or "_form"): exc.message}


@router.get("/admin/notifications")
def admin_notifications(page: StaffPageDep, saved: str = "", status: str = "") -> Response:
    return guard(page) or _admin_page(page, saved=saved, status=status)


@router.post("/admin/notifications/rules")
def admin_rule_create(page: StaffPageDep, form: FormDep) -> Response:
    refused = guard(page, form)
    if refused:
        return refused
    values = {n: text(form, n) for n in ("event", "recipient", "role", "template", "urgencies")}
    data = {
        **values,
        "role": values["role"] or None,
        "channels": form.getlist("channels"),
        "quiet_hours": text(form, "quiet_hours") == "yes",
    }
    try:
        rule = service.create_rule(page.db, data)
    except DomainError as exc:
        page.db.rollback()
        return _admin_page(
            page, values=values, errors=_error(exc, "rule_"), status_code=exc.status_code
        )
    return page.redirect(f"/admin/notifications?saved=rule-{rule.id}#rules")


@router.post("/admin/notifications/rules/{rule_id}/delete")
def admin_rule_delete(rule_id: int, page: StaffPageDep, form: FormDep) -> Response:
    refused = guard(page, form)
    if refused:
        return refused
    service.delete_rule(page.db, rule_id)
    return page.redirect("/admin/notifications?saved=deleted#rules")


@router.post("/admin/notifications/templates/{code}")
def admin_template_save(code: str, page: StaffPageDep, form: FormDep) -> Response:
    refused = guard(page, form)
    if refused:
        return refused
    data = {n: text(form, n) for n in ("title", "body", "sms_template_id", "wechat_template_id")}
    try:
        service.save_template(page.db, code, data)
    except DomainError as exc:
        page.db.rollback()
        values = {f"tpl_{code}_{k}": v for k, v in data.items()}
        return _admin_page(
            page, values=values, errors=_error(exc, f"tpl_{code}_"), status_code=exc.status_code
        )
    return page.redirect(f"/admin/notifications?saved=tpl-{code}#tpl-{code}")


@router.post("/admin/notifications/webhooks/{department_id}")
def admin_webhook_save(department_id: int, page: StaffPageDep, form: FormDep) -> Response:
    refused = guard(page, form)
    if refused:
        return refused
    url, secret = text(form, "webhook_url"), text(form, "webhook_secret")
    try:
        service.set_webhook(page.db, department_id, url, secret)
    except DomainError as exc:
        page.db.rollback()
        values = {f"hook_{department_id}_webhook_url": url}
        return _admin_page(
            page,
            values=values,
            errors=_error(exc, f"hook_{department_id}_"),
            status_code=exc.status_code,
        )
    return page.redirect(f"/admin/notifications?saved=hook-{department_id}#webhooks")


@router.post("/admin/notifications/outbox/{message_id}/retry")
def admin_outbox_retry(message_id: int, page: StaffPageDep, form: FormDep) -> Response:
    refused = guard(page, form)
    if refused:
        return refused
    try:
        outbox.retry(page.db, message_id, page.now)
    except DomainError as exc:
        page.db.rollback()
        return _admin_page(page, errors=_error(exc, "outbox_"), status_code=exc.status_code)
    return page.redirect("/admin/notifications?saved=retry#outbox")
