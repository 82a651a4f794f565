"""The outbox table: one row per message to deliver."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cityloop.db import Base, UtcDateTime

STATUSES = ("pending", "delivered", "failed")


class OutboxMessage(Base):
    """A message waiting to leave, sent, or given up on (``failed`` stays visible until an
    administrator retries it)."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
        # The worker's claim: pending rows whose next attempt is due, oldest first.
        Index("ix_outbox_messages_due", "status", "next_attempt_at"),
        # Messages with the same ordering key leave one after another (a case's pushes).
        Index("ix_outbox_messages_ordering", "ordering_key", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[str] = mapped_column(String(40))
    # Which plug-in sends it (`outbox.channels`): a plain webhook POST to target_url, or a
    # notification channel, for which target_url names the recipient ("user:5", "case:7")
    # and the worker reads the address when it sends.
    channel: Mapped[str] = mapped_column(String(16), default="webhook", server_default="webhook")
    ordering_key: Mapped[str | None] = mapped_column(String(80), default=None)
    target_url: Mapped[str] = mapped_column(String(300))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    failed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
