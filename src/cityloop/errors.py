"""Domain errors that carry their HTTP status, so every edge reports them the same way."""

from __future__ import annotations


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
