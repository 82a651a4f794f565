"""The documents API's bodies and answers."""

from __future__ import annotations

from pydantic import BaseModel, Field

from cityloop.documents import render
from cityloop.documents.models import Document, DocumentIssuer, DocumentKind


class DocumentOut(BaseModel):
    id: int
    kind: str
    number: str
    title: str
    issuer_code: str
    year: int
    seq: int
    subject_type: str
    subject_id: int
    template_version: int
    sha256: str
    size: int
    created_at: str
    created_by: str
    pdf_url: str

    @classmethod
    def of(cls, d: Document) -> DocumentOut:
        return cls(
            id=d.id,
            kind=d.kind,
            number=d.number,
            title=d.title,
            issuer_code=d.issuer_code,
            year=d.year,
            seq=d.seq,
            subject_type=d.subject_type,
            subject_id=d.subject_id,
            template_version=d.template_version,
            sha256=d.sha256,
            size=d.size,
            created_at=d.created_at.isoformat(),
            created_by=d.created_by,
            pdf_url=f"/api/v1/documents/{d.id}.pdf",
        )


class FieldOut(BaseModel):
    name: str
    label: str
    optional: bool


class KindOut(BaseModel):
    code: str
    title: str
    word: str
    body: str
    version: int
    updated_at: str | None
    updated_by: str
    fields: list[FieldOut]

    @classmethod
    def of(cls, k: DocumentKind) -> KindOut:
        return cls(
            code=k.code,
            title=k.title,
            word=k.word,
            body=k.body,
            version=k.version,
            updated_at=k.updated_at.isoformat() if k.updated_at else None,
            updated_by=k.updated_by,
            fields=[
                FieldOut(name=p.name, label=render.FIELDS[p.name], optional=p.optional)
                for p in render.check_template(k.body)
                if p.name not in render.GENERATED
            ],
        )


class KindEdit(BaseModel):
    body: str = Field(min_length=1, max_length=20_000, description="the template text")
    title: str | None = Field(default=None, max_length=60)
    word: str | None = Field(default=None, max_length=20, description="e.g. 罚决字")


class IssuerIn(BaseModel):
    name: str = Field(min_length=1, max_length=80, description="e.g. 厦门市思明区城市管理局")
    prefix: str = Field(min_length=1, max_length=20, description="e.g. 厦思城管")


class IssuerOut(BaseModel):
    code: str
    name: str
    prefix: str

    @classmethod
    def of(cls, i: DocumentIssuer) -> IssuerOut:
        return cls(code=i.code, name=i.name, prefix=i.prefix)
