"""REST edge of the outbox: administrators see deliveries (failed ones first of all) and
retry them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from cityloop.deps import NowDep, SessionDep, UserDep
from cityloop.errors import Forbidden
from cityloop.org.models import User
from cityloop.outbox import service
from cityloop.outbox.schemas import OutboxMessageOut, OutboxPage

router = APIRouter(prefix="/api/v1", tags=["outbox 消息外发"])


def _require_admin(user: User) -> None:
    if user.role != "admin":
        raise Forbidden("only an administrator sees and retries outgoing deliveries")


@router.get("/outbox", response_model=OutboxPage, summary="Outgoing deliveries 外发消息 (admin)")
def list_outbox(
    session: SessionDep,
    user: UserDep,
    status: Annotated[
        str | None, Query(description="pending, delivered or failed (given up, R-IN-5)")
    ] = None,
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> OutboxPage:
    _require_admin(user)
    items, total = service.list_messages(session, status=status, page=page, page_size=page_size)
    return OutboxPage(
        items=[OutboxMessageOut.model_validate(m, from_attributes=True) for m in items],
        total=total,
        page=page,
        page_size=page_size,
        counts=service.counts(session),
    )


@router.post(
    "/outbox/{message_id}/retry",
    response_model=OutboxMessageOut,
    summary="Retry a failed delivery 重新外发 (admin)",
    responses={404: {"description": "no such message"}, 409: {"description": "not failed"}},
)
def retry_outbox(
    message_id: int, session: SessionDep, user: UserDep, now: NowDep
) -> OutboxMessageOut:
    _require_admin(user)
    message = service.retry(session, message_id, now)
    return OutboxMessageOut.model_validate(message, from_attributes=True)
