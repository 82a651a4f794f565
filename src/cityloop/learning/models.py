"""Tables of learning: history, models, suggestions, integrity flags, re-checks, warnings."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cityloop.db import Base, UtcDateTime


class HistoryRecord(Base):
    """One case of the city's old system, imported to learn from (`cityloop import-history`)."""

    __tablename__ = "history_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    class_code: Mapped[str | None] = mapped_column(String(8), default=None)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), default=None)
    created_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    lon: Mapped[float | None] = mapped_column(Float, default=None)
    lat: Mapped[float | None] = mapped_column(Float, default=None)
    district: Mapped[str | None] = mapped_column(String(6), default=None)
    street: Mapped[str | None] = mapped_column(String(9), default=None)
    source: Mapped[str | None] = mapped_column(String(24), default=None)
    batch: Mapped[str] = mapped_column(String(120))
    imported_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LearnedModel(Base):
    """A trained suggester: its bytes (joblib of learning.suggester.Suggester, written by us
    only) and its held-out figures. The newest active row is the one in use."""

    __tablename__ = "learned_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(40), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    trained_on: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(Float)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    blob: Mapped[bytes] = mapped_column(LargeBinary)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class SuggestionRecord(Base):
    """What the model suggested for a report and what the operator chose (live accuracy)."""

    __tablename__ = "suggestion_records"
    __table_args__ = (Index("ix_suggestion_records_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("learned_models.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), default=None, index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    source: Mapped[str] = mapped_column(String(24))
    classes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    departments: Mapped[list[Any]] = mapped_column(JSON, default=list)
    top_class: Mapped[str] = mapped_column(String(8))
    top_department_id: Mapped[int | None] = mapped_column(Integer, default=None)
    # Given by the person registering the report; None while the class is only the guess.
    chosen_class: Mapped[str | None] = mapped_column(String(8), default=None)
    accepted: Mapped[bool | None] = mapped_column(Boolean, default=None)


class PhotoHash(Base):
    """A photo's perceptual hash (64-bit pHash) and the case it was used on."""

    __tablename__ = "photo_hashes"
    __table_args__ = (UniqueConstraint("media_id", "case_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    media_id: Mapped[str] = mapped_column(ForeignKey("media.id"))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    phash: Mapped[str] = mapped_column(String(16), index=True)
    used_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # The timeline event that carried it: the newest is where the integrity scan resumes.
    event_id: Mapped[int] = mapped_column(Integer, index=True)


class IntegrityFlag(Base):
    """A doubt about what an inspector or citizen sent, shown to the shift leader and counted
    in the evaluation of the user and their department."""

    __tablename__ = "integrity_flags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    media_id: Mapped[str | None] = mapped_column(String(40), default=None)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None, index=True)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), default=None)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class Recheck(Base):
    """A closed case drawn at random for a second look by a different inspector (抽查)."""

    __tablename__ = "rechecks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), unique=True)
    drawn_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    inspector_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    outcome: Mapped[str | None] = mapped_column(String(12), default=None)  # confirmed | failed
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)


class EarlyWarning(Base):
    """A street × class whose observed count ran well above what its history expected."""

    __tablename__ = "early_warnings"
    __table_args__ = (UniqueConstraint("street", "class_code", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    street: Mapped[str] = mapped_column(String(9))
    class_code: Mapped[str] = mapped_column(String(8))
    day: Mapped[date] = mapped_column(Date)
    expected: Mapped[float] = mapped_column(Float)
    observed: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    published: Mapped[bool] = mapped_column(Boolean, default=False)


class PrefileSetting(Base):
    """The city's switch, per source: a report whose first suggested class is at least this
    probable goes to the filing queue pre-classified and pre-routed (a person still files it);
    below it, or with the switch off, the suggestion is only shown."""

    __tablename__ = "prefile_settings"

    source: Mapped[str] = mapped_column(String(24), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    threshold: Mapped[float] = mapped_column(Float, default=0.9)
