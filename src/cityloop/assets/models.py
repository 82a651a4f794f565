"""The component table."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from cityloop.db import Base

COMPONENT_STATUSES = ("完好", "破损", "丢失", "废弃", "移除")


class Component(Base):
    __tablename__ = "components"
    __table_args__ = (
        CheckConstraint("status IN ('完好', '破损', '丢失', '废弃', '移除')", name="status"),
    )

    identifier: Mapped[str] = mapped_column(String(17), primary_key=True)
    legacy_identifier: Mapped[str | None] = mapped_column(String(16), unique=True, default=None)
    class_code: Mapped[str] = mapped_column(ForeignKey("problem_classes.code"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    unit_grid: Mapped[str | None] = mapped_column(String(15), index=True, default=None)
    managing_department_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id"), default=None
    )
    owner_department_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id"), default=None
    )
    maintainer_department_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id"), default=None
    )
    responsible_person: Mapped[str | None] = mapped_column(String(40), default=None)
    phone: Mapped[str | None] = mapped_column(String(30), default=None)
    status: Mapped[str] = mapped_column(String(4), default="完好")
