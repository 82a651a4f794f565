"""REST edge of Open311 GeoReport v2 at ``/open311/v2/``: every method of the spec, in XML
(``.xml``) and JSON (``.json``), errors in the spec's ``errors`` → ``error`` shape.

The adapter answers in the spec's terms, not the rest of the API's: a bad parameter is a 400,
a missing or unknown API key a 403, an unknown resource a 404, each as an error list with the
HTTP status as its code and a description naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Annotated, Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from cityloop.deps import (
    CaseWritingDep,
    NowDep,
    PlacesDep,
    SessionDep,
    saved_in_thread,
)
from cityloop.errors import DomainError, Forbidden, NotFound, Unauthorized, ValidationFailed
from cityloop.open311 import service
from cityloop.open311.schemas import FORMATS, encode, errors_document
from cityloop.partners.http import BodyTooLarge, CappedBodyRoute

MAX_BODY = 64 * 1024
MAX_FIELDS = 100


def _format_of(path: str) -> str:
    last = path.rsplit("/", 1)[-1]
    fmt = last.rsplit(".", 1)[-1] if "." in last else "xml"
    # XML is the format every Open311 client understands.
    return fmt if fmt in FORMATS else "xml"


def _error(fmt: str, status: int, description: str) -> Response:
    body, media_type = encode(fmt, "errors", errors_document(status, description))
    return Response(body, status_code=status, media_type=media_type)


# The intake's names for the fields a client sent under the spec's names.
_SPEC_NAMES = {
    "lon": "long",
    "class_code": "service_code",
    "address": "address_string",
    "reporter_name": "first_name",
    "reporter_phone": "phone",
}


def _described(exc: DomainError) -> str:
    field = _SPEC_NAMES.get(exc.field or "", exc.field)
    if field and field not in exc.message:
        return f"{field}: {exc.message}"
    return exc.message


def open311_status(exc: Exception) -> tuple[int, str] | None:
    """The spec's status and description for an error, None for an unexpected one."""
    if isinstance(exc, BodyTooLarge):
        return 413, str(exc.detail)
    if isinstance(exc, Unauthorized | Forbidden):
        return 403, _described(exc)
    if isinstance(exc, NotFound):
        return 404, _described(exc)
    if isinstance(exc, DomainError):
        return 400, _described(exc)
    if isinstance(exc, RequestValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path"))
        return 400, f"{where}: {first.get('msg', 'invalid value')}"
    if isinstance(exc, HTTPException):
        return exc.status_code, str(exc.detail)
    return None


class Open311Route(CappedBodyRoute):
    max_body = MAX_BODY

    def error_response(self, request: Request, exc: Exception) -> Response | None:
        found = open311_status(exc)
        if found is None:
            return None
        return _error(_format_of(request.url.path), *found)


router = APIRouter(prefix="/open311/v2", tags=["Open311 GeoReport v2"], route_class=Open311Route)

FormatPath = Annotated[str, Path(description="xml or json")]
JurisdictionQuery = Annotated[
    str | None, Query(description="optional: this city's code; absent or empty is this city")
]


def _fmt(fmt: str) -> str:
    if fmt not in FORMATS:
        raise NotFound(f"format {fmt!r} is not served: use .xml or .json")
    return fmt


def _respond(fmt: str, root: str, document: Any) -> Response:
    body, media_type = encode(fmt, root, document)
    return Response(body, media_type=media_type)


def _tz(request: Request) -> ZoneInfo:
    return ZoneInfo(request.app.state.settings.timezone)


@router.get("/discovery.{fmt}", summary="Service discovery")
def discovery(fmt: FormatPath, request: Request, places: PlacesDep) -> Response:
    fmt = _fmt(fmt)
    base = str(request.url_for("discovery", fmt=fmt)).rsplit("/", 1)[0]
    return _respond(fmt, "discovery", service.discovery(base, places))


@router.get("/services.{fmt}", summary="GET Service List (the taxonomy's classes)")
def services(
    fmt: FormatPath,
    session: SessionDep,
    places: PlacesDep,
    jurisdiction_id: JurisdictionQuery = None,
) -> Response:
    fmt = _fmt(fmt)
    service.check_jurisdiction(jurisdiction_id, places)
    return _respond(fmt, "services", service.services(session))


@router.get("/services/{service_code}.{fmt}", summary="GET Service Definition")
def service_definition(
    service_code: str,
    fmt: FormatPath,
    session: SessionDep,
    places: PlacesDep,
    jurisdiction_id: JurisdictionQuery = None,
) -> Response:
    fmt = _fmt(fmt)
    service.check_jurisdiction(jurisdiction_id, places)
    return _respond(fmt, "service_definition", service.service_definition(session, service_code))


async def _fields(request: Request) -> dict[str, list[str]]:
    """The posted fields (form-encoded as the spec says; multipart and JSON accepted too)
    plus the query string's (api_key may travel there)."""
    body = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fields: dict[str, list[str]] = {}
    if content_type == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=MAX_FIELDS)
        for key, value in form.multi_items():
            if isinstance(value, str):
                fields.setdefault(key, []).append(value)
        await form.close()
    elif content_type == "application/json" and body:
        fields = _json_fields(body)
    elif body:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationFailed("the body must be UTF-8", field="body") from None
        try:
            fields = parse_qs(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
        except ValueError:
            raise ValidationFailed(
                f"the body has more than {MAX_FIELDS} fields", field="body"
            ) from None
    for key, value in request.query_params.multi_items():
        fields.setdefault(key, []).append(value)
    return fields


def _json_fields(body: bytes) -> dict[str, list[str]]:
    try:
        data = json.loads(body)
    except ValueError:
        raise ValidationFailed("the body is not valid JSON", field="body") from None
    if not isinstance(data, dict):
        raise ValidationFailed("the JSON body must be an object", field="body")
    return {str(k): [str(v)] for k, v in data.items() if v is not None}


FieldsDep = Annotated[Mapping[str, Sequence[str]], Depends(_fields)]

_POST_FORM = {
    "requestBody": {
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["api_key", "service_code"],
                    "properties": {
                        name: {"type": "string"}
                        for name in (
                            "api_key",
                            "jurisdiction_id",
                            "service_code",
                            "lat",
                            "long",
                            "address_string",
                            "address_id",
                            "email",
                            "device_id",
                            "account_id",
                            "first_name",
                            "last_name",
                            "phone",
                            "description",
                            "media_url",
                        )
                    },
                }
            }
        }
    }
}


