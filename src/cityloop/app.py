"""Composition: build the FastAPI application from settings, an engine and a clock."""

from __future__ import annotations

import logging
import threading
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from cityloop import __version__
from cityloop.analytics.api import router as analytics_router
from cityloop.assets.api import router as assets_router
from cityloop.cases.api import router as cases_router
from cityloop.config import Settings, get_settings
from cityloop.db import make_engine, make_session_factory
from cityloop.documents import storage as document_storage
from cityloop.documents.api import router as documents_router
from cityloop.enforcement.api import router as enforcement_router
from cityloop.errors import STATUS_CODES, DomainError, ErrorOut
from cityloop.evaluation.api import router as evaluation_router
from cityloop.fleet.api import router as fleet_router
from cityloop.geocoding.api import router as geocoding_router
from cityloop.geocoding.service import GazetteerHolder
from cityloop.intake.api import router as intake_router
from cityloop.iot.api import router as iot_router
from cityloop.kit.clock import Clock
from cityloop.kit.heap import release_long_lived, settle_long_lived, tune_for_server
from cityloop.learning.api import router as learning_router
from cityloop.listeners import register_listeners
from cityloop.media import service as media_service
from cityloop.media.api import router as media_router
from cityloop.notifications.api import router as notifications_router
from cityloop.open311.api import router as open311_router
from cityloop.org.api import router as org_router
from cityloop.outbox.api import router as outbox_router
from cityloop.partners.api import router as partners_router
from cityloop.places.api import router as places_router
from cityloop.places.service import PlaceIndex
from cityloop.privacy.api import router as privacy_router
from cityloop.storage import StorageUnavailable, storage_from_settings
from cityloop.taxonomy.api import router as taxonomy_router
from cityloop.taxonomy.service import TimeRulesCache
from cityloop.web.api import router as web_router

log = logging.getLogger("cityloop.app")


class BodySizeLimit:
    """Refuse a request whose declared body is over the limit before reading any of it
    (a plain ASGI middleware: BaseHTTPMiddleware costs every request a task and a queue)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length")
            problem = None
            if length is not None:
                if not length.isdigit():
                    problem = (
                        400,
                        {
                            "detail": "Content-Length must be a number",
                            "code": "invalid",
                            "field": "content-length",
                        },
                    )
                elif int(length) > self.max_bytes:
                    problem = (
                        413,
                        {
                            "detail": f"request body of {int(length) // (1024 * 1024)} MB"
                            f" is over the {self.max_bytes // (1024 * 1024)} MB limit",
                            "code": "too_large",
                            "field": "body",
                        },
                    )
            if problem is not None:
                await JSONResponse(problem[1], status_code=problem[0])(scope, receive, send)
                return
        await self.app(scope, receive, send)


class PlaceIndexHolder:
    """Loads the grid index once, on first use, and hands the same one to every request.
    In a server process (`settle`), the loaded index is then kept out of the garbage
    collector's walks (kit.heap)."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory
        self._index: PlaceIndex | None = None
        self._lock = threading.Lock()
        self.settle = False  # create_server_app turns it on

    def __call__(self) -> PlaceIndex:
        if self._index is None:
            with self._lock:
                if self._index is None:
                    with self._factory() as session:
                        self._index = PlaceIndex.load(session)
                    if self.settle:
                        settle_long_lived()
        return self._index

    @property
    def needs_loading(self) -> bool:
        return self._index is None

    def reset(self) -> None:
        if self.settle and self._index is not None:
            release_long_lived()
        self._index = None


def _field_of(error: dict[str, Any]) -> str:
    loc = [
        str(part)
        for part in error.get("loc", ())
        if part not in ("body", "query", "path", "header")
    ]
    return ".".join(loc) or "body"


# The range of the Integer columns on PostgreSQL; SQLite stores up to 2**63 - 1.
_DB_INT_MAX = 2**31 - 1


def _unstorable_param(request: Request) -> tuple[str, str] | None:
    """("path" or "query", name) of the first parameter a database cannot store."""
    for where, items in (
        ("path", list(request.path_params.items())),
        ("query", request.query_params.multi_items()),
    ):
        for name, value in items:
            text = str(value)
            digits = text[1:] if text[:1] in "+-" else text
            if "\x00" in text or (digits.isdigit() and int(digits) > _DB_INT_MAX):
                return where, name
    return None


