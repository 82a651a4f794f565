"""Tables of the case loop: cases and their append-only timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from cityloop.cases.states import OPEN_CASE_SQL
from cityloop.db import Base, UtcDateTime
from cityloop.workflow import timeline


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        CheckConstraint("urgency IN ('A', 'B', 'C')", name="urgency"),
        Index("ix_cases_state_department", "state", "department_id"),
        Index("ix_cases_class_h3", "class_code", "h3_cell"),
        # The duplicate search of every report: open cases only, so it stays as small as the
        # city's open work however long the history (merged reports pile up at hot spots).
        Index(
            "ix_cases_open_class_h3",
            "class_code",
            "h3_cell",
            postgresql_where=text(OPEN_CASE_SQL),
            sqlite_where=text(OPEN_CASE_SQL),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket: Mapped[str] = mapped_column(String(20), unique=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True, default=None)
    # sha256 of the report the key was first sent with (intake.report_fingerprint): the same
    # key with another body is refused, not answered with this case.
    idempotency_fingerprint: Mapped[str | None] = mapped_column(String(64), default=None)
    source: Mapped[str] = mapped_column(String(24), index=True)
    # Indexed by ix_cases_class_h3, whose first column it is (one index less per insert).
    class_code: Mapped[str] = mapped_column(ForeignKey("problem_classes.code"))
    kind: Mapped[str] = mapped_column(String(12))
    # False while the class is only a guess from the text, until an operator files it.
    class_confirmed: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    description: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str | None] = mapped_column(String(200), default=None)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    h3_cell: Mapped[str] = mapped_column(String(16))
    unit_grid: Mapped[str | None] = mapped_column(String(15), index=True, default=None)
    resp_grid: Mapped[str | None] = mapped_column(String(20), default=None)
    community: Mapped[str | None] = mapped_column(String(12), index=True, default=None)
    street: Mapped[str | None] = mapped_column(String(9), index=True, default=None)
    district: Mapped[str] = mapped_column(String(6), index=True)
    urgency: Mapped[str] = mapped_column(String(1), default="C")
    state: Mapped[str] = mapped_column(String(20))  # indexed first in ix_cases_state_department
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id"), index=True, default=None
    )
    leader_assigned: Mapped[bool] = mapped_column(Boolean, default=False)
    component_id: Mapped[str | None] = mapped_column(
        ForeignKey("components.identifier"), default=None
    )
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), default=None)
    reporter_name: Mapped[str | None] = mapped_column(String(40), default=None)
    reporter_phone: Mapped[str | None] = mapped_column(String(30), default=None)
    reporter_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    filed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    received_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    stage: Mapped[str | None] = mapped_column(String(20), default=None)
    stage_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    stage_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None, index=True)
    warned_stage: Mapped[str | None] = mapped_column(String(20), default=None)
    overdue_stage: Mapped[str | None] = mapped_column(String(20), default=None)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    suspended_from: Mapped[str | None] = mapped_column(String(20), default=None)
    suspended_remaining_minutes: Mapped[float | None] = mapped_column(Float, default=None)
    postpone_request: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    result_method: Mapped[str | None] = mapped_column(String(12), default=None)
    check_passed: Mapped[bool | None] = mapped_column(Boolean, default=None)
    rework_count: Mapped[int] = mapped_column(Integer, default=0)
    satisfied: Mapped[bool | None] = mapped_column(Boolean, default=None)
    # The enforcement case opened from this case (R-HD-5); no foreign key, since the
    # enforcement case points back here and `enforcement` sits above `cases`.
    enforcement_case_id: Mapped[int | None] = mapped_column(Integer, default=None)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy reads it as is)


class CaseEvent(timeline.TimelineColumns, Base):
    """One line of a case's timeline. Rows are never updated; each carries the hash of the
    previous one so that a row changed behind the application's back is found (R-CL-5)."""

    __tablename__ = "case_events"
    __table_args__ = (UniqueConstraint("case_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Indexed by the unique (case_id, seq), whose first column it is.
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), default=None)


TIMELINE = timeline.register("case", CaseEvent)
