"""Tables of partner platforms: the partners and the link from their ticket to our case."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cityloop.db import Base, UtcDateTime


class Partner(Base):
    """Another platform allowed to forward reports: 12345, 110, the public-safety platform,
    an Open311 client. Its API key is stored only as a SHA-256 digest: keys are long random
    strings, so a fast hash is enough and keeps the per-request check to one indexed read."""

    __tablename__ = "partners"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    source: Mapped[str] = mapped_column(String(24))
    key_digest: Mapped[str] = mapped_column(String(64), unique=True)
    # The last characters of the key, so that an administrator can tell keys apart; empty
    # once the key is revoked.
    key_hint: Mapped[str] = mapped_column(String(8))
    webhook_url: Mapped[str | None] = mapped_column(String(300), default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PartnerTicket(Base):
    """A partner's ticket and the case it became; status pushes find their way back here."""

    __tablename__ = "partner_tickets"
    __table_args__ = (UniqueConstraint("partner_id", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    # None for Open311 requests, which carry no ticket of their own.
    external_id: Mapped[str | None] = mapped_column(String(100), default=None)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), unique=True)
    # Links to the partner's own photos (Open311 media_url): the case's photos are media
    # uploaded here, which a partner cannot do, so its links stay with its ticket.
    media_urls: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
