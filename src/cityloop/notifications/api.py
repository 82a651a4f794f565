"""REST edge of notifications: a user's inbox and its live stream, their preferences and
addresses; the administrator's rules, templates, department webhooks and SMS log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from cityloop.deps import NowDep, SessionDep, UserDep
from cityloop.errors import Forbidden, Unauthorized
from cityloop.notifications import service
from cityloop.notifications.channels import read_sms_log
from cityloop.notifications.defaults import CHANNELS, RULES
from cityloop.notifications.schemas import (
    InboxPage,
    MarkedAll,
    Muted,
    NotificationOut,
    PreferencesIn,
    PreferencesOut,
    RuleIn,
    RuleOut,
    TemplateIn,
    TemplateOut,
    WebhookIn,
    WebhookOut,
)
from cityloop.notifications.settings import NotifySettings
from cityloop.notifications.stream import InboxWatcher, events
from cityloop.org.models import User
from cityloop.org.service import read_token

router = APIRouter(prefix="/api/v1", tags=["notifications 通知"])


def _require_admin(user: User) -> None:
    if user.role != "admin":
        raise Forbidden("only an administrator edits notification rules and templates")


@router.get("/me/notifications", response_model=InboxPage, summary="My inbox 我的消息")
def my_notifications(
    session: SessionDep,
    user: UserDep,
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 30,
) -> InboxPage:
    items, total, unread = service.inbox(session, user.id, page=page, page_size=page_size)
    return InboxPage(
        items=[NotificationOut.model_validate(n, from_attributes=True) for n in items],
        total=total,
        unread=unread,
        page=page,
        page_size=page_size,
    )


@router.post(
    "/me/notifications/read-all", response_model=MarkedAll, summary="Mark all read 全部已读"
)
def read_all(session: SessionDep, user: UserDep, now: NowDep) -> MarkedAll:
    marked = service.mark_all_read(session, user.id, now)
    return MarkedAll(marked=marked, unread=0)


@router.post(
    "/me/notifications/{notification_id}/read",
    response_model=NotificationOut,
    summary="Mark one read 标为已读",
    responses={404: {"description": "not one of mine"}},
)
def read_one(
    notification_id: int, session: SessionDep, user: UserDep, now: NowDep
) -> NotificationOut:
    row = service.mark_read(session, user.id, notification_id, now)
    return NotificationOut.model_validate(row, from_attributes=True)


def _stream_user(request: Request, access_token: str | None) -> tuple[int, int]:
    """The user and token generation of the bearer token (header, or `access_token` for
    EventSource, which sends no headers), else of the console's session cookie."""
    header = request.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else access_token
    if token:
        claims = read_token(token, request.app.state.keyring)
        return claims.user_id, claims.generation
    from cityloop.web.page import session_user

    found = session_user(request)
    if found is None:
        raise Unauthorized("log in first: send a bearer token")
    return found


def _watcher(request: Request) -> InboxWatcher:
    state = request.app.state
    watcher = getattr(state, "inbox_watcher", None)
    if watcher is None:
        watcher = InboxWatcher(state.session_factory, NotifySettings().stream_poll_seconds)
        state.inbox_watcher = watcher
    return watcher


