"""Domain errors that carry their HTTP status, so every edge reports them the same way."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DomainError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def as_dict(self) -> dict[str, str | None]:
        return {"detail": self.message, "code": self.code, "field": self.field}


class ValidationFailed(DomainError):
    status_code = 422
    code = "invalid"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"


class Unauthorized(DomainError):
    status_code = 401
    code = "unauthorized"


class Conflict(DomainError):
    """The case moved on: stale version, or an action the current state does not allow."""

    status_code = 409
    code = "conflict"


class TooManyRequests(DomainError):
    status_code = 429
    code = "too_many_requests"

    def __init__(
        self, message: str, *, field: str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message, field=field)
        # Seconds until the caller may try again: sent as the Retry-After header.
        self.retry_after = retry_after


class Locked(TooManyRequests):
    """An account locked after repeated failed logins, until the lock ends or an administrator
    lifts it."""

    status_code = 423
    code = "locked"


# -- the one error body every API error is sent in, as the OpenAPI publishes it ----------------
class FieldError(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str
    message: str


class ErrorOut(BaseModel):
    """Every 4xx and 5xx of the API (Open311's routes excepted: the spec gives them its own)."""

    model_config = ConfigDict(extra="forbid")

    detail: str = Field(description="what was wrong, for a person to read")
    code: str = Field(
        description="for a program: invalid, not_found, unauthorized, forbidden, conflict, "
        "too_many_requests, locked, too_large, bad_request, method_not_allowed, unavailable"
    )
    field: str | None = Field(
        default=None, description="the field, parameter or header at fault, when there is one"
    )
    errors: list[FieldError] | None = Field(
        default=None, description="422 of request validation: every field at fault"
    )


# The code of an HTTP status when no domain error gave one (HTTP exceptions of the framework).
STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid",
    429: "too_many_requests",
    503: "unavailable",
}