@router.post(
    "/requests.{fmt}",
    summary="POST Service Request (needs an API key)",
    openapi_extra=_POST_FORM,
)
async def post_request(
    fmt: FormatPath,
    fields: FieldsDep,
    writing: CaseWritingDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            description="optional, not in the spec: a retry with the same key is answered "
            "with the same request"
        ),
    ] = None,
) -> Response:
    fmt = _fmt(fmt)
    document = await saved_in_thread(
        writing.session,
        lambda: service.create_request(
            writing.session,
            fields,
            places=writing.places,
            calendar=writing.calendar,
            now=writing.now,
            idempotency_key=idempotency_key,
        ),
    )
    return _respond(fmt, "service_requests", document)


@router.get("/requests.{fmt}", summary="GET Service Requests (last 90 days, at most 1000)")
def get_requests(
    fmt: FormatPath,
    request: Request,
    session: SessionDep,
    places: PlacesDep,
    now: NowDep,
    service_request_id: Annotated[str | None, Query(description="comma-separated ids")] = None,
    service_code: Annotated[str | None, Query(description="comma-separated codes")] = None,
    start_date: Annotated[str | None, Query(description="W3C date-time")] = None,
    end_date: Annotated[str | None, Query(description="W3C date-time")] = None,
    status: Annotated[str | None, Query(description="open, closed or open,closed")] = None,
    jurisdiction_id: JurisdictionQuery = None,
) -> Response:
    fmt = _fmt(fmt)
    service.check_jurisdiction(jurisdiction_id, places)
    tz = _tz(request)
    query = service.parse_query(request.query_params, now=now, tz=tz)
    return _respond(
        fmt, "service_requests", service.find_requests(session, query, places=places, tz=tz)
    )


@router.get("/requests/{service_request_id}.{fmt}", summary="GET Service Request (a list of one)")
def get_request(
    service_request_id: Annotated[str, Path(max_length=40)],
    fmt: FormatPath,
    request: Request,
    session: SessionDep,
    places: PlacesDep,
    jurisdiction_id: JurisdictionQuery = None,
) -> Response:
    fmt = _fmt(fmt)
    service.check_jurisdiction(jurisdiction_id, places)
    document = service.find_request(session, service_request_id, places=places, tz=_tz(request))
    return _respond(fmt, "service_requests", document)


@router.get("/tokens/{token}.{fmt}", summary="GET service_request_id from a token")
def get_token(
    token: Annotated[str, Path(max_length=40)],
    fmt: FormatPath,
    session: SessionDep,
    places: PlacesDep,
    jurisdiction_id: JurisdictionQuery = None,
) -> Response:
    fmt = _fmt(fmt)
    service.check_jurisdiction(jurisdiction_id, places)
    return _respond(fmt, "service_requests", service.token(session, token))


@router.api_route(
    "/{rest:path}", methods=["GET", "POST"], include_in_schema=False, name="open311_unknown"
)
def unknown(rest: str) -> Response:
    raise NotFound(f"no Open311 resource {rest!r}; see discovery.xml")
