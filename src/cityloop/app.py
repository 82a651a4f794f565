"""Composition: build the FastAPI application from settings, an engine and a clock."""

from __future__ import annotations

import logging
import threading
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError
from starlette.types import ASGIApp, Receive, Scope, Send

from cityloop import __version__
from cityloop.analytics.api import router as analytics_router
from cityloop.assets.api import router as assets_router
from cityloop.cases.api import router as cases_router
from cityloop.config import Settings, get_settings
from cityloop.db import make_engine, make_session_factory
from cityloop.errors import DomainError
from cityloop.evaluation.api import router as evaluation_router
from cityloop.fleet.api import router as fleet_router
from cityloop.geocoding.api import router as geocoding_router
from cityloop.geocoding.service import GazetteerHolder
from cityloop.intake.api import router as intake_router
from cityloop.iot.api import router as iot_router
from cityloop.kit.clock import Clock
from cityloop.kit.heap import release_long_lived, settle_long_lived, tune_for_server
from cityloop.media.api import router as media_router
from cityloop.open311.api import router as open311_router
from cityloop.org.api import router as org_router
from cityloop.outbox.api import router as outbox_router
from cityloop.partners.api import router as partners_router
from cityloop.places.api import router as places_router
from cityloop.places.service import PlaceIndex
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

    app.add_middleware(BodySizeLimit, max_bytes=int(settings.max_body_mb * 1024 * 1024))

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

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    for router in (
        org_router,
        intake_router,
        cases_router,
        taxonomy_router,
        places_router,
        geocoding_router,
        assets_router,
        media_router,
        partners_router,
        outbox_router,
        open311_router,
        iot_router,
        fleet_router,
        evaluation_router,
        analytics_router,
        web_router,
    ):
        app.include_router(router)
    return app
