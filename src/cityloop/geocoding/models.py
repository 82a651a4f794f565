"""The gazetteer table."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cityloop.db import Base


class AddressPoint(Base):
    __tablename__ = "address_points"
    __table_args__ = (CheckConstraint("kind IN ('doorplate', 'poi', 'place')", name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(120))
    # The name without city/district prefixes and punctuation: what queries are matched on.
    normalized: Mapped[str] = mapped_column(String(120), index=True)
    district: Mapped[str | None] = mapped_column(String(6), default=None, index=True)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
