"""Rules, templates, the inbox, preferences and addresses. Every function only flushes: the
caller owns the transaction."""

from __future__ import annotations

import string
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from cityloop.cases.states import BY_ACTION
from cityloop.errors import NotFound, ValidationFailed
from cityloop.notifications.defaults import CHANNELS, PLACEHOLDERS, RULES, TEMPLATES
from cityloop.notifications.models import (
    RECIPIENT_KINDS,
    Notification,
    NotificationAddress,
    NotificationPreference,
    NotificationRule,
    NotificationTemplate,
)
from cityloop.org.models import Department
from cityloop.org.service import ROLES

CACHE_SECONDS = 5.0
# What the case flow publishes: its actions, a case born, the clock's marks.
CASE_EVENTS = frozenset(BY_ACTION) | {"report", "clock_warning", "clock_overdue"}


# -- rules and templates as data ----------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    id: int | None
    flow: str
    event: str
    recipient: str
    role: str | None
    channels: tuple[str, ...]
    template: str
    urgencies: str
    quiet_hours: bool
    active: bool = True

    def applies_to(self, urgency: str | None) -> bool:
        return self.active and (not self.urgencies or (urgency or "") in self.urgencies)


@dataclass(frozen=True)
class Template:
    code: str
    title: str
    body: str
    sms_template_id: str | None
    wechat_template_id: str | None

    def render(self, values: dict[str, Any]) -> tuple[str, str]:
        safe = _Values(values)
        return self.title.format_map(safe), self.body.format_map(safe)


