"""The document generator: numbering, templates as data, PDFs, stored bytes, dossiers.

Services flush, never commit: the caller's transaction holds the sequence row's lock from the
moment a number is taken until it commits (the number is used) or rolls back (the number is
given back), which is what makes the numbering gap-free and never repeating.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityloop.db import begin_write
from cityloop.documents import render, storage
from cityloop.documents.models import Document, DocumentIssuer, DocumentKind, DocumentSequence
from cityloop.errors import Forbidden, NotFound, ValidationFailed
from cityloop.org.models import User

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

pdf_text = render.pdf_text


# -- kinds (templates as data) ---------------------------------------------------------------


@dataclass(frozen=True)
class KindSeed:
    code: str
    title: str
    word: str
    body: str


def _parse_seed(code: str, text: str) -> KindSeed:
    head, sep, body = text.partition("\n---\n")
    if not sep:
        raise ValueError(f"templates/{code}.txt: no '---' line between its head and its body")
    fields = dict(
        (key.strip(), value.strip())
        for key, _, value in (line.partition(":") for line in head.splitlines() if line.strip())
    )
    return KindSeed(code, fields["title"], fields["word"], body.rstrip("\n"))


@lru_cache(maxsize=1)
def packaged_kinds() -> dict[str, KindSeed]:
    """The kinds shipped with the package (templates/*.txt), by code."""
    seeds = {}
    for path in sorted(TEMPLATES_DIR.glob("*.txt")):
        seed = _parse_seed(path.stem, path.read_text(encoding="utf-8"))
        render.check_template(seed.body)
        seeds[seed.code] = seed
    return seeds


def _insert_missing(session: Session, model: type[Any], rows: list[dict[str, Any]]) -> None:
    """INSERT … ON CONFLICT DO NOTHING: two transactions seeding the same row at once both
    succeed (PostgreSQL makes the second wait for the first, then skip)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(pg_insert(model).values(rows).on_conflict_do_nothing())
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(model).values(rows).on_conflict_do_nothing())


def seed_kinds(session: Session) -> int:
    """Add the packaged kinds the database does not have yet (edited ones are kept); the
    number added."""
    have = set(session.scalars(select(DocumentKind.code)))
    missing = [
        {"code": s.code, "title": s.title, "word": s.word, "body": s.body, "version": 1}
        for s in packaged_kinds().values()
        if s.code not in have
    ]
    _insert_missing(session, DocumentKind, missing)
    return len(missing)


def get_kind(session: Session, code: str) -> DocumentKind:
    kind = session.get(DocumentKind, code)
    if kind is None and code in packaged_kinds():
        seed_kinds(session)
        kind = session.get(DocumentKind, code)
    if kind is None:
        raise ValidationFailed(f"no document kind {code!r}", field="kind")
    return kind


def list_kinds(session: Session) -> list[DocumentKind]:
    seed_kinds(session)
    return list(session.scalars(select(DocumentKind).order_by(DocumentKind.code)))


def kind_fields(session: Session, code: str) -> list[render.Placeholder]:
    """The placeholders the kind's template uses: what a caller's context must give."""
    return render.check_template(get_kind(session, code).body)


def update_kind(
    session: Session,
    code: str,
    *,
    body: str,
    title: str | None = None,
    word: str | None = None,
    now: datetime,
    actor_name: str,
) -> DocumentKind:
    """An administrator's edit of a kind's template. An unknown placeholder → 422 (field
    "body"); documents already made keep their bytes and the version they were made with."""
    kind = get_kind(session, code)
    body = body.replace("\r\n", "\n").strip("\n")
    if not body.strip():
        raise ValidationFailed("the template is empty", field="body")
    render.check_template(body)
    for name, value, limit in (("title", title, 60), ("word", word, 20)):
        if value is not None and not (0 < len(value.strip()) <= limit):
            raise ValidationFailed(f"{name} must have 1 to {limit} characters", field=name)
    kind.body = body
    if title is not None:
        kind.title = title.strip()
    if word is not None:
        kind.word = word.strip()
    kind.version += 1
    kind.updated_at = now
    kind.updated_by = actor_name
    session.flush()
    return kind


# -- issuers and numbers ---------------------------------------------------------------------


def register_issuer(session: Session, code: str, name: str, prefix: str) -> DocumentIssuer:
    """Add an issuing body, or change the name and prefix of one (later numbers use them)."""
    for field, value, limit in (("code", code, 40), ("name", name, 80), ("prefix", prefix, 20)):
        if not value or not value.strip() or len(value) > limit:
            raise ValidationFailed(f"{field} must have 1 to {limit} characters", field=field)
    issuer = session.get(DocumentIssuer, code)
    if issuer is None:
        issuer = DocumentIssuer(code=code, name=name.strip(), prefix=prefix.strip())
        session.add(issuer)
    else:
        issuer.name, issuer.prefix = name.strip(), prefix.strip()
    session.flush()
    return issuer


def list_issuers(session: Session) -> list[DocumentIssuer]:
    return list(session.scalars(select(DocumentIssuer).order_by(DocumentIssuer.code)))


def format_number(prefix: str, word: str, year: int, seq: int) -> str:
    return f"{prefix}{word}〔{year}〕第{seq}号"


def _locked_sequence(session: Session, issuer_code: str, year: int, kind: str) -> DocumentSequence:
    def locked() -> DocumentSequence | None:
        return session.scalars(
            select(DocumentSequence)
            .where(
                DocumentSequence.issuer_code == issuer_code,
                DocumentSequence.year == year,
                DocumentSequence.kind == kind,
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one_or_none()

    row = locked()
    if row is None:
        _insert_missing(
            session,
            DocumentSequence,
            [{"issuer_code": issuer_code, "year": year, "kind": kind, "last_seq": 0}],
        )
        row = locked()
    assert row is not None
    return row


@lru_cache(maxsize=1)
def _zone() -> ZoneInfo:
    from cityloop.config import get_settings

    return ZoneInfo(get_settings().timezone)


def issue_document(
    session: Session,
    *,
    kind: str,
    issuer_code: str,
    context: dict[str, Any],
    subject_type: str,
    subject_id: int,
    now: datetime,
    actor_name: str,
) -> Document:
    """Number, render, store and record one document; flushed, not committed.

    The number is the next of the (issuer, year, kind) sequence, the year the issuer's local
    one. Bad input (unknown kind or issuer, a placeholder the context lacks) is refused before
    the sequence is touched. The returned row's sha256 is what the caller hashes into its
    timeline."""
    begin_write(session)
    kind_row = get_kind(session, kind)
    issuer = session.get(DocumentIssuer, issuer_code)
    if issuer is None:
        raise ValidationFailed(f"no document issuer {issuer_code!r}", field="issuer_code")
    if not subject_type or len(subject_type) > 40:
        raise ValidationFailed("subject_type must have 1 to 40 characters", field="subject_type")
    year = now.astimezone(_zone()).year
    filled: dict[str, Any] = {
        **context,
        "issuer_name": issuer.name,
        "title": kind_row.title,
        "number": format_number(issuer.prefix, kind_row.word, year, 0),
    }
    render.fill(kind_row.body, filled)  # every missing field is found before a number is taken

    sequence = _locked_sequence(session, issuer.code, year, kind_row.code)
    seq = sequence.last_seq + 1
    number = format_number(issuer.prefix, kind_row.word, year, seq)
    filled["number"] = number
    data = render.render_pdf(
        issuer_name=issuer.name,
        title=kind_row.title,
        number=number,
        text=render.fill(kind_row.body, filled),
    )
    sha256 = hashlib.sha256(data).hexdigest()
    key = storage.key_for(sha256)
    storage.put(key, data)
    sequence.last_seq = seq
    document = Document(
        kind=kind_row.code,
        number=number,
        issuer_code=issuer.code,
        year=year,
        seq=seq,
        subject_type=subject_type,
        subject_id=subject_id,
        title=kind_row.title,
        template_version=kind_row.version,
        sha256=sha256,
        storage_key=key,
        size=len(data),
        created_at=now,
        created_by=actor_name[:60],
    )
    session.add(document)
    session.flush()
    return document


# -- reading ---------------------------------------------------------------------------------


def get_document(session: Session, document_id: int) -> Document:
    document = session.get(Document, document_id)
    if document is None:
        raise NotFound(f"no document {document_id}", field="document_id")
    return document


def documents_of(session: Session, subject_type: str, subject_id: int) -> list[Document]:
    return list(
        session.scalars(
            select(Document)
            .where(Document.subject_type == subject_type, Document.subject_id == subject_id)
            .order_by(Document.created_at, Document.id)
        )
    )


def _checked(document: Document, data: bytes) -> bytes:
    if hashlib.sha256(data).hexdigest() != document.sha256:
        raise RuntimeError(
            f"the stored bytes of document {document.number} do not match its sha256"
        )
    return data


def document_pdf(session: Session, document_id: int) -> bytes:
    """The document's PDF bytes, checked against the sha256 kept on its row."""
    document = get_document(session, document_id)
    return _checked(document, storage.get(document.storage_key))


# Who may read the documents of a subject: one callback per subject_type, registered by the
# package that owns the subject (enforcement registers "enforcement_case"), so this package
# imports no flow.
Reader = Callable[[Session, User, int], bool]
_readers: dict[str, Reader] = {}


def register_reader(subject_type: str, can_read: Reader) -> None:
    _readers[subject_type] = can_read


def check_can_read(session: Session, user: User, subject_type: str, subject_id: int) -> None:
    """Forbidden unless the subject's owner says the user may see it; without a registered
    owner only an administrator reads."""
    reader = _readers.get(subject_type)
    allowed = reader(session, user, subject_id) if reader is not None else user.role == "admin"
    if not allowed:
        raise Forbidden(f"you may not read the documents of this {subject_type}")


# -- dossiers --------------------------------------------------------------------------------


class _Sink:
    """A write-only, unseekable file for zipfile: what it is given is taken out after each
    piece, so the archive never sits in memory."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def export_dossier(session: Session, subject_type: str, subject_id: int) -> Iterator[bytes]:
    """The subject's documents as one zip stream, with `manifest.json` (number, kind, sha256,
    size of each) and `SHA256SUMS` (for `sha256sum -c`). The rows are read now; the returned
    iterator reads only the stored files, a chunk at a time, so it may run after the session
    has closed and its memory does not grow with the dossier. Each file's bytes are checked
    against its sha256 as they stream; a mismatch breaks the stream."""
    rows = [
        {
            "file": f"{index:03d}_{doc.title}_{doc.number}.pdf",
            "id": doc.id,
            "number": doc.number,
            "kind": doc.kind,
            "title": doc.title,
            "sha256": doc.sha256,
            "size": doc.size,
            "storage_key": doc.storage_key,
            "created_at": doc.created_at.isoformat(),
            "created_by": doc.created_by,
        }
        for index, doc in enumerate(documents_of(session, subject_type, subject_id), start=1)
    ]
    return _zip_stream(subject_type, subject_id, rows)


def _zip_stream(subject_type: str, subject_id: int, rows: list[dict[str, Any]]) -> Iterator[bytes]:
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for row in rows:
            digest = hashlib.sha256()
            with archive.open(row["file"], mode="w") as entry:
                for chunk in storage.stream(row["storage_key"]):
                    digest.update(chunk)
                    entry.write(chunk)
                    yield sink.take()
            if digest.hexdigest() != row["sha256"]:
                raise RuntimeError(f"the stored bytes of document {row['number']} changed")
            yield sink.take()
        # Written a line at a time, like the files: a dossier of thousands of documents does
        # not build its manifest in memory either.
        with archive.open("manifest.json", mode="w") as entry:
            head = {"subject_type": subject_type, "subject_id": subject_id}
            entry.write(json.dumps(head, ensure_ascii=False)[:-1].encode() + b', "documents": [\n')
            for index, row in enumerate(rows):
                listed = {k: v for k, v in row.items() if k != "storage_key"}
                separator = b",\n" if index < len(rows) - 1 else b"\n"
                entry.write(json.dumps(listed, ensure_ascii=False).encode() + separator)
                yield sink.take()
            entry.write(b"]}\n")
        with archive.open("SHA256SUMS", mode="w") as entry:
            for row in rows:
                entry.write(f"{row['sha256']}  {row['file']}\n".encode())
                yield sink.take()
    yield sink.take()
