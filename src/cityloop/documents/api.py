"""REST edge of the document generator: a document's PDF and record, a subject's documents
and dossier, and the administrator's kinds (templates) and issuers. Mounted by the app."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.orm import Session

from cityloop.deps import NowDep, SessionDep, UserDep
from cityloop.documents import service
from cityloop.documents.schemas import DocumentOut, IssuerIn, IssuerOut, KindEdit, KindOut
from cityloop.errors import Forbidden
from cityloop.org.models import User

router = APIRouter(tags=["documents 文书"])


def _require_admin(user: User) -> None:
    if user.role != "admin":
        raise Forbidden("only an administrator edits document templates and issuers")


# Literal paths first: "kinds" and "issuers" are not document ids.
@router.get(
    "/api/v1/documents/kinds", response_model=list[KindOut], summary="Document kinds 文书种类"
)
def list_kinds(session: SessionDep, user: UserDep) -> list[KindOut]:
    return [KindOut.of(k) for k in service.list_kinds(session)]


@router.get("/api/v1/documents/kinds/{code}", response_model=KindOut, summary="One kind 文书模板")
def get_kind(code: str, session: SessionDep, user: UserDep) -> KindOut:
    return KindOut.of(service.get_kind(session, code))


@router.put(
    "/api/v1/documents/kinds/{code}",
    response_model=KindOut,
    summary="Edit a kind's template 编辑文书模板 (administrator)",
)
def edit_kind(
    code: str, body: KindEdit, session: SessionDep, user: UserDep, now: NowDep
) -> KindOut:
    _require_admin(user)
    kind = service.update_kind(
        session,
        code,
        body=body.body,
        title=body.title,
        word=body.word,
        now=now,
        actor_name=user.display_name,
    )
    return KindOut.of(kind)


@router.get("/api/v1/documents/issuers", response_model=list[IssuerOut], summary="Issuers 发文机关")
def list_issuers(session: SessionDep, user: UserDep) -> list[IssuerOut]:
    return [IssuerOut.of(i) for i in service.list_issuers(session)]


@router.put(
    "/api/v1/documents/issuers/{code}",
    response_model=IssuerOut,
    summary="Add or change an issuer and its number prefix 发文机关 (administrator)",
)
def put_issuer(code: str, body: IssuerIn, session: SessionDep, user: UserDep) -> IssuerOut:
    _require_admin(user)
    return IssuerOut.of(service.register_issuer(session, code, body.name, body.prefix))


@router.get(
    "/api/v1/documents", response_model=list[DocumentOut], summary="A subject's documents 文书"
)
def list_documents(
    session: SessionDep,
    user: UserDep,
    subject_type: str = Query(max_length=40),
    subject_id: int = Query(),
) -> list[DocumentOut]:
    service.check_can_read(session, user, subject_type, subject_id)
    return [DocumentOut.of(d) for d in service.documents_of(session, subject_type, subject_id)]


@router.get(
    "/api/v1/documents/dossiers/{subject_type}/{subject_id}.zip",
    summary="A subject's documents as one zip with a manifest of hashes 卷宗导出",
    response_class=StreamingResponse,
)
def export_dossier(
    subject_type: str, subject_id: int, session: SessionDep, user: UserDep
) -> StreamingResponse:
    service.check_can_read(session, user, subject_type, subject_id)
    # The rows are read here, in the request's session; the stream reads only stored files.
    chunks = service.export_dossier(session, subject_type, subject_id)
    return StreamingResponse(
        chunks,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="dossier-{subject_type}-{subject_id}.zip"'
        },
    )


def _pdf(session: Session, user: User, document_id: int) -> Response:
    document = service.get_document(session, document_id)
    service.check_can_read(session, user, document.subject_type, document.subject_id)
    data = service.document_pdf(session, document_id)
    return Response(
        data,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="document-{document.id}.pdf"',
            "X-Content-SHA256": document.sha256,
        },
    )


@router.get(
    "/api/v1/enforcement/documents/{document_id}.pdf",
    summary="An enforcement document's PDF 执法文书",
    response_class=Response,
)
def enforcement_pdf(document_id: int, session: SessionDep, user: UserDep) -> Response:
    return _pdf(session, user, document_id)


@router.get(
    "/api/v1/documents/{document_id}.pdf",
    summary="A document's PDF 文书 PDF",
    response_class=Response,
)
def document_pdf(document_id: int, session: SessionDep, user: UserDep) -> Response:
    return _pdf(session, user, document_id)


@router.get("/api/v1/documents/{document_id}", response_model=DocumentOut, summary="A document")
def get_document(document_id: int, session: SessionDep, user: UserDep) -> DocumentOut:
    document = service.get_document(session, document_id)
    service.check_can_read(session, user, document.subject_type, document.subject_id)
    return DocumentOut.of(document)