class _Values(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def _default_rules() -> list[Rule]:
    return [
        Rule(
            None,
            "case",
            r.event,
            r.recipient,
            r.role,
            r.channels,
            r.template,
            r.urgencies,
            r.quiet_hours,
        )
        for r in RULES
    ]


class _Cache:
    """Rules and templates per process for a few seconds: an edit in any process is in
    force everywhere within CACHE_SECONDS, with no restart."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: dict[str, tuple[float, Any]] = {}

    def get(self, session: Session, name: str, load: Any) -> Any:
        key = f"{name}:{id(session.get_bind())}"
        hit = self._loaded.get(key)
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
        value = load(session)
        with self._lock:
            self._loaded[key] = (time.monotonic(), value)
        return value

    def drop(self) -> None:
        with self._lock:
            self._loaded.clear()


CACHE = _Cache()


def _load_rules(session: Session) -> dict[str, list[Rule]]:
    rows = session.scalars(select(NotificationRule).order_by(NotificationRule.id)).all()
    rules = [_rule_of(r) for r in rows] if rows else _default_rules()
    by_event: dict[str, list[Rule]] = {}
    for rule in rules:
        by_event.setdefault(f"{rule.flow}:{rule.event}", []).append(rule)
    return by_event


def _load_templates(session: Session) -> dict[str, Template]:
    templates = {
        code: Template(t.code, t.title, t.body, t.sms_template_id, t.wechat_template_id)
        for code, t in TEMPLATES.items()
    }
    for row in session.scalars(select(NotificationTemplate)).all():
        templates[row.code] = Template(
            row.code, row.title, row.body, row.sms_template_id, row.wechat_template_id
        )
    return templates


def rules_for(session: Session, flow: str, event: str) -> list[Rule]:
    rules: dict[str, list[Rule]] = CACHE.get(session, "rules", _load_rules)
    return rules.get(f"{flow}:{event}", [])


def template(session: Session, code: str) -> Template:
    templates: dict[str, Template] = CACHE.get(session, "templates", _load_templates)
    found = templates.get(code)
    if found is None:
        return Template(code, code, "{ticket}", None, None)
    return found


def _rule_of(row: NotificationRule) -> Rule:
    return Rule(
        row.id,
        row.flow,
        row.event,
        row.recipient,
        row.role,
        tuple(row.channels or ()),
        row.template,
        row.urgencies or "",
        row.quiet_hours,
        row.active,
    )


def list_rules(session: Session) -> list[Rule]:
    rows = session.scalars(select(NotificationRule).order_by(NotificationRule.id)).all()
    return [_rule_of(r) for r in rows] if rows else _default_rules()


def _materialise_defaults(session: Session) -> None:
    # The first edit copies the defaults into the table, so that what the administrator
    # sees is what is in force.
    if session.scalar(select(func.count()).select_from(NotificationRule)):
        return
    for rule in _default_rules():
        session.add(_row_of(rule, NotificationRule()))
    session.flush()


def _row_of(rule: Rule, row: NotificationRule) -> NotificationRule:
    row.flow, row.event, row.recipient, row.role = rule.flow, rule.event, rule.recipient, rule.role
    row.channels, row.template = list(rule.channels), rule.template
    row.urgencies, row.quiet_hours, row.active = rule.urgencies, rule.quiet_hours, rule.active
    return row


def check_rule(session: Session, data: dict[str, Any]) -> Rule:
    """A rule from what an administrator sent; 422 naming the field that is wrong."""
    event = str(data.get("event") or "").strip()
    flow = str(data.get("flow") or "case")
    if not event or len(event) > 40:
        raise ValidationFailed("event must be an action or clock event name", field="event")
    if flow == "case" and event not in CASE_EVENTS:
        raise ValidationFailed(
            f"unknown event {event!r} of the case flow; one of: {', '.join(sorted(CASE_EVENTS))}",
            field="event",
        )
    recipient = data.get("recipient")
    if recipient not in RECIPIENT_KINDS:
        raise ValidationFailed(
            f"recipient must be one of {', '.join(RECIPIENT_KINDS)}", field="recipient"
        )
    role = data.get("role") or None
    if recipient == "role":
        if role not in ROLES:
            raise ValidationFailed(
                f"unknown role {role!r}; one of: {', '.join(ROLES)}", field="role"
            )
    elif role is not None:
        raise ValidationFailed("role is only given when recipient is role", field="role")
    channels = data.get("channels") or []
    if not isinstance(channels, list | tuple) or not channels:
        raise ValidationFailed("channels must list at least one channel", field="channels")
    for channel in channels:
        if channel not in CHANNELS:
            raise ValidationFailed(
                f"unknown channel {channel!r}; one of: {', '.join(CHANNELS)}", field="channels"
            )
    code = str(data.get("template") or "")
    if (
        code not in TEMPLATES
        and session.scalar(select(NotificationTemplate.id).where(NotificationTemplate.code == code))
        is None
    ):
        raise ValidationFailed(f"unknown template {code!r}", field="template")
    urgencies = str(data.get("urgencies") or "").upper()
    if any(u not in "ABC" for u in urgencies) or len(set(urgencies)) != len(urgencies):
        raise ValidationFailed("urgencies: some of A, B, C (empty: all)", field="urgencies")
    return Rule(
        None,
        str(data.get("flow") or "case"),
        event,
        recipient,
        role,
        tuple(dict.fromkeys(channels)),
        code,
        "".join(sorted(urgencies)),
        bool(data.get("quiet_hours", True)),
        bool(data.get("active", True)),
    )


def create_rule(session: Session, data: dict[str, Any]) -> Rule:
    rule = check_rule(session, data)
    _materialise_defaults(session)
    row = _row_of(rule, NotificationRule())
    session.add(row)
    session.flush()
    CACHE.drop()
    return _rule_of(row)


def update_rule(session: Session, rule_id: int, data: dict[str, Any]) -> Rule:
    rule = check_rule(session, data)
    _materialise_defaults(session)
    row = session.get(NotificationRule, rule_id)
    if row is None:
        raise NotFound(f"notification rule {rule_id} not found")
    _row_of(rule, row)
    session.flush()
    CACHE.drop()
    return _rule_of(row)


def delete_rule(session: Session, rule_id: int) -> None:
    _materialise_defaults(session)
    row = session.get(NotificationRule, rule_id)
    if row is None:
        raise NotFound(f"notification rule {rule_id} not found")
    session.delete(row)
    session.flush()
    CACHE.drop()


def list_templates(session: Session) -> list[Template]:
    return sorted(_load_templates(session).values(), key=lambda t: t.code)


def check_text(text: str, field: str) -> None:
    try:
        names = [name for _lit, name, _spec, _conv in string.Formatter().parse(text) if name]
    except ValueError as exc:
        raise ValidationFailed(f"{field}: {exc} (write {{{{ for a brace)", field=field) from exc
    for name in names:
        if name not in PLACEHOLDERS:
            raise ValidationFailed(
                f"unknown placeholder {{{name}}}; one of: "
                + ", ".join("{" + p + "}" for p in PLACEHOLDERS),
                field=field,
            )


def save_template(session: Session, code: str, data: dict[str, Any]) -> Template:
    if code not in TEMPLATES and not (code.replace("_", "").isalnum() and len(code) <= 40):
        raise ValidationFailed("code: letters, digits and _ (at most 40)", field="code")
    title = str(data.get("title") or "").strip()
    body = str(data.get("body") or "").strip()
    if not title:
        raise ValidationFailed("title must not be empty", field="title")
    if not body:
        raise ValidationFailed("body must not be empty", field="body")
    check_text(title, "title")
    check_text(body, "body")
    row = session.scalar(select(NotificationTemplate).where(NotificationTemplate.code == code))
    if row is None:
        row = NotificationTemplate(code=code)
        session.add(row)
    row.title, row.body = title[:120], body
    row.sms_template_id = data.get("sms_template_id") or None
    row.wechat_template_id = data.get("wechat_template_id") or None
    session.flush()
    CACHE.drop()
    return Template(row.code, row.title, row.body, row.sms_template_id, row.wechat_template_id)


# -- department webhooks ---------------------------------------------------------------------
def set_webhook(
    session: Session, department_id: int, url: str | None, secret: str | None
) -> Department:
    department = session.get(Department, department_id)
    if department is None:
        raise NotFound(f"department {department_id} not found")
    url = (url or "").strip() or None
    if url is not None:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValidationFailed("webhook_url must be an http(s) URL", field="webhook_url")
        if len(url) > 300:
            raise ValidationFailed("webhook_url: at most 300 characters", field="webhook_url")
        secret = (secret or "").strip() or department.webhook_secret
        if not secret or len(secret) < 16:
            raise ValidationFailed(
                "webhook_secret: at least 16 characters to sign with", field="webhook_secret"
            )
    department.webhook_url = url
    department.webhook_secret = secret if url is not None else None
    session.flush()
    CACHE.drop()
    return department


# -- the inbox ---------------------------------------------------------------------------------
def inbox(
    session: Session, user_id: int, *, page: int, page_size: int
) -> tuple[list[Notification], int, int]:
    """A user's lines, unread first, newest first within each; with total and unread."""
    base = select(Notification).where(Notification.user_id == user_id)
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    unread = unread_count(session, user_id)
    items = session.scalars(
        base.order_by(Notification.read_at.is_not(None), Notification.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return list(items), total, unread


def unread_count(session: Session, user_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        )
        or 0
    )


def since(session: Session, user_id: int, after_id: int, limit: int = 100) -> list[Notification]:
    """What the live stream sends: a user's lines after an id, oldest first."""
    return list(
        session.scalars(
            select(Notification)
            .where(Notification.user_id == user_id, Notification.id > after_id)
            .order_by(Notification.id)
            .limit(limit)
        ).all()
    )


def latest_id(session: Session) -> int:
    return session.scalar(select(func.max(Notification.id))) or 0


def mark_read(session: Session, user_id: int, notification_id: int, now: datetime) -> Notification:
    row = session.get(Notification, notification_id)
    if row is None or row.user_id != user_id:
        raise NotFound(f"notification {notification_id} not found")
    if row.read_at is None:
        row.read_at = now
        session.flush()
    return row


def mark_all_read(session: Session, user_id: int, now: datetime) -> int:
    result = session.execute(
        update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# -- preferences and addresses ---------------------------------------------------------------
def muted(session: Session, user_ids: list[int]) -> set[tuple[int, str, str]]:
    """What these users muted; read per process for a few seconds like the rules (an edit
    through this process is in force at once)."""
    if not user_ids:
        return set()
    everyone: set[tuple[int, str, str]] = CACHE.get(session, "muted", _load_muted)
    wanted = set(user_ids)
    return {m for m in everyone if m[0] in wanted}


def _load_muted(session: Session) -> set[tuple[int, str, str]]:
    rows = session.execute(
        select(
            NotificationPreference.user_id,
            NotificationPreference.event,
            NotificationPreference.channel,
        ).where(NotificationPreference.enabled.is_(False))
    ).all()
    return {(r.user_id, r.event, r.channel) for r in rows}


def preferences(session: Session, user_id: int) -> set[tuple[str, str]]:
    return {(e, c) for _u, e, c in _load_muted(session) if _u == user_id}


def set_preferences(session: Session, user_id: int, off: list[tuple[str, str]]) -> None:
    """Replace what the user mutes. The inbox itself cannot be muted: a task must reach
    its holder somewhere."""
    for event, channel in off:
        if channel not in CHANNELS or channel == "inbox":
            raise ValidationFailed(
                f"channel {channel!r} cannot be muted; one of sms, email, wechat",
                field="channel",
            )
        if not event or len(event) > 40:
            raise ValidationFailed("event must be an event name", field="event")
    session.execute(delete(NotificationPreference).where(NotificationPreference.user_id == user_id))
    for event, channel in dict.fromkeys(off):
        session.add(
            NotificationPreference(user_id=user_id, event=event, channel=channel, enabled=False)
        )
    session.flush()
    CACHE.drop()


def set_address(
    session: Session,
    channel: str,
    address: str,
    *,
    user_id: int | None = None,
    phone: str | None = None,
) -> NotificationAddress:
    if channel not in ("email", "wechat"):
        raise ValidationFailed("channel must be email or wechat", field="channel")
    address = address.strip()
    if channel == "email" and ("@" not in address or " " in address):
        raise ValidationFailed("address must be an e-mail address", field="address")
    if not address:
        raise ValidationFailed("address must not be empty", field="address")
    query = select(NotificationAddress).where(NotificationAddress.channel == channel)
    query = query.where(
        NotificationAddress.user_id == user_id
        if user_id is not None
        else NotificationAddress.phone == phone
    )
    row = session.scalar(query)
    if row is None:
        row = NotificationAddress(channel=channel, user_id=user_id, phone=phone, address=address)
        session.add(row)
    row.address = address[:200]
    session.flush()
    return row


def address_of(
    session: Session, channel: str, *, user_id: int | None = None, phone: str | None = None
) -> str | None:
    query = select(NotificationAddress.address).where(NotificationAddress.channel == channel)
    if user_id is not None:
        query = query.where(NotificationAddress.user_id == user_id)
    elif phone:
        query = query.where(NotificationAddress.phone == phone)
    else:
        return None
    return session.scalar(query)
