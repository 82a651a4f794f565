"""Writing messages into the outbox, claiming the due ones, recording what happened to them,
and the administrator's view (failed deliveries, retry). Every function only flushes: the
caller owns the transaction.

Delivery is at least once: a claimed message is leased (its next attempt pushed past the
lease) and committed before it is sent, so a worker that dies mid-send leaves it to be sent
again when the lease runs out. Receivers deduplicate by the ``X-Cityloop-Delivery`` header.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, func, insert, select
from sqlalchemy.orm import Session, aliased

from cityloop.errors import Conflict, NotFound, ValidationFailed
from cityloop.outbox.models import STATUSES, OutboxMessage

MAX_ATTEMPTS = 8
# 30 s, 1 min, 2 min, … capped at 6 h: eight attempts span about an hour.
BASE_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=6)
# Longer than a batch of sends can take (batch × HTTP timeout), so that no second worker
# takes a message while the first one is still sending it.
LEASE = timedelta(minutes=5)
ERROR_CHARS = 500


@dataclass(frozen=True)
class Delivery:
    """A claimed message, detached from the session so that it can be sent outside any
    transaction."""

    id: int
    topic: str
    target_url: str
    body: bytes
    attempt: int
    channel: str = "webhook"
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Content-Type": "application/json; charset=utf-8",
            "X-Cityloop-Delivery": str(self.id),
            "X-Cityloop-Topic": self.topic,
            "X-Cityloop-Attempt": str(self.attempt),
        }


@dataclass(frozen=True)
class SendResult:
    ok: bool
    status_code: int | None = None
    error: str | None = None
    # A refusal that no retry will change (the gateway's 4xx: a bad number, a template it
    # does not know): the message fails at once instead of taking every attempt.
    permanent: bool = False


def backoff(attempts: int) -> timedelta:
    """How long to wait after the given number of failed attempts."""
    delay = BASE_DELAY * (2 ** max(attempts - 1, 0))
    return min(delay, MAX_DELAY)


def enqueue(
    session: Session,
    *,
    topic: str,
    target_url: str,
    payload: dict[str, Any],
    now: datetime,
    ordering_key: str | None = None,
    channel: str = "webhook",
    not_before: datetime | None = None,
) -> OutboxMessage:
    """Add a message in the caller's transaction: it leaves only if that transaction commits
    (and not before ``not_before``, e.g. an SMS held through the night)."""
    message = OutboxMessage(
        topic=topic,
        channel=channel,
        ordering_key=ordering_key,
        target_url=target_url,
        payload=payload,
        status="pending",
        created_at=now,
        attempts=0,
        next_attempt_at=not_before or now,
    )
    session.add(message)
    return message


def message_row(
    *,
    topic: str,
    target_url: str,
    payload: dict[str, Any],
    now: datetime,
    ordering_key: str | None = None,
    channel: str = "webhook",
    not_before: datetime | None = None,
) -> dict[str, Any]:
    """A message as a plain row, for `enqueue_rows`."""
    return {
        "topic": topic,
        "channel": channel,
        "ordering_key": ordering_key,
        "target_url": target_url,
        "payload": payload,
        "status": "pending",
        "created_at": now,
        "attempts": 0,
        "next_attempt_at": not_before or now,
        "delivered_at": None,
        "failed_at": None,
        "last_status_code": None,
        "last_error": None,
    }


def enqueue_rows(session: Session, rows: list[dict[str, Any]]) -> None:
    """Add several messages in one INSERT, in the caller's transaction: a listener writing
    for every step of the loop needs none of the unit of work's bookkeeping (rows made with
    `message_row`)."""
    if rows:
        session.execute(_INSERT_MESSAGE, rows)


_INSERT_MESSAGE = insert(cast(Table, OutboxMessage.__table__))


def claim_due(
    session: Session, now: datetime, *, limit: int = 10, lease: timedelta = LEASE
) -> list[Delivery]:
    """Take up to ``limit`` due messages and lease them; the caller commits before sending.

    A message waits while an earlier message with the same ordering key is still pending, so
    the pushes about one case arrive in the order they happened. On PostgreSQL, several
    workers claim at once without taking the same rows (``FOR UPDATE SKIP LOCKED``)."""
    earlier = aliased(OutboxMessage)
    blocked = (
        select(earlier.id)
        .where(
            earlier.ordering_key == OutboxMessage.ordering_key,
            earlier.id < OutboxMessage.id,
            earlier.status == "pending",
        )
        .exists()
    )
    query = (
        select(OutboxMessage)
        .where(
            OutboxMessage.status == "pending",
            OutboxMessage.next_attempt_at <= now,
            ~and_(OutboxMessage.ordering_key.is_not(None), blocked),
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=OutboxMessage)
        .execution_options(populate_existing=True)
    )
    deliveries = []
    for message in session.scalars(query).all():
        message.attempts += 1
        message.next_attempt_at = now + lease
        deliveries.append(
            Delivery(
                id=message.id,
                topic=message.topic,
                target_url=message.target_url,
                body=json.dumps(message.payload, ensure_ascii=False).encode("utf-8"),
                attempt=message.attempts,
                channel=message.channel,
                payload=dict(message.payload),
            )
        )
    session.flush()
    return deliveries


def record_result(
    session: Session,
    message_id: int,
    result: SendResult,
    now: datetime,
    *,
    max_attempts: int = MAX_ATTEMPTS,
) -> str:
    """Mark a sent message delivered, or schedule its retry, or give up on it.

    Returns ``delivered``, ``retry``, ``failed`` or ``skipped`` (the row is gone or no longer
    pending, e.g. an administrator acted on it meanwhile)."""
    message = session.get(OutboxMessage, message_id, with_for_update=True)
    if message is None or message.status != "pending":
        return "skipped"
    message.last_status_code = result.status_code
    if result.ok:
        message.status = "delivered"
        message.delivered_at = now
        message.last_error = None
        outcome = "delivered"
    else:
        message.last_error = (result.error or "delivery failed")[:ERROR_CHARS]
        if message.attempts >= max_attempts or result.permanent:
            message.status = "failed"
            message.failed_at = now
            outcome = "failed"
        else:
            message.next_attempt_at = now + backoff(message.attempts)
            outcome = "retry"
    session.flush()
    return outcome


def list_messages(
    session: Session, *, status: str | None, page: int, page_size: int
) -> tuple[list[OutboxMessage], int]:
    """The administrator's view, newest first."""
    query = select(OutboxMessage)
    if status is not None:
        if status not in STATUSES:
            raise ValidationFailed(f"status must be one of {', '.join(STATUSES)}", field="status")
        query = query.where(OutboxMessage.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = session.scalars(
        query.order_by(OutboxMessage.id.desc()).offset((page - 1) * page_size).limit(page_size)
    ).all()
    return list(items), total


def counts(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    ).all()
    found = {status: int(count) for status, count in rows}
    return {status: found.get(status, 0) for status in STATUSES}


def retry(session: Session, message_id: int, now: datetime) -> OutboxMessage:
    """Give a failed message a fresh set of attempts, due at once."""
    message = session.get(OutboxMessage, message_id, with_for_update=True)
    if message is None:
        raise NotFound(f"outbox message {message_id} not found")
    if message.status != "failed":
        raise Conflict(
            f"only a failed message can be retried; this one is {message.status}", field="status"
        )
    message.status = "pending"
    message.attempts = 0
    message.failed_at = None
    message.next_attempt_at = now
    session.flush()
    return message
