"""Tables of evaluation: the editable model, and the rollups derived from the case timeline.

The rollups hold nothing of their own: every row is a pure function of one case's timeline
(`facts.derive`), rebuilt whenever that case gets a new event (`rollup.refresh`). Deleting
them loses nothing; `rollup.rebuild` makes them again.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Float, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from cityloop.db import Base, UtcDateTime


class EvaluationSetting(Base):
    """One key of the evaluation model (weights, bands, deductions, …); see `scoring`."""

    __tablename__ = "evaluation_settings"

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str] = mapped_column(String(60), default="")


class CaseFact(Base):
    """One row per case: where and what it is, when it was reported, filed, where it is now."""

    __tablename__ = "evaluation_case_facts"
    __table_args__ = (
        # Covers the heat map's month query (no filter): an index-only scan on PostgreSQL.
        Index(
            "ix_evaluation_case_facts_created_h3",
            "created_at",
            "h3_cell",
            "street",
            "community",
        ),
        # Filings by unit grid read from the index alone.
        Index("ix_evaluation_case_facts_filed_at", "filed_at", "unit_grid", "source"),
        Index("ix_evaluation_case_facts_state", "state"),
        # The verifications and checks still waiting: few rows among millions.
        Index("ix_evaluation_case_facts_stage_at", "state_stage", "state_at"),
    )

    case_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    source: Mapped[str] = mapped_column(String(24))
    class_code: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(12))
    district: Mapped[str] = mapped_column(String(6))
    street: Mapped[str | None] = mapped_column(String(9))
    community: Mapped[str | None] = mapped_column(String(12))
    resp_grid: Mapped[str | None] = mapped_column(String(20))
    unit_grid: Mapped[str | None] = mapped_column(String(15))
    h3_cell: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_month: Mapped[int] = mapped_column(Integer)  # yyyymm, local time
    local_day: Mapped[date] = mapped_column(Date)
    local_hour: Mapped[int] = mapped_column(SmallInteger)
    local_weekday: Mapped[int] = mapped_column(SmallInteger)  # Monday = 0
    reporter_id: Mapped[int | None] = mapped_column(Integer)
    born_state: Mapped[str] = mapped_column(String(20))
    filed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    filed_month: Mapped[int | None] = mapped_column(Integer)
    filed_by: Mapped[int | None] = mapped_column(Integer)
    rejected_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    merged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    voided_after_filing: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(20))
    state_at: Mapped[datetime] = mapped_column(UtcDateTime)
    state_stage: Mapped[str | None] = mapped_column(String(20))
    state_deadline: Mapped[datetime | None] = mapped_column(UtcDateTime)
    department_id: Mapped[int | None] = mapped_column(Integer, index=True)
    last_event_id: Mapped[int] = mapped_column(Integer)


class EventFact(Base):
    """One row per timeline event, with what the timeline implies at that moment: the stage
    the event ended and whether it ended it in time, the deadline in force, the department it
    counts against, and the case's place and class (so that no query needs a join)."""

    __tablename__ = "evaluation_event_facts"
    __table_args__ = (
        # Closures by unit grid (and any action by time) read from the index alone.
        Index(
            "ix_evaluation_event_facts_action_at",
            "action",
            "at",
            "unit_grid",
            "flag",
            "handled_on_time",
            "method",
        ),
        Index("ix_evaluation_event_facts_at", "at"),
        Index("ix_evaluation_event_facts_stage_entered", "stage", "stage_entered_at"),
    )

    event_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    case_id: Mapped[int] = mapped_column(Integer, index=True)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    local_day: Mapped[date] = mapped_column(Date)
    month: Mapped[int] = mapped_column(Integer)  # yyyymm of `at`, local time
    action: Mapped[str] = mapped_column(String(24))
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_role: Mapped[str] = mapped_column(String(20))
    department_id: Mapped[int | None] = mapped_column(Integer)
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    # The stage this event ended (state changes), or the stage a clock note is about.
    stage: Mapped[str | None] = mapped_column(String(20))
    stage_entered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    entered_month: Mapped[int | None] = mapped_column(Integer)
    stage_deadline: Mapped[datetime | None] = mapped_column(UtcDateTime)
    stage_minutes: Mapped[float | None] = mapped_column(Float)
    on_time: Mapped[bool | None] = mapped_column(Boolean)
    # Per action: close → payload on_time; submit_result → the desk accepted it;
    # dispatch → the department returned it; verify → confirmed; report_check → passed;
    # return_visit → satisfied.
    flag: Mapped[bool | None] = mapped_column(Boolean)
    # An acceptance decision (send_to_verify, file, reject, merge): the actor's first on the
    # case, so that 受理数 counts cases, not clicks.
    first_by_actor: Mapped[bool | None] = mapped_column(Boolean)
    handled_on_time: Mapped[bool | None] = mapped_column(Boolean)
    method: Mapped[str | None] = mapped_column(String(12))
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    source: Mapped[str] = mapped_column(String(24))
    class_code: Mapped[str] = mapped_column(String(8))
    district: Mapped[str] = mapped_column(String(6))
    street: Mapped[str | None] = mapped_column(String(9))
    community: Mapped[str | None] = mapped_column(String(12))
    resp_grid: Mapped[str | None] = mapped_column(String(20))
    unit_grid: Mapped[str | None] = mapped_column(String(15))


