"""The media table: one row per stored file."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cityloop.db import Base, UtcDateTime


class Media(Base):
    __tablename__ = "media"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # photo | voice
    content_type: Mapped[str] = mapped_column(String(40))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    width: Mapped[int | None] = mapped_column(Integer, default=None)
    height: Mapped[int | None] = mapped_column(Integer, default=None)
    original_name: Mapped[str] = mapped_column(String(120), default="")
    stored_name: Mapped[str] = mapped_column(String(80))
    taken_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    exif_lon: Mapped[float | None] = mapped_column(Float, default=None)
    exif_lat: Mapped[float | None] = mapped_column(Float, default=None)
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
