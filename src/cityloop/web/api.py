"""The console's router: login, the home that sends each role to its desk, the static files
(served by the app itself: no CDN), photos for pages, and the pages of `desks`, `mobile`,
`screen`, `admin` (and `admin_org`, `admin_devices`, `admin_places`), `evaluation_pages` and
`hotline_pages`. Pages stay out of the OpenAPI schema: the API is `/api/v1`."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse, Response

from cityloop.errors import Locked, NotFound, TooManyRequests, Unauthorized
from cityloop.media.api import media_response, visible_media
from cityloop.org import throttle
from cityloop.web import (
    admin,
    admin_devices,
    admin_documents,
    admin_org,
    admin_places,
    desks,
    enforcement_pages,
    evaluation_pages,
    fleet_pages,
    hotline_pages,
    learning_pages,
    mobile,
    screen,
)
from cityloop.web.notifications import pages as notification_pages
from cityloop.web.page import HOME_BY_ROLE, STATIC, FormDep, Page, PageDep, StaffPageDep, text

router = APIRouter(include_in_schema=False)

_STATIC_ROOT = STATIC.resolve()
_STATIC_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}


def _safe_next(target: str) -> str:
    """Only a path on this site (no scheme, no host, no //): an open redirect otherwise."""
    parts = urlsplit(target)
    if not target.startswith("/") or target.startswith("//") or parts.scheme or parts.netloc:
        return ""
    return target


@router.get("/")
def home(page: PageDep) -> Response:
    if page.user is None:
        return page.redirect("/login")
    return page.redirect(HOME_BY_ROLE.get(page.user.role, "/login"))


def _login_page(
    page: Page, values: dict[str, str], errors: dict[str, str], status_code: int = 200
) -> Response:
    return page.render("login.html", status_code, values=values, errors=errors)


@router.get("/login")
def login_form(page: PageDep, next: str = "") -> Response:
    return _login_page(page, {"next": _safe_next(next)}, {})


@router.post("/login")
def login(page: PageDep, form: FormDep) -> Response:
    values = {"username": text(form, "username"), "next": _safe_next(text(form, "next"))}
    if not page.csrf_ok(form):
        return _login_page(page, values, {"_form": page.t("csrf_failed")}, 403)
    password = form.get("password")
    errors = {}
    if not values["username"]:
        errors["username"] = page.t("required")
    if not isinstance(password, str) or not password:
        errors["password"] = page.t("required")
    if errors:
        return _login_page(page, values, errors, 422)
    try:
        user = throttle.login(
            page.db,
            values["username"],
            str(password),
            address=page.request.client.host if page.request.client else "unknown",
            now=page.now,
            policy=throttle.LoginPolicy.of(page.settings),
        )
    except Unauthorized:
        return _login_page(page, values, {"password": page.t("wrong_login")}, 401)
    except TooManyRequests as exc:  # and Locked: the page's words, the API's status and wait
        key = "login_locked" if isinstance(exc, Locked) else "login_throttled"
        wait = exc.retry_after or 60
        message = page.t(key).format(minutes=max(1, -(-wait // 60)))
        response = _login_page(page, values, {"_form": message}, exc.status_code)
        response.headers["Retry-After"] = str(wait)
        return response
    page.login(user)
    return page.redirect(values["next"] or HOME_BY_ROLE.get(user.role, "/"))


@router.post("/logout")
def logout(page: PageDep, form: FormDep) -> Response:
    if not page.csrf_ok(form):
        return page.csrf_refused()
    page.logout()
    return page.redirect("/login")


@router.get("/web/static/{path:path}")
def static(path: str) -> Response:
    """The console's own CSS/JS and the vendored libraries (leaflet, leaflet.heat, echarts,
    htmx) installed by scripts/install_web_assets.sh."""
    target = (_STATIC_ROOT / path).resolve()
    if not target.is_relative_to(_STATIC_ROOT) or not target.is_file():
        return Response("not found", status_code=404, media_type="text/plain")
    vendored = Path("vendor") in target.relative_to(_STATIC_ROOT).parents
    return FileResponse(
        target,
        media_type=_STATIC_TYPES.get(target.suffix, "application/octet-stream"),
        # Vendored files are pinned; the console's own may change with a release.
        headers={"Cache-Control": "public, max-age=86400" if vendored else "no-cache"},
    )


@router.get("/web/media/{media_id}")
def media_file(media_id: str, page: StaffPageDep) -> Response:
    """A case photo for staff pages (the session cookie stands for the bearer token)."""
    assert page.user is not None  # a staff page
    try:
        row = visible_media(page.db, page.user, media_id)
    except NotFound as exc:
        return page.error(404, exc.message)
    try:
        return media_response(page.settings.media_dir, row)
    except NotFound as exc:
        return page.error(404, exc.message)


@router.get("/favicon.ico")
def favicon() -> Response:
    return RedirectResponse("/web/static/img/favicon.svg", status_code=308)


for _sub in (
    desks.router,
    mobile.router,
    screen.router,
    admin.router,
    evaluation_pages.router,
    hotline_pages.router,
    admin_org.router,
    admin_devices.router,
    admin_places.router,
    admin_documents.router,
    notification_pages.router,
    enforcement_pages.router,
    learning_pages.router,
    fleet_pages.router,
):
    router.include_router(_sub)