class HoldFact(Base):
    """A stretch of time during which one department held a case under one handling deadline.

    Opened by dispatch, pass_down, assign_proxy, rework, an unsatisfied return visit, an
    approved postponement or a resume with a deadline; ended by the next of those, a return,
    a suspension or the close."""

    __tablename__ = "evaluation_hold_facts"
    __table_args__ = (Index("ix_evaluation_hold_facts_due_at", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(Integer, index=True)
    department_id: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    end_action: Mapped[str | None] = mapped_column(String(24))
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    submitted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    submitted_on_time: Mapped[bool | None] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(24))
    class_code: Mapped[str] = mapped_column(String(8))
    district: Mapped[str] = mapped_column(String(6))
    street: Mapped[str | None] = mapped_column(String(9))
    community: Mapped[str | None] = mapped_column(String(12))
    resp_grid: Mapped[str | None] = mapped_column(String(20))
    unit_grid: Mapped[str | None] = mapped_column(String(15))


class CubeRow(Base):
    """Monthly sums of the fact rows by the keys one indicator groups by (`cube.SPECS`): a
    month report reads a few thousand of these instead of every fact of the month."""

    __tablename__ = "evaluation_cube"
    __table_args__ = (Index("ix_evaluation_cube_spec_month", "spec", "month", "k1", "k2", "k3"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    spec: Mapped[str] = mapped_column(String(24))
    month: Mapped[int] = mapped_column(Integer)  # yyyymm
    k1: Mapped[str] = mapped_column(String(24), default="")
    k2: Mapped[str] = mapped_column(String(24), default="")
    k3: Mapped[str] = mapped_column(String(24), default="")
    k4: Mapped[str] = mapped_column(String(24), default="")
    k5: Mapped[str] = mapped_column(String(24), default="")
    k6: Mapped[str] = mapped_column(String(24), default="")
    # The spec's sums, in the order of its measures (`cube.Spec.names`).
    m1: Mapped[int] = mapped_column(Integer, default=0)
    m2: Mapped[int] = mapped_column(Integer, default=0)
    m3: Mapped[int] = mapped_column(Integer, default=0)
    m4: Mapped[int] = mapped_column(Integer, default=0)
    m5: Mapped[int] = mapped_column(Integer, default=0)
    m6: Mapped[int] = mapped_column(Integer, default=0)


class RollupState(Base):
    """How far the rollups have read the timeline: every event with an id up to
    `last_event_id` is in them, except the ids in `gaps` (not committed yet when read, or
    rolled back), which are looked at again until they are old."""

    __tablename__ = "evaluation_rollup_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_event_id: Mapped[int] = mapped_column(Integer, default=0)
    gaps: Mapped[list[Any]] = mapped_column(JSON, default=list)
    refreshed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    # The model of the stage limits and calendar the rows were derived with (changing either
    # asks for a rebuild).
    signature: Mapped[str] = mapped_column(String(64), default="")
