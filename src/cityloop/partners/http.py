"""A route class that refuses oversized request bodies before reading them whole.

A declared ``Content-Length`` over the limit is refused before a byte of the body is read; a
body without one (chunked) is counted as it streams in and refused as soon as it passes the
limit. The refusal is a 413 in the project's error shape, naming the field ``body``; a
subclass can render errors its own way (the Open311 adapter does).

FastAPI's own ``max_body_size`` does the same counting but answers in plain text, and a
plain-text body is what a partner's error handling can least make sense of.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

DEFAULT_MAX_BODY = 64 * 1024


class BodyTooLarge(HTTPException):
    """An HTTPException so that FastAPI's body reader lets it through unchanged."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            status_code=413,
            detail=f"the request body is larger than {limit // 1024} KiB; nothing was saved",
        )


class _CappedRequest(Request):
    def __init__(self, request: Request, limit: int) -> None:
        super().__init__(request.scope, request.receive, request._send)
        self._limit = limit

    async def stream(self) -> AsyncGenerator[bytes, None]:
        total = 0
        async for chunk in super().stream():
            total += len(chunk)
            if total > self._limit:
                raise BodyTooLarge(self._limit)
            yield chunk


class CappedBodyRoute(APIRoute):
    """Set ``max_body`` on a subclass to change the limit (bytes)."""

    max_body: int = DEFAULT_MAX_BODY

    def error_response(self, request: Request, exc: Exception) -> Response | None:
        """The response for an error raised while handling the request; None re-raises it
        to the application's handlers."""
        if isinstance(exc, BodyTooLarge):
            return JSONResponse(
                {"detail": exc.detail, "code": "too_large", "field": "body"}, status_code=413
            )
        return None

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        limit = self.max_body

        async def capped(request: Request) -> Response:
            try:
                declared = request.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > limit:
                    raise BodyTooLarge(limit)
                return await handler(_CappedRequest(request, limit))
            except Exception as exc:
                response = self.error_response(request, exc)
                if response is None:
                    raise
                return response

        return capped