# Out of the OpenAPI schema: a stream generated requests would hold open (README documents it).
@router.get("/me/notifications/stream", include_in_schema=False)
async def my_stream(
    request: Request,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    access_token: str | None = None,
    after: Annotated[int | None, Query(ge=0, description="as Last-Event-ID")] = None,
    max_seconds: Annotated[float, Query(ge=0, le=3600)] = 300,
) -> StreamingResponse:
    """My inbox, live 实时消息 (Server-Sent Events): `unread` first, then a `notification`
    per new line, its SSE id the line's id. The stream ends after ``max_seconds`` (proxies
    drop idle connections anyway); EventSource reconnects with Last-Event-ID by itself."""
    user_id, generation = _stream_user(request, access_token)

    def active() -> bool:
        # A revoked token or session (password, lock, role, deactivation) opens no stream.
        with request.app.state.session_factory() as session:
            user = session.get(User, user_id)
            return (
                user is not None and user.active and (user.token_generation or 0) == generation
            )

    if not await run_in_threadpool(active):
        raise Unauthorized("the token's user no longer exists")
    resume = after
    if last_event_id and last_event_id.strip().isdigit():
        resume = int(last_event_id.strip())
    settings = NotifySettings()
    return StreamingResponse(
        events(
            _watcher(request),
            user_id,
            resume,
            request.is_disconnected,
            settings.stream_keepalive_seconds,
            max_seconds,
        ),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/me/notification-preferences", response_model=PreferencesOut)
def my_preferences(session: SessionDep, user: UserDep) -> PreferencesOut:
    off = service.preferences(session, user.id)
    return PreferencesOut(
        muted=[Muted(event=e, channel=c) for e, c in sorted(off)],
        events=sorted({r.event for r in RULES}),
        channels=[c for c in CHANNELS if c != "inbox"],
    )


@router.put("/me/notification-preferences", response_model=PreferencesOut)
def set_my_preferences(body: PreferencesIn, session: SessionDep, user: UserDep) -> PreferencesOut:
    service.set_preferences(session, user.id, [(m.event, m.channel) for m in body.muted])
    return my_preferences(session, user)


# -- administration -----------------------------------------------------------------------------
def _rule_out(rule: service.Rule) -> RuleOut:
    return RuleOut(
        id=rule.id,
        flow=rule.flow,
        event=rule.event,
        recipient=rule.recipient,
        role=rule.role,
        channels=list(rule.channels),
        template=rule.template,
        urgencies=rule.urgencies,
        quiet_hours=rule.quiet_hours,
        active=rule.active,
    )


@router.get("/notification-rules", response_model=list[RuleOut], summary="Rules 通知规则")
def list_rules(session: SessionDep, user: UserDep) -> list[RuleOut]:
    _require_admin(user)
    return [_rule_out(r) for r in service.list_rules(session)]


@router.post("/notification-rules", response_model=RuleOut, status_code=201)
def create_rule(body: RuleIn, session: SessionDep, user: UserDep) -> RuleOut:
    _require_admin(user)
    return _rule_out(service.create_rule(session, body.model_dump()))


@router.put("/notification-rules/{rule_id}", response_model=RuleOut)
def update_rule(rule_id: int, body: RuleIn, session: SessionDep, user: UserDep) -> RuleOut:
    _require_admin(user)
    return _rule_out(service.update_rule(session, rule_id, body.model_dump()))


@router.delete("/notification-rules/{rule_id}", status_code=204)
def delete_rule(rule_id: int, session: SessionDep, user: UserDep) -> None:
    _require_admin(user)
    service.delete_rule(session, rule_id)


@router.get("/notification-templates", response_model=list[TemplateOut])
def list_templates(session: SessionDep, user: UserDep) -> list[TemplateOut]:
    _require_admin(user)
    return [
        TemplateOut(
            code=t.code,
            title=t.title,
            body=t.body,
            sms_template_id=t.sms_template_id,
            wechat_template_id=t.wechat_template_id,
        )
        for t in service.list_templates(session)
    ]


@router.put("/notification-templates/{code}", response_model=TemplateOut)
def save_template(code: str, body: TemplateIn, session: SessionDep, user: UserDep) -> TemplateOut:
    _require_admin(user)
    t = service.save_template(session, code, body.model_dump())
    return TemplateOut(
        code=t.code,
        title=t.title,
        body=t.body,
        sms_template_id=t.sms_template_id,
        wechat_template_id=t.wechat_template_id,
    )


@router.put(
    "/departments/{department_id}/webhook",
    response_model=WebhookOut,
    summary="A department's own system 单位系统对接 (signed webhook)",
)
def set_webhook(
    department_id: int, body: WebhookIn, session: SessionDep, user: UserDep
) -> WebhookOut:
    _require_admin(user)
    department = service.set_webhook(session, department_id, body.webhook_url, body.webhook_secret)
    return WebhookOut(
        department_id=department.id,
        webhook_url=department.webhook_url,
        has_secret=bool(department.webhook_secret),
    )


@router.get("/notifications/sms-log", summary="The demo SMS backend's messages 短信日志")
def sms_log(user: UserDep) -> list[dict[str, object]]:
    _require_admin(user)
    return read_sms_log(NotifySettings())
