"""Tables of enforcement: registers, enforcement cases and their hash-chained timeline."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cityloop.db import Base, UtcDateTime
from cityloop.workflow import timeline


class Law(Base):
    """法律法规库: a law, regulation or rule the bureau applies."""

    __tablename__ = "enf_laws"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    issuer: Mapped[str] = mapped_column(String(80), default="")
    effective: Mapped[date | None] = mapped_column(Date, default=None)


class LawArticle(Base):
    __tablename__ = "enf_law_articles"
    __table_args__ = (UniqueConstraint("law_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    law_id: Mapped[int] = mapped_column(ForeignKey("enf_laws.id"))
    number: Mapped[int] = mapped_column(Integer)  # 第N条
    text: Mapped[str] = mapped_column(Text, default="")
    # True when `text` is our summary (摘要, 待核对原文), not the article's wording.
    is_summary: Mapped[bool] = mapped_column(Boolean, default=True)


class DiscretionStandard(Base):
    """自由裁量基准 of one violation: its tiers, and how long an earlier offence counts."""

    __tablename__ = "enf_discretion_standards"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    repeat_window_days: Mapped[int] = mapped_column(Integer, default=365)
    # Illustrative tiers of the demo city, not a bureau's published standard.
    demo_data: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(Text, default="")


class DiscretionTier(Base):
    __tablename__ = "enf_discretion_tiers"
    __table_args__ = (
        UniqueConstraint("standard_id", "tier"),
        CheckConstraint("tier IN ('minor', 'general', 'serious', 'grave')", name="tier"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    standard_id: Mapped[int] = mapped_column(ForeignKey("enf_discretion_standards.id"))
    tier: Mapped[str] = mapped_column(String(10))
    conditions: Mapped[str] = mapped_column(Text, default="")
    fine_min: Mapped[float | None] = mapped_column(Float, default=None)  # yuan
    fine_max: Mapped[float | None] = mapped_column(Float, default=None)
    # A range as a share of a base amount ("5 %–10 % of the construction cost").
    percent_min: Mapped[float | None] = mapped_column(Float, default=None)
    percent_max: Mapped[float | None] = mapped_column(Float, default=None)
    percent_of: Mapped[str | None] = mapped_column(String(40), default=None)
    # Other penalties this tier allows: warning, rectify, confiscate, demolish.
    penalties: Mapped[list[str]] = mapped_column(JSON, default=list)
    # 首违不罚 (art. 33): a first minor offence, rectified in time, may go unpunished.
    first_offence_exempt: Mapped[bool] = mapped_column(Boolean, default=False)


class Violation(Base):
    """违法行为: what the party did, the article it breaks and the article that punishes it."""

    __tablename__ = "enf_violations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    violation_article_id: Mapped[int] = mapped_column(ForeignKey("enf_law_articles.id"))
    penalty_article_id: Mapped[int] = mapped_column(ForeignKey("enf_law_articles.id"))
    class_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    standard_id: Mapped[int | None] = mapped_column(
        ForeignKey("enf_discretion_standards.id"), default=None
    )


class Party(Base):
    """执法对象. A person's ID number is kept only as a keyed hash (to find the same person
    again) and a masked form; an organisation's 统一社会信用代码 is public and kept as is."""

    __tablename__ = "enf_parties"
    __table_args__ = (CheckConstraint("kind IN ('person', 'organisation')", name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(String(120))
    id_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    id_masked: Mapped[str | None] = mapped_column(String(18), default=None)
    credit_code: Mapped[str | None] = mapped_column(String(18), unique=True, default=None)
    address: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class EnforcementUnit(Base):
    """A bureau (执法局, issues documents under its prefix) or a squad (中队) below it."""

    __tablename__ = "enf_units"
    __table_args__ = (CheckConstraint("kind IN ('bureau', 'squad')", name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(8))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("enf_units.id"), default=None)
    doc_prefix: Mapped[str | None] = mapped_column(String(20), default=None)  # 厦思城管
    # The unit of the case loop's organisation this squad is (a complaint passed down to it
    # opens its enforcement cases here).
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id"), index=True, default=None
    )


class Officer(Base):
    """执法人员: a person holding a 执法证, in a squad, valid for a period."""

    __tablename__ = "enf_officers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), unique=True, default=None)
    name: Mapped[str] = mapped_column(String(40))
    cert_no: Mapped[str] = mapped_column(String(30), unique=True)  # 执法证号
    unit_id: Mapped[int] = mapped_column(ForeignKey("enf_units.id"))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)


