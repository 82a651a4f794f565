"""Administration of the document generator: the kinds of documents (文书) with their template
text, number word and version, and the issuers with their number prefixes. Writes go through
`documents.service` (an unknown placeholder is refused under the template's field)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from cityloop.documents import render
from cityloop.documents import service as documents
from cityloop.errors import DomainError
from cityloop.web.admin import error_of, guard
from cityloop.web.page import FormDep, Page, StaffPageDep, text

router = APIRouter()
KIND_FIELDS = ("title", "word", "body")


@router.get("/admin/documents")
def document_kinds(page: StaffPageDep) -> Response:
    refused = guard(page)
    if refused:
        return refused
    return page.render(
        "admin_documents.html",
        kinds=documents.list_kinds(page.db),
        issuers=documents.list_issuers(page.db),
    )


def _kind_page(
    page: Page,
    code: str,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    saved: bool = False,
) -> Response:
    try:
        kind = documents.get_kind(page.db, code)
    except DomainError as exc:
        return page.error(404, exc.message)
    current = {"title": kind.title, "word": kind.word, "body": kind.body}
    return page.render(
        "admin_document_kind.html",
        status_code,
        kind=kind,
        values={**current, **(values or {})},
        errors=errors or {},
        saved=saved,
        fields=[(name, label) for name, label in render.FIELDS.items()],
    )


@router.get("/admin/documents/{code}")
def document_kind_form(code: str, page: StaffPageDep, saved: str = "") -> Response:
    return guard(page) or _kind_page(page, code, saved=bool(saved))


@router.post("/admin/documents/{code}")
def document_kind_save(code: str, page: StaffPageDep, form: FormDep) -> Response:
    refused = guard(page, form)
    if refused:
        return refused
    values = {name: text(form, name) for name in KIND_FIELDS}
    assert page.user is not None  # the guard let an administrator in
    try:
        documents.update_kind(
            page.db,
            code,
            body=values["body"],
            title=values["title"],
            word=values["word"],
            now=page.now,
            actor_name=page.user.display_name,
        )
    except DomainError as exc:
        page.db.rollback()
        if exc.field == "kind":
            return page.error(404, exc.message)
        return _kind_page(page, code, values, error_of(exc, KIND_FIELDS), exc.status_code)
    return page.redirect(f"/admin/documents/{code}?saved=1")
