"""Administration of the city's geography: importing regions and unit grids (GeoJSON, through
`places.service.import_file`) and the gazetteer's address points (CSV or GeoJSON, through
`geocoding.service.import_file`), with a summary of what was imported and what is loaded.
An import is all or nothing; afterwards the process's grid index is dropped so the next
report is located in the new grids."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from cityloop.errors import DomainError
from cityloop.geocoding import service as geocoding
from cityloop.places import service as places
from cityloop.places.api import commit_and_reload
from cityloop.web.admin import guard
from cityloop.web.i18n import translate
from cityloop.web.page import FormDep, Page, StaffPageDep, text

router = APIRouter()

ADDRESS_POINTS = "address_points"
WHATS = (*places.IMPORT_LEVELS, ADDRESS_POINTS)


def _places_page(
    page: Page,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    result: dict[str, object] | None = None,
) -> Response:
    counts = {**places.level_counts(page.db), ADDRESS_POINTS: geocoding.count_points(page.db)}
    return page.render(
        "admin_places.html",
        status_code,
        counts=counts,
        whats=[(w, translate(f"import_{w}", page.lang)) for w in WHATS],
        values=values or {"what": "unit_grid"},
        errors=errors or {},
        result=result,
    )


@router.get("/admin/places")
def places_form(page: StaffPageDep) -> Response:
    return guard(page) or _places_page(page)


@router.post("/admin/places")
def places_import(page: StaffPageDep, form: FormDep) -> Response:
    refused = guard(page, form)
    if refused:
        return refused
    values = {"what": text(form, "what")}
    upload = form.get("file")
    errors: dict[str, str] = {}
    if values["what"] not in WHATS:
        errors["what"] = translate("required", page.lang)
    if not isinstance(upload, UploadFile) or not (upload.filename or upload.size):
        errors["file"] = translate("choose_file", page.lang)
    if errors or not isinstance(upload, UploadFile):
        return _places_page(page, values, errors, 422)
    data = upload.file.read()
    try:
        if values["what"] == ADDRESS_POINTS:
            count = geocoding.import_file(page.db, data, upload.filename)
        else:
            count = places.import_file(page.db, data, values["what"])
    except DomainError as exc:
        page.db.rollback()
        field = exc.field if exc.field in ("what", "file") else "file"
        return _places_page(page, values, {field: exc.message}, exc.status_code)
    if values["what"] != ADDRESS_POINTS:
        commit_and_reload(page.request, page.db)
    result = {
        "count": count,
        "what": translate(f"import_{values['what']}", page.lang),
        "file": upload.filename or "",
    }
    return _places_page(page, values, result=result)
