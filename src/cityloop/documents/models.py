"""Tables of the document generator: issuers, kinds (templates as data), sequences, documents."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cityloop.db import Base, UtcDateTime


class DocumentIssuer(Base):
    """A body that issues numbered documents, e.g. 厦门市思明区城市管理局 with prefix 厦思城管."""

    __tablename__ = "document_issuers"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    prefix: Mapped[str] = mapped_column(String(20))


class DocumentKind(Base):
    """A kind of document and its template. Seeded from the package's files; the text is
    data an administrator edits (each edit bumps `version`, kept on the documents made)."""

    __tablename__ = "document_kinds"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    title: Mapped[str] = mapped_column(String(60))
    # The kind's word in a number: 罚决字 in 厦思城管罚决字〔2026〕第12号.
    word: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    updated_by: Mapped[str] = mapped_column(String(60), default="")


class DocumentSequence(Base):
    """The last number given for one (issuer, year, kind). Locked FOR UPDATE and moved in the
    transaction that writes the document, so a rolled-back document gives its number back."""

    __tablename__ = "document_sequences"

    issuer_code: Mapped[str] = mapped_column(ForeignKey("document_issuers.code"), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(ForeignKey("document_kinds.code"), primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)


class Document(Base):
    """One generated document: its number, what it is about, and where its PDF bytes are."""

    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("issuer_code", "year", "kind", "seq"),
        Index("ix_documents_subject", "subject_type", "subject_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(ForeignKey("document_kinds.code"))
    number: Mapped[str] = mapped_column(String(80), unique=True)
    issuer_code: Mapped[str] = mapped_column(ForeignKey("document_issuers.code"))
    year: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    subject_type: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(60))
    template_version: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(60))
