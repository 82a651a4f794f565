"""What the outbox's administrator API reads and writes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class OutboxMessageOut(BaseModel):
    id: int
    topic: str
    channel: str
    ordering_key: str | None
    target_url: str
    payload: dict[str, Any]
    status: str
    created_at: datetime
    attempts: int
    next_attempt_at: datetime
    delivered_at: datetime | None
    failed_at: datetime | None
    last_status_code: int | None
    last_error: str | None


class OutboxPage(BaseModel):
    items: list[OutboxMessageOut]
    total: int
    page: int
    page_size: int
    counts: dict[str, int]
