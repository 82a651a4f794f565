"""The worker's delivery job: claim due messages, send them, record the outcome.

Unlike the services, this job owns its transactions, like any edge (a request, a CLI
command): a webhook call can take seconds and must never run inside a transaction — on SQLite
that would hold the city's write lock for the whole call, on PostgreSQL row locks. So each
batch is claimed and committed first, each message is sent with no transaction open, and each
outcome is committed on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import httpx
from sqlalchemy.orm import Session, sessionmaker

from cityloop.db import begin_write
from cityloop.outbox import channels
from cityloop.outbox.service import MAX_ATTEMPTS, Delivery, SendResult, claim_due, record_result

TIMEOUT_SECONDS = 10.0
BATCH = 10
MAX_PER_RUN = 500

Sender = Callable[[str, bytes, dict[str, str]], SendResult]


def http_send(url: str, body: bytes, headers: dict[str, str]) -> SendResult:
    """POST the message; any 2xx is delivered, anything else is retried later."""
    try:
        with httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False) as client:
            response = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return SendResult(ok=False, error=f"{type(exc).__name__}: {exc}")
    if 200 <= response.status_code < 300:
        return SendResult(ok=True, status_code=response.status_code)
    return SendResult(
        ok=False,
        status_code=response.status_code,
        error=f"HTTP {response.status_code}: {response.text[:200]}",
    )


@dataclass
class DeliveryReport:
    delivered: int = 0
    retried: int = 0
    failed: int = 0

    @property
    def sent(self) -> int:
        return self.delivered + self.retried + self.failed


def deliver_due(
    factory: sessionmaker[Session],
    *,
    now: datetime,
    send: Sender = http_send,
    batch: int = BATCH,
    max_messages: int = MAX_PER_RUN,
    max_attempts: int = MAX_ATTEMPTS,
) -> DeliveryReport:
    """Deliver what is due at ``now`` (at most ``max_messages``), committing as it goes."""
    report = DeliveryReport()
    claimed = 0
    while claimed < max_messages:
        with factory() as session:
            begin_write(session)
            deliveries = claim_due(session, now, limit=min(batch, max_messages - claimed))
            session.commit()
        if not deliveries:
            break
        claimed += len(deliveries)
        for delivery in deliveries:
            result = _send_one(factory, delivery, send)
            with factory() as session:
                begin_write(session)
                outcome = record_result(
                    session, delivery.id, result, now, max_attempts=max_attempts
                )
                session.commit()
            if outcome == "delivered":
                report.delivered += 1
            elif outcome == "retry":
                report.retried += 1
            elif outcome == "failed":
                report.failed += 1
        # Claim again even after a short batch: a delivery may have let the next message
        # about the same case go.
    return report


def _send_one(factory: sessionmaker[Session], delivery: Delivery, send: Sender) -> SendResult:
    if delivery.channel == "webhook":
        return send(delivery.target_url, delivery.body, delivery.headers)
    channel = channels.get(delivery.channel)
    if channel is None:
        return SendResult(ok=False, error=f"no channel {delivery.channel!r} in this worker")
    try:
        with factory() as session:
            prepared = channel.prepare(session, delivery)
            session.rollback()
        if isinstance(prepared, SendResult):
            return prepared
        return channel.send(delivery, prepared)
    except Exception as exc:  # a channel's bug must not stop the other deliveries
        return SendResult(ok=False, error=f"{type(exc).__name__}: {exc}")
