"""The event stream's listener: a `DomainEvent` of the case flow becomes inbox lines (written
now, in the event's transaction) and outbox rows for SMS, e-mail, WeChat and the holding
department's webhook (delivered by the worker after commit)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from cityloop.cases.models import Case
from cityloop.cases.states import BY_ACTION, STAGE_LABELS, state_label
from cityloop.events import DomainEvent
from cityloop.notifications import service
from cityloop.notifications.models import Notification
from cityloop.notifications.settings import NotifySettings
from cityloop.org.models import Department, User
from cityloop.outbox.service import enqueue_rows, message_row
from cityloop.taxonomy.service import find_class

EVENT_LABELS = {
    "report": "上报",
    "clock_warning": "即将超时",
    "clock_overdue": "已超时",
}
QUIET_START, QUIET_END = 22, 8
_INSERT = insert(cast(Table, Notification.__table__))


@lru_cache(maxsize=1)
def _settings() -> NotifySettings:
    return NotifySettings()


def event_label(action: str) -> str:
    row = BY_ACTION.get(action)
    return row.label if row is not None else EVENT_LABELS.get(action, action)


def on_event(session: Session, event: DomainEvent) -> None:
    if event.flow != "case":
        return
    rules = service.rules_for(session, event.flow, event.action)
    case = event.record if isinstance(event.record, Case) else session.get(Case, event.record_id)
    if case is None:
        return
    department = _department(session, case.department_id) if case.department_id else None
    hooked = department is not None and bool(department.webhook_url)
    if not rules and not hooked:
        return
    values = _values(session, event, case, department)
    # One INSERT for the event's outbox rows, one for its inbox lines.
    outbox_rows: list[dict[str, Any]] = []
    if rules:
        _notify(session, event, case, rules, values, outbox_rows)
    if hooked and department is not None:
        outbox_rows.append(_webhook(event, case, department, values))
    enqueue_rows(session, outbox_rows)


def _values(
    session: Session, event: DomainEvent, case: Case, department: _Department | None
) -> dict[str, Any]:
    payload = event.payload
    tz = ZoneInfo("Asia/Shanghai")
    due = payload.get("due_at") or (case.due_at.isoformat() if case.due_at else None)
    due_text = ""
    if due:
        try:
            due_text = datetime.fromisoformat(str(due)).astimezone(tz).strftime("%m-%d %H:%M")
        except ValueError:
            due_text = str(due)
    problem = find_class(session, case.class_code)
    stage = payload.get("stage")
    return {
        "ticket": case.ticket,
        "event": event_label(event.action),
        "class_name": problem.display_name if problem is not None else case.class_code,
        # No address given (a point on the map): the start of the description says where.
        "address": case.address or (case.description or "")[:30],
        "department": department.name if department is not None else "",
        "reason": payload.get("reason") or "",
        "note": payload.get("note") or "",
        "due_at": due_text,
        "stage": STAGE_LABELS.get(stage, stage or "") if stage else "",
        "state": state_label(case.state),
        "urgency": case.urgency,
    }


@dataclass(frozen=True)
class _Department:
    id: int
    code: str
    name: str
    webhook_url: str | None


def _load_departments(session: Session) -> dict[int, _Department]:
    rows = session.execute(
        select(Department.id, Department.code, Department.name, Department.webhook_url)
    ).all()
    return {r.id: _Department(r.id, r.code, r.name, r.webhook_url) for r in rows}


def _department(session: Session, department_id: int) -> _Department | None:
    # Read for every step of the loop: kept per process as the rules are (CACHE_SECONDS);
    # a webhook set through this process is in force at once (service.set_webhook drops it).
    found: dict[int, _Department] = service.CACHE.get(session, "departments", _load_departments)
    return found.get(department_id)


def _load_staff(session: Session) -> list[tuple[int, str, int | None, tuple[str, ...]]]:
    rows = session.execute(
        select(User.id, User.role, User.department_id, User.grid_codes).where(User.active.is_(True))
    ).all()
    return [(r.id, r.role, r.department_id, tuple(r.grid_codes or ())) for r in rows]


def _recipients(session: Session, rule: service.Rule, case: Case) -> list[int]:
    staff: list[tuple[int, str, int | None, tuple[str, ...]]] = service.CACHE.get(
        session, "staff", _load_staff
    )
    if rule.recipient == "department":
        if case.department_id is None:
            return []
        return [u for u, _role, dept, _g in staff if dept == case.department_id]
    if rule.recipient == "role":
        return [u for u, role, _d, _g in staff if role == rule.role]
    if rule.recipient == "grid":
        # The inspectors whose grids cover the case, as `cases.service.in_grid` reads them.
        codes = [c for c in (case.unit_grid, case.resp_grid, case.community, case.street) if c]
        if not codes:
            return []
        return [
            u
            for u, role, _d, grids in staff
            if role == "inspector"
            and any(code.startswith(grid) for grid in grids for code in codes)
        ]
    return []


def _not_before(rule: service.Rule, case: Case, now: datetime) -> datetime | None:
    """SMS held through the night unless the case is urgent (A)."""
    if not rule.quiet_hours or case.urgency == "A":
        return None
    local = now.astimezone(ZoneInfo("Asia/Shanghai"))
    if QUIET_END <= local.hour < QUIET_START:
        return None
    morning = local.replace(hour=QUIET_END, minute=0, second=0, microsecond=0)
    if local.hour >= QUIET_START:
        morning += timedelta(days=1)
    return morning


def _notify(
    session: Session,
    event: DomainEvent,
    case: Case,
    rules: list[service.Rule],
    values: dict[str, Any],
    outbox_rows: list[dict[str, Any]],
) -> None:
    inbox_rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    staff_link = f"/case/{case.id}"
    public_link = f"{_settings().public_base_url}/h5/track?ticket={case.ticket}"
    for rule in rules:
        if not rule.applies_to(case.urgency):
            continue
        tpl = service.template(session, rule.template)
        if rule.recipient == "reporter":
            targets = _reporter_targets(case)
            link = public_link
        else:
            targets = [f"user:{u}" for u in _recipients(session, rule, case)]
            link = staff_link
        if not targets:
            continue
        rendered = {**values, "link": link}
        title, text = tpl.render(rendered)
        user_ids = [int(t[5:]) for t in targets if t.startswith("user:")]
        muted = service.muted(session, user_ids) if user_ids else set()
        for target in targets:
            user_id = int(target[5:]) if target.startswith("user:") else None
            for channel in rule.channels:
                if (target, channel) in seen:
                    continue
                if user_id is not None and (user_id, event.action, channel) in muted:
                    continue
                seen.add((target, channel))
                if channel == "inbox":
                    if user_id is None:
                        continue
                    inbox_rows.append(
                        {
                            "user_id": user_id,
                            "flow": event.flow,
                            "record_id": case.id,
                            "event": event.action,
                            "ticket": case.ticket,
                            "title": title[:120],
                            "body": text,
                            "link": link,
                            "urgency": case.urgency,
                            "created_at": event.at,
                            "read_at": None,
                        }
                    )
                    continue
                if channel == "sms" and target.startswith("case:") and not case.reporter_phone:
                    continue
                outbox_rows.append(
                    message_row(
                        topic=f"notify.{event.action}",
                        channel=channel,
                        target_url=target,
                        payload={
                            "event": event.action,
                            "event_label": values["event"],
                            "ticket": case.ticket,
                            "case_id": case.id,
                            "template": tpl.code,
                            "sms_template_id": tpl.sms_template_id,
                            "wechat_template_id": tpl.wechat_template_id,
                            "params": {k: v for k, v in rendered.items() if f"{{{k}}}" in tpl.body},
                            "title": title,
                            "text": text,
                            # Off the console, a link must say which server it is on.
                            "link": link
                            if link.startswith("http")
                            else _settings().public_base_url + link,
                        },
                        now=event.at,
                        not_before=_not_before(rule, case, event.at) if channel == "sms" else None,
                    )
                )
    if inbox_rows:
        session.execute(_INSERT, inbox_rows)


def _reporter_targets(case: Case) -> list[str]:
    targets = []
    if case.reporter_phone:
        targets.append(f"case:{case.id}")
    if case.reporter_user_id is not None:
        targets.append(f"user:{case.reporter_user_id}")
    return targets


def _webhook(
    event: DomainEvent, case: Case, department: _Department, values: dict[str, Any]
) -> dict[str, Any]:
    return message_row(
        topic=f"department.{event.action}",
        channel="dept_webhook",
        target_url=department.webhook_url or "",
        payload={
            "event": f"{event.flow}.{event.action}",
            "flow": event.flow,
            "action": event.action,
            "action_label": values["event"],
            "from_state": event.from_state,
            "state": case.state,
            "state_label": values["state"],
            "department": {"id": department.id, "code": department.code, "name": department.name},
            "case": {
                "id": case.id,
                "ticket": case.ticket,
                "class_code": case.class_code,
                "class_name": values["class_name"],
                "urgency": case.urgency,
                "address": case.address,
                "lon": case.lon,
                "lat": case.lat,
                "due_at": case.due_at.isoformat() if case.due_at else None,
            },
            "actor": {"name": event.actor_name, "role": event.actor_role},
            "note": values["note"] or values["reason"] or None,
            "at": event.at.isoformat(),
        },
        now=event.at,
        ordering_key=f"dept:{department.id}:case:{case.id}",
    )
