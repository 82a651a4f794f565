"""The privacy tables: retention rules, erased contacts' digests, requests, contact views."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cityloop.db import Base, UtcDateTime


class RetentionRule(Base):
    """How long one kind of personal data is kept after its record is done with."""

    __tablename__ = "retention_rules"
    __table_args__ = (CheckConstraint("months BETWEEN 1 AND 240", name="months"),)

    kind: Mapped[str] = mapped_column(String(30), primary_key=True)
    months: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(80))


class ErasedContact(Base):
    """A contact erased from a record: who it was is gone, a keyed digest of the phone stays
    so that the same citizen's later request still finds the record."""

    __tablename__ = "erased_contacts"
    __table_args__ = (Index("ix_erased_contacts_digest", "phone_digest"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_type: Mapped[str] = mapped_column(String(20))  # case, hotline_call
    subject_id: Mapped[int] = mapped_column(Integer, index=True)
    phone_digest: Mapped[str | None] = mapped_column(String(64), default=None)
    key_id: Mapped[str | None] = mapped_column(String(20), default=None)
    reason: Mapped[str] = mapped_column(String(20))  # retention, request
    erased_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DataSubjectRequest(Base):
    """A citizen's request for their data or its erasure, taken by staff who checked who
    asks; the phone itself is not kept, only its digest."""

    __tablename__ = "data_subject_requests"
    __table_args__ = (CheckConstraint("kind IN ('access', 'erasure')", name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    phone_digest: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(String(200), default=None)
    handled_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    handled_at: Mapped[datetime] = mapped_column(UtcDateTime)
    records_found: Mapped[int] = mapped_column(Integer, default=0)
    records_erased: Mapped[int] = mapped_column(Integer, default=0)


class ContactView(Base):
    """One staff view of a reporter's or caller's unmasked contact."""

    __tablename__ = "contact_views"
    __table_args__ = (Index("ix_contact_views_subject", "subject_type", "subject_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True, default=None)
    user_name: Mapped[str] = mapped_column(String(60))
    role: Mapped[str] = mapped_column(String(20))
    subject_type: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[int] = mapped_column(Integer)
    ticket: Mapped[str | None] = mapped_column(String(20), default=None)