def create_server_app() -> FastAPI:
    """The factory `cityloop serve` gives uvicorn, one call per worker process: the
    application, plus the garbage-collector policy of a long-running server (kit.heap)."""
    tune_for_server()
    app = create_app()
    app.state.places.settle = True
    return app


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    session_factory: sessionmaker[Session] | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    register_listeners()
    if session_factory is None:
        engine = engine or make_engine(settings.database_url, echo=settings.sql_echo)
        session_factory = make_session_factory(engine)
    app = FastAPI(
        title="cityloop 数字城管",
        version=__version__,
        description=(
            "The closed loop of digital city management: report → accept/verify → file → "
            "dispatch → handle → check → close → evaluate. 数字化城市管理闭环平台。"
        ),
    )
    app.state.settings = settings
    # Refuses to build an app with no key, a weak one or a public one (org.keyring).
    app.state.keyring = settings.keyring()
    app.state.session_factory = session_factory
    app.state.clock = clock or Clock()
    app.state.places = PlaceIndexHolder(session_factory)
    app.state.gazetteer = GazetteerHolder()
    app.state.time_rules = TimeRulesCache(settings.timezone)
    # Documents go where the settings keep every stored file (storage/): local or S3.
    document_storage.use(storage_from_settings(settings))
    # Media too, when the settings name a shared store; else each caller's media directory.
    media_service.use(storage_from_settings(settings) if settings.storage_url else None)

    app.add_middleware(BodySizeLimit, max_bytes=int(settings.max_body_mb * 1024 * 1024))
    if settings.trusted_proxies.strip():
        # The same rule as uvicorn's, in the app: whatever server runs it (`cityloop serve`
        # also tells uvicorn), only the named proxies may say who the client is.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)

    @app.exception_handler(StaleDataError)
    def _stale(_request: Request, _exc: StaleDataError) -> JSONResponse:
        # A writer the row locks did not cover lost a race: the client may simply retry.
        return JSONResponse(
            {
                "detail": "the case changed while this request was saving; try again",
                "code": "conflict",
                "field": None,
            },
            status_code=409,
        )

    @app.exception_handler(DBAPIError)
    def _database_unavailable(_request: Request, exc: DBAPIError) -> JSONResponse:
        # The database went away (restart, failover, network) or stayed locked past the busy
        # timeout. The request did not finish, and may be sent again (reports with the same
        # Idempotency-Key). A lost connection has already invalidated the pool (db.py), so
        # the next request connects afresh: no pre-ping on every checkout.
        if not (isinstance(exc, OperationalError) or exc.connection_invalidated):
            raise exc
        log.warning("database unavailable: %s", (str(exc.orig).strip().splitlines() or ["?"])[0])
        return JSONResponse(
            {
                "detail": "the database is unavailable for a moment; try again",
                "code": "unavailable",
                "field": None,
            },
            status_code=503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(StorageUnavailable)
    def _storage_unavailable(_request: Request, exc: StorageUnavailable) -> JSONResponse:
        # The object store did not answer: the request's transaction rolls back, so no case
        # or media row names a file that was not kept; the client sends it again later.
        log.warning("storage unavailable: %s", exc)
        return JSONResponse(
            {
                "detail": "file storage is unavailable for a moment; try again",
                "code": "unavailable",
                "field": None,
            },
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(DataError)
    @app.exception_handler(OverflowError)
    def _unstorable(request: Request, exc: Exception) -> JSONResponse:
        # A value the validation let through but the database cannot hold: an id beyond its
        # integer columns, text with a NUL character (PostgreSQL). The client's mistake, not
        # the server's; the request's transaction is rolled back, nothing is kept.
        found = _unstorable_param(request)
        if isinstance(exc, OverflowError) and found is None and "SQLite" not in str(exc):
            raise exc
        log.info("refused an unstorable value: %s", str(exc).strip().splitlines()[0][:200])
        if found is not None and found[0] == "path":
            name = found[1]
            return JSONResponse(
                {
                    "detail": f"no {name} {request.path_params[name]!r}",
                    "code": "not_found",
                    "field": name,
                },
                status_code=404,
            )
        field = found[1] if found is not None else "body"
        return JSONResponse(
            {
                "detail": f"{field}: a number out of range or text with a NUL character",
                "code": "invalid",
                "field": field,
            },
            status_code=422,
        )

    @app.exception_handler(DomainError)
    def _domain_error(_request: Request, exc: DomainError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else {}
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        return JSONResponse(exc.as_dict(), status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        if first.get("type") == "json_invalid":
            # Not a value at fault but the body as a whole: a malformed request (400).
            return JSONResponse(
                {
                    "detail": f"the body is not valid JSON ({first.get('msg', 'decode error')} "
                    f"at character {first.get('loc', ('', '?'))[-1]})",
                    "code": "bad_request",
                    "field": "body",
                },
                status_code=400,
            )
        field = _field_of(first)
        message = f"{field}: {first.get('msg', 'invalid value')}"
        return JSONResponse(
            {
                "detail": message,
                "code": "invalid",
                "field": field,
                "errors": [{"field": _field_of(e), "message": e.get("msg")} for e in errors],
            },
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # The framework's own refusals (unknown path, method, malformed multipart, a body
        # over a route's cap) in the one error model; redirects (the console's login) pass.
        if exc.status_code < 400:
            return await http_exception_handler(request, exc)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            allowed = _allowed_methods(request)
            headers["Allow"] = ", ".join(allowed)
            if request.method == "OPTIONS":
                return Response(status_code=204, headers=headers)
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 405:
            detail = f"{request.method} is not allowed here; this path takes {headers['Allow']}"
        elif exc.status_code == 404 and detail == "Not Found":
            detail = f"no such path: {request.url.path}"
        body = {
            "detail": detail,
            "code": STATUS_CODES.get(exc.status_code, "error"),
            "field": "body" if exc.status_code in (400, 413) else None,
        }
        return JSONResponse(body, status_code=exc.status_code, headers=headers)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    for router in (
        org_router,
        intake_router,
        cases_router,
        enforcement_router,
        taxonomy_router,
        places_router,
        geocoding_router,
        assets_router,
        media_router,
        documents_router,
        partners_router,
        outbox_router,
        privacy_router,
        notifications_router,
        open311_router,
        iot_router,
        fleet_router,
        evaluation_router,
        analytics_router,
        learning_router,
        web_router,
    ):
        app.include_router(router)
    _publish_error_model(app)
    return app


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route takes on this path (Starlette's 405 names only the first
    route's, and each method of a path is a route of its own here)."""
    methods = {"OPTIONS"}
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        probe = {**request.scope, "method": method}
        if any(route.matches(probe)[0] == Match.FULL for route in request.app.router.routes):
            methods.add(method)
    return sorted(methods)


_ERROR_DESCRIPTIONS = {
    400: "malformed request: the body is not valid JSON or multipart",
    401: "no credentials, or a token that is expired or not ours (WWW-Authenticate: Bearer)",
    403: "the caller may not do this",
    404: "no such thing (or one the caller may not see)",
    409: "the record changed meanwhile or its state does not allow this; reload and retry",
    413: "the body is over the size limit",
    422: "a field, parameter or header is invalid: `field` names it",
    423: "the account is locked after failed logins (Retry-After)",
    429: "too many requests from this caller (Retry-After)",
    503: "the database is unavailable for a moment (Retry-After)",
}
_ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}


def _error_statuses(method: str, operation: dict[str, Any]) -> list[int]:
    """The error statuses an operation can answer, from what it takes."""
    statuses = {503}
    headers = {p.get("name", "").lower() for p in operation.get("parameters", [])}
    if operation.get("parameters") or operation.get("requestBody"):
        statuses |= {404, 422}
    if operation.get("requestBody"):
        statuses |= {400, 413}
    if operation.get("security") or "x-api-key" in headers:
        statuses |= {401, 403, 404}
    if method != "get":
        statuses |= {409, 429}
    if operation.get("operationId", "").startswith("token_"):
        statuses.add(423)
    return sorted(statuses)


# Open311's answers are XML or JSON as the path's format says; its errors are the spec's list.
_OPEN311_ERRORS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
        "required": ["code", "description"],
    },
}
_OPEN311_STATUSES = {
    400: "a parameter is missing or invalid (the spec's error list)",
    403: "no API key, or one that may not do this",
    404: "no such request, service or format",
    413: "the body is over the size limit",
}


def _open311_responses(responses: dict[str, Any]) -> None:
    responses.pop("422", None)  # Open311Route answers validation errors with 400
    for response in responses.values():
        content = response.setdefault("content", {})
        content.setdefault("text/xml", {"schema": {"type": "string"}})
    for status, description in _OPEN311_STATUSES.items():
        responses[str(status)] = {
            "description": description,
            "content": {
                "application/json": {"schema": _OPEN311_ERRORS},
                "text/xml": {"schema": {"type": "string"}},
            },
        }


def _publish_error_model(app: FastAPI) -> None:
    """The OpenAPI of this app, with ErrorOut documented once for every operation and every
    error status it can answer (routes added later get it too: it is computed from the
    routes when first asked). FastAPI's own HTTPValidationError is never sent, so it goes."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        error = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(error.pop("$defs", {}))
        schemas["ErrorOut"] = error
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        for path, item in schema.get("paths", {}).items():
            for method, operation in item.items():
                responses = operation.setdefault("responses", {})
                if path.startswith("/open311/"):
                    _open311_responses(responses)
                    statuses = [503]
                else:
                    # Statuses a route declared itself are sent in the same model.
                    declared = {int(k) for k in responses if k[:1] in "45" and k.isdigit()}
                    statuses = sorted(declared | set(_error_statuses(method, operation)))
                for status in statuses:
                    described = responses.get(str(status), {}).get("description")
                    responses[str(status)] = {
                        "description": described or _ERROR_DESCRIPTIONS.get(status, "error"),
                        "content": {"application/json": {"schema": _ERROR_REF}},
                    }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
