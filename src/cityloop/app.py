"""Composition: build the FastAPI application from settings, an engine and a clock."""

from __future__ import annotations

import threading
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from cityloop import __version__
from cityloop.assets.api import router as assets_router
from cityloop.cases.api import router as cases_router
from cityloop.config import Settings, get_settings
from cityloop.db import make_engine, make_session_factory
from cityloop.errors import DomainError
from cityloop.intake.api import router as intake_router
from cityloop.kit.clock import Clock
from cityloop.media.api import router as media_router
from cityloop.org.api import router as org_router
from cityloop.places.api import router as places_router
from cityloop.places.service import PlaceIndex
from cityloop.taxonomy.api import router as taxonomy_router


class PlaceIndexHolder:
    """Loads the grid index once, on first use, and hands the same one to every request."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory
        self._index: PlaceIndex | None = None
        self._lock = threading.Lock()

    def __call__(self) -> PlaceIndex:
        if self._index is None:
            with self._lock:
                if self._index is None:
                    with self._factory() as session:
                        self._index = PlaceIndex.load(session)
        return self._index

    def reset(self) -> None:
        self._index = None


def _field_of(error: dict[str, Any]) -> str:
    loc = [
        str(part)
        for part in error.get("loc", ())
        if part not in ("body", "query", "path", "header")
    ]
    return ".".join(loc) or "body"


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
    app.state.session_factory = session_factory
    app.state.clock = clock or Clock()
    app.state.places = PlaceIndexHolder(session_factory)

    max_body = int(settings.max_body_mb * 1024 * 1024)

    @app.middleware("http")
    async def _refuse_oversized_bodies(request: Request, call_next: Any) -> Any:
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return JSONResponse({"detail": "Content-Length must be a number", "code": "invalid",
                                     "field": "content-length"}, status_code=400)
            if int(length) > max_body:
                return JSONResponse(
                    {"detail": f"request body of {int(length) // (1024 * 1024)} MB is over the "
                               f"{settings.max_body_mb:g} MB limit",
                     "code": "too_large", "field": "body"}, status_code=413)
        return await call_next(request)

    @app.exception_handler(DomainError)
    def _domain_error(_request: Request, exc: DomainError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
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
        assets_router,
        media_router,
    ):
        app.include_router(router)
    return app
