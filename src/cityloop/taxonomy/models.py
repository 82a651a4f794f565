"""Tables of the taxonomy: classes, legacy aliases, stage time limits."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cityloop.db import Base


class ProblemClass(Base):
    __tablename__ = "problem_classes"
    __table_args__ = (
        CheckConstraint("kind IN ('component', 'event')", name="kind"),
        CheckConstraint("level IN ('major', 'minor')", name="level"),
        CheckConstraint("default_urgency IN ('A', 'B', 'C')", name="urgency"),
    )

    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    parent_code: Mapped[str | None] = mapped_column(
        ForeignKey("problem_classes.code"), index=True, default=None
    )
    level: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(String(80))
    matter_name: Mapped[str | None] = mapped_column(String(90), default=None)
    name_en: Mapped[str | None] = mapped_column(String(120), default=None)
    standard: Mapped[str] = mapped_column(String(40))
    default_urgency: Mapped[str] = mapped_column(String(1), default="C")
    handling_days: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    filing_standard: Mapped[str] = mapped_column(Text, default="")
    closure_standard: Mapped[str] = mapped_column(Text, default="")
    manual: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    @property
    def display_name(self) -> str:
        return self.matter_name or self.name


class ClassAlias(Base):
    """An older code (GB/T 30428.2 era, a city's legacy scheme) that means one current class."""

    __tablename__ = "class_aliases"

    scheme: Mapped[str] = mapped_column(String(40), primary_key=True)
    alias: Mapped[str] = mapped_column(String(16), primary_key=True)
    class_code: Mapped[str] = mapped_column(ForeignKey("problem_classes.code"), index=True)
    alias_name: Mapped[str] = mapped_column(String(80), default="")


class StageLimit(Base):
    """How long each stage of the loop may take, in working minutes (editable)."""

    __tablename__ = "stage_limits"

    stage: Mapped[str] = mapped_column(String(20), primary_key=True)
    label: Mapped[str] = mapped_column(String(20))
    working_minutes: Mapped[int] = mapped_column(Integer)


class CalendarOverride(Base):
    """A day the official calendar gets wrong for this city, or does not know yet (R-DIS-5)."""

    __tablename__ = "calendar_overrides"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    is_workday: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str] = mapped_column(String(100), default="")
