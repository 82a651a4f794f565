"""The request of a page: who is logged in (a signed session cookie), the CSRF token, the
language, and rendering a template with all of that in its context.

The cookie holds only the user id and the CSRF token, signed with the app's secret key
(itsdangerous) and dated, so it expires like an API token. Every POST form carries the token in
a hidden field (HTMX and fetch() send it as the X-CSRF-Token header); a mismatch is refused.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from cityloop.cases.service import PUBLIC, Actor
from cityloop.deps import NowDep, SessionDep
from cityloop.errors import DomainError
from cityloop.kit.calendar import WorkingCalendar
from cityloop.org.keyring import Keyring
from cityloop.org.models import User
from cityloop.taxonomy.service import working_calendar
from cityloop.web.i18n import DEFAULT_LANG, normalise, translate
from cityloop.web.service import action_label

R = TypeVar("R", bound=Response)
SESSION_COOKIE = "cityloop_web"
LANG_COOKIE = "cityloop_lang"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

# Where each role lands after logging in, and the pages its navigation shows.
HOME_BY_ROLE = {
    "operator": "/desk/accept",
    "shiftlead": "/desk/accept",
    "dispatcher": "/desk/dispatch",
    "handler": "/desk/handle",
    "inspector": "/m/inspector",
    "leader": "/screen",
    "admin": "/admin",
    "officer": "/m/officer",
    "legal_reviewer": "/m/officer",
    "enforcement_chief": "/m/officer",
}
NAV: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("nav_accept", "/desk/accept", frozenset({"operator", "shiftlead"})),
    ("nav_dispatch", "/desk/dispatch", frozenset({"dispatcher", "shiftlead"})),
    ("nav_handle", "/desk/handle", frozenset({"handler"})),
    ("nav_inspector", "/m/inspector", frozenset({"inspector"})),
    ("nav_screen", "/screen", frozenset({"leader", "shiftlead", "dispatcher", "operator"})),
    ("nav_calls", "/desk/calls", frozenset({"leader"})),
    (
        "nav_evaluation",
        "/evaluation",
        frozenset({"leader", "shiftlead", "dispatcher", "operator", "handler"}),
    ),
    ("nav_learning", "/learning", frozenset({"shiftlead", "leader", "dispatcher"})),
    ("nav_admin", "/admin", frozenset()),
)


def _local(value: datetime | None, tz: ZoneInfo, fmt: str) -> str:
    return "" if value is None else value.astimezone(tz).strftime(fmt)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(("html", "xml")),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


ENV = _environment()


@dataclass
class WebSession:
    user_id: int | None
    csrf: str
    changed: bool = False
    generation: int = 0


def _serializer(keyring: Keyring) -> URLSafeTimedSerializer:
    # itsdangerous signs with the last key and accepts every one: the keyring's first key
    # signs, retired ones ("until=" passed) are left out.
    accepted = keyring.accepted(datetime.now(UTC))
    return URLSafeTimedSerializer(list(reversed(accepted)), salt="cityloop.web.session")


def _read_session(request: Request) -> WebSession:
    settings = request.app.state.settings
    raw = request.cookies.get(SESSION_COOKIE)
    if raw:
        try:
            data = _serializer(request.app.state.keyring).loads(
                raw, max_age=settings.token_minutes * 60
            )
            if isinstance(data, dict) and isinstance(data.get("c"), str):
                user_id, generation = data.get("u"), data.get("g")
                return WebSession(
                    user_id if isinstance(user_id, int) else None,
                    data["c"],
                    generation=generation if isinstance(generation, int) else -1,
                )
        except BadSignature:
            pass
    return WebSession(None, secrets.token_urlsafe(24), changed=True)


def session_user(request: Request) -> tuple[int, int] | None:
    """The console user of a request's session cookie and the token generation it was made
    in (the live notification stream, which the console opens with EventSource and so with
    no bearer token); the caller checks both against the user row."""
    web = _read_session(request)
    return None if web.user_id is None else (web.user_id, web.generation)


class Page:
    """Everything a page handler needs besides its own inputs."""

    def __init__(self, request: Request, db: Session, now: datetime) -> None:
        self.request = request
        self.db = db
        self.now = now
        self.settings = request.app.state.settings
        self.tz = ZoneInfo(self.settings.timezone)
        self.web = _read_session(request)
        wanted = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
        self.lang = normalise(wanted or DEFAULT_LANG)
        self._lang_changed = "lang" in request.query_params
        self.user: User | None = None
        if self.web.user_id is not None:
            user = db.get(User, self.web.user_id)
            if (
                user is not None
                and user.active
                and self.web.generation == (user.token_generation or 0)
            ):
                self.user = user
            else:
                self.web = WebSession(None, self.web.csrf, changed=True)

    # -- who ------------------------------------------------------------------------------------
    @property
    def actor(self) -> Actor:
        return Actor.of(self.user) if self.user is not None else PUBLIC

    @property
    def role(self) -> str | None:
        return self.user.role if self.user is not None else None

    def allowed(self, roles: frozenset[str] | set[str]) -> bool:
        return self.role == "admin" or (self.role is not None and self.role in roles)

    def login(self, user: User) -> None:
        # A new token at login: a token planted before login is worthless afterwards.
        self.user = user
        self.web = WebSession(
            user.id, secrets.token_urlsafe(24), changed=True, generation=user.token_generation or 0
        )

    def logout(self) -> None:
        self.user = None
        self.web = WebSession(None, secrets.token_urlsafe(24), changed=True)

    # -- CSRF -------------------------------------------------------------------------------------
    def csrf_ok(self, form: FormData | None = None) -> bool:
        sent = self.request.headers.get(CSRF_HEADER) or ""
        if not sent and form is not None:
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else ""
        if not sent or self.web.changed:
            return False
        return secrets.compare_digest(sent.encode(), self.web.csrf.encode())

    # -- time -----------------------------------------------------------------------------------
    @cached_property
    def calendar(self) -> WorkingCalendar:
        return working_calendar(self.db, self.settings.timezone)

    # -- words ----------------------------------------------------------------------------------
    def t(self, key: str) -> str:
        return translate(key, self.lang)

    def lang_url(self) -> str:
        """This page in the other language."""
        other = "zh" if self.lang == "en" else "en"
        params = [(k, v) for k, v in self.request.query_params.multi_items() if k != "lang"]
        params.append(("lang", other))
        return self.request.url.path + "?" + urlencode(params)

    def nav(self) -> list[tuple[str, str]]:
        if self.user is None:
            return []
        return [(self.t(key), url) for key, url, roles in NAV if self.allowed(roles)]

    # -- responses --------------------------------------------------------------------------------
    def render(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        tz = self.tz
        html = ENV.get_template(template).render(
            page=self,
            t=self.t,
            lang=self.lang,
            user=self.user,
            csrf=self.web.csrf,
            path=self.request.url.path,
            dt=lambda v, fmt="%Y-%m-%d %H:%M": _local(v, tz, fmt),
            act=lambda action: action_label(action, self.lang),
            **context,
        )
        return self.finish(HTMLResponse(html, status_code=status_code))

    def redirect(self, url: str) -> Response:
        return self.finish(RedirectResponse(url, status_code=303))

    def error(self, status_code: int, message: str) -> HTMLResponse:
        title = {403: "forbidden", 404: "page_not_found"}.get(status_code, "error")
        return self.render("error.html", status_code, title=self.t(title), message=message)

    def domain_error(self, exc: DomainError) -> HTMLResponse:
        self.db.rollback()
        return self.error(exc.status_code, exc.message)

    def forbidden_role(self) -> HTMLResponse:
        return self.error(403, self.t("forbidden_role"))

    def csrf_refused(self) -> HTMLResponse:
        return self.error(403, self.t("csrf_failed"))

    def finish(self, response: R) -> R:
        secure = self.request.url.scheme == "https"
        if self.web.changed:
            value = _serializer(self.request.app.state.keyring).dumps(
                {"u": self.web.user_id, "c": self.web.csrf, "g": self.web.generation}
            )
            response.set_cookie(
                SESSION_COOKIE,
                value,
                max_age=self.settings.token_minutes * 60,
                httponly=True,
                samesite="lax",
                secure=secure,
                path="/",
            )
        if self._lang_changed:
            response.set_cookie(
                LANG_COOKIE, self.lang, max_age=365 * 86400, samesite="lax", secure=secure
            )
        response.headers.setdefault("Cache-Control", "no-store")
        return response


def _page(request: Request, db: SessionDep, now: NowDep) -> Page:
    return Page(request, db, now)


PageDep = Annotated[Page, Depends(_page)]


def _staff_page(page: PageDep) -> Page:
    if page.user is None:
        target = page.request.url.path
        if page.request.url.query:
            target += "?" + page.request.url.query
        raise HTTPException(
            status_code=303, headers={"Location": "/login?next=" + quote(target, safe="")}
        )
    return page


# A page for logged-in staff: anonymous visitors are sent to the login page.
StaffPageDep = Annotated[Page, Depends(_staff_page)]


async def _form(request: Request) -> AsyncIterator[FormData]:
    form = await request.form(max_files=20, max_fields=200)
    try:
        yield form
    finally:
        await form.close()  # uploaded files are spooled to disk: close them


FormDep = Annotated[FormData, Depends(_form)]


def text(form: FormData, name: str, default: str = "") -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else default