class LegalPeriod(Base):
    """A period the procedure must keep, as data: N natural or working days, with its law."""

    __tablename__ = "enf_legal_periods"

    code: Mapped[str] = mapped_column(String(30), primary_key=True)
    label: Mapped[str] = mapped_column(String(60))
    days: Mapped[int] = mapped_column(Integer)
    working_days: Mapped[bool] = mapped_column(Boolean, default=False)
    basis: Mapped[str] = mapped_column(String(120), default="")


class EnforcementCase(Base):
    __tablename__ = "enf_cases"
    __table_args__ = (
        CheckConstraint("procedure IN ('ordinary', 'simple')", name="procedure"),
        CheckConstraint("fine_cents >= 0", name="fine_cents"),
        CheckConstraint("paid_cents >= 0", name="paid_cents"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(20), index=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    procedure: Mapped[str] = mapped_column(String(10), default="ordinary")
    source: Mapped[str] = mapped_column(String(12), default="case")  # case, patrol, transfer, …
    # The phone's key for an on-site case: a queued form sent twice makes one case.
    idempotency_key: Mapped[str | None] = mapped_column(String(100), unique=True, default=None)
    violation_id: Mapped[int] = mapped_column(ForeignKey("enf_violations.id"))
    party_id: Mapped[int] = mapped_column(ForeignKey("enf_parties.id"), index=True)
    facts: Mapped[str] = mapped_column(Text)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    address: Mapped[str | None] = mapped_column(String(200), default=None)
    # The squad holding the case (the engine's "department" of a timeline line).
    department_id: Mapped[int] = mapped_column(ForeignKey("enf_units.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True, default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    filed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    decision_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    extension_request: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    major: Mapped[bool] = mapped_column(Boolean, default=False)  # 重大 (art. 58)
    reviews: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    evidence_count: Mapped[int] = mapped_column(Integer, default=0)
    rectify_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    rectified: Mapped[bool | None] = mapped_column(Boolean, default=None)
    notified_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    statement_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    statement_waived: Mapped[bool] = mapped_column(Boolean, default=False)
    hearing_offered: Mapped[bool] = mapped_column(Boolean, default=False)
    hearing_request_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    hearing_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    hearing_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    hearing_held: Mapped[bool] = mapped_column(Boolean, default=False)
    discussion: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)  # 集体讨论
    tier: Mapped[str | None] = mapped_column(String(10), default=None)
    fine_cents: Mapped[int] = mapped_column(Integer, default=0)
    penalty: Mapped[str | None] = mapped_column(String(20), default=None)  # warning, …
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    delivery_method: Mapped[str | None] = mapped_column(String(12), default=None)
    payment_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    paid_cents: Mapped[int] = mapped_column(Integer, default=0)
    instalments: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    result: Mapped[str | None] = mapped_column(String(20), default=None)
    result_note: Mapped[str | None] = mapped_column(Text, default=None)
    result_photos: Mapped[list[Any]] = mapped_column(JSON, default=list)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    # Disclosure (执法公示, art. 48): withheld with a reason, or withdrawn when revoked.
    disclosure_withheld: Mapped[str | None] = mapped_column(Text, default=None)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    stage: Mapped[str | None] = mapped_column(String(20), default=None)
    stage_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    stage_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy reads it as is)


class EnforcementEvent(timeline.TimelineColumns, Base):
    """One line of an enforcement case's timeline (全过程记录, art. 47): the same columns and
    the same hash chain as the case loop's (`workflow.timeline`); `case_id` is the
    enforcement case, `department_id` the squad."""

    __tablename__ = "enf_events"
    __table_args__ = (UniqueConstraint("case_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("enf_cases.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("enf_units.id"), default=None)


TIMELINE = timeline.register("enforcement", EnforcementEvent)
