"""Tables of intake: hotline calls (consultations have no case) and inspectors' positions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cityloop.db import Base, UtcDateTime


class HotlineCall(Base):
    __tablename__ = "hotline_calls"
    __table_args__ = (
        CheckConstraint("kind IN ('consultation', 'case')", name="kind"),
        CheckConstraint(
            "status IN ('answered', 'case_created', 'waiting_location')", name="status"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    line: Mapped[str] = mapped_column(String(10))
    kind: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(20))
    caller_name: Mapped[str | None] = mapped_column(String(40), default=None)
    caller_phone: Mapped[str] = mapped_column(String(30))
    text: Mapped[str] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(String(200), default=None)
    class_code: Mapped[str | None] = mapped_column(String(8), default=None)
    answer: Mapped[str | None] = mapped_column(Text, default=None)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), default=None, index=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class InspectorPosition(Base):
    """Where an inspector's phone was (R-IN-2, R-AN-4)."""

    __tablename__ = "inspector_positions"
    __table_args__ = (Index("ix_inspector_positions_user_at", "user_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float, default=None)
