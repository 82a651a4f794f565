"""Open311 GeoReport v2 over the taxonomy, intake and cases. Services flush; the request
commits.

- A service is an active minor class: ``service_code`` is its national code, ``group`` the
  major class's name; no class asks for extra attributes (``metadata`` false).
- Posting a request is `intake.receive()` with the partner's API key as the actor; the
  ``service_request_id`` is the case's ticket (random, not guessable), returned at once.
- A request is ``open`` unless its case is closed, archived, rejected or merged. What is
  shown is public: never the reporter's name or phone, and long digit runs in a description
  (phone or ID numbers a citizen typed) are masked.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from cityloop.cases.models import Case, CaseEvent
from cityloop.cases.service import partner_actor
from cityloop.cases.states import OPEN_STATES, state_label
from cityloop.errors import NotFound, ValidationFailed
from cityloop.intake.service import Report, receive, report_fingerprint
from cityloop.kit.calendar import WorkingCalendar
from cityloop.open311.schemas import w3c
from cityloop.org.models import Department
from cityloop.partners import service as partners
from cityloop.partners.models import PartnerTicket
from cityloop.taxonomy.models import ProblemClass
from cityloop.taxonomy.service import find_class

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
# When this adapter's behaviour last changed (discovery's changeset).
CHANGESET = "2026-11-22T00:00:00+08:00"
MAX_REQUESTS = 1000
MAX_SPAN = timedelta(days=90)
MAX_IDS = 200
MAX_DESCRIPTION = 4000
_DIGIT_RUN = re.compile(r"\d{7,}")


# -- jurisdiction ------------------------------------------------------------------------------
_CITY_CODES: weakref.WeakKeyDictionary[Any, frozenset[str]] = weakref.WeakKeyDictionary()


def jurisdictions(places: Any) -> frozenset[str]:
    """The city codes this server answers for (computed once per place index)."""
    codes = _CITY_CODES.get(places)
    if codes is None:
        codes = frozenset(region.code for region in places.regions("city"))
        _CITY_CODES[places] = codes
    return codes


def check_jurisdiction(value: str | None, places: Any) -> None:
    """Absent or empty means this city; anything else must be its code."""
    if value and value not in jurisdictions(places):
        raise NotFound(f"jurisdiction_id {value!r} was not found", field="jurisdiction_id")


# -- services ----------------------------------------------------------------------------------
def discovery(base_url: str, places: Any) -> dict[str, Any]:
    codes = ", ".join(sorted(jurisdictions(places)))
    return {
        "changeset": CHANGESET,
        "contact": f"City-management command centre, hotline 12319 (jurisdiction_id: {codes})",
        "key_service": "API keys are issued by the city's administrator (POST /api/v1/partners)",
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": base_url,
                "changeset": CHANGESET,
                "type": "production",
                "formats": ["text/xml", "application/json"],
            }
        ],
    }


def services(session: Session) -> list[dict[str, Any]]:
    rows = list(session.scalars(select(ProblemClass).order_by(ProblemClass.code)))
    majors = {row.code: row for row in rows if row.level == "major"}
    documents = []
    for row in rows:
        if row.level != "minor" or not row.active:
            continue
        major = majors.get(row.parent_code or "")
        kind = "部件 component" if row.kind == "component" else "事件 event"
        keywords = [k for k in (row.name, row.name_en, major.name if major else None, kind) if k]
        documents.append(
            {
                "service_code": row.code,
                "service_name": row.display_name,
                "description": row.filing_standard or row.name_en or row.display_name,
                "metadata": False,
                "type": "realtime",
                "keywords": ", ".join(keywords),
                "group": major.name if major else kind,
            }
        )
    return documents


def _service_class(session: Session, code: str | None) -> ProblemClass:
    if not code:
        raise ValidationFailed("service_code was not provided", field="service_code")
    row = find_class(session, code)
    if row is None or row.level != "minor" or not row.active:
        raise NotFound(f"service_code {code!r} was not found", field="service_code")
    return row


def service_definition(session: Session, code: str) -> dict[str, Any]:
    row = _service_class(session, code)
    return {"service_code": row.code, "attributes": []}


# -- posting a request -------------------------------------------------------------------------
def _one(fields: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = fields.get(name)
    if not values:
        return None
    value = values[0].strip()
    return value or None


def _coordinate(fields: Mapping[str, Sequence[str]], name: str, limit: float) -> float:
    raw = _one(fields, name)
    try:
        value = float(raw or "")
    except ValueError:
        raise ValidationFailed(f"{name} must be a number (WGS-84 degrees)", field=name) from None
    if not -limit <= value <= limit:
        raise ValidationFailed(f"{name} must be between -{limit:g} and {limit:g}", field=name)
    return value


def _limited(value: str | None, name: str, limit: int) -> str | None:
    if value is not None and len(value) > limit:
        raise ValidationFailed(f"{name} must be at most {limit} characters", field=name)
    return value


def create_request(
    session: Session,
    fields: Mapping[str, Sequence[str]],
    *,
    places: Any,
    calendar: WorkingCalendar,
    now: datetime,
    idempotency_key: str | None = None,
) -> list[dict[str, Any]]:
    """POST requests: the case for an Open311 request; the response document."""
    partner = partners.authenticate(session, _one(fields, "api_key"), field="api_key")
    check_jurisdiction(_one(fields, "jurisdiction_id"), places)
    problem_class = _service_class(session, _one(fields, "service_code"))
    has_lat, has_long = _one(fields, "lat") is not None, _one(fields, "long") is not None
    if has_lat != has_long:
        missing = "long" if has_lat else "lat"
        raise ValidationFailed(f"{missing} was not provided: send both lat and long", field=missing)
    if not has_lat:
        if _one(fields, "address_string") or _one(fields, "address_id"):
            raise ValidationFailed(
                "an address alone cannot be located here yet: send lat and long (WGS-84)",
                field="address_string",
            )
        raise ValidationFailed(
            "a location was not provided: send lat and long (WGS-84)", field="lat"
        )
    lat = _coordinate(fields, "lat", 90)
    lon = _coordinate(fields, "long", 180)
    description = _limited(_one(fields, "description"), "description", MAX_DESCRIPTION)
    address = _limited(_one(fields, "address_string"), "address_string", 200)
    name = " ".join(n for n in (_one(fields, "last_name"), _one(fields, "first_name")) if n)
    reporter_name = _limited(name or None, "first_name", 40)
    phone = _limited(_one(fields, "phone"), "phone", 30)
    media_url = _one(fields, "media_url")
    media_urls = partners.check_media_urls([media_url], field="media_url") if media_url else []
    external_id = None
    if idempotency_key is not None:
        external_id = partners.check_external_id(idempotency_key, field="Idempotency-Key")
    report = Report(
        source=partner.source,
        class_code=problem_class.code,
        description=description or problem_class.display_name,
        lon=lon,
        lat=lat,
        address=address,
        reporter_name=reporter_name,
        reporter_phone=phone,
        photos=media_urls,
    )
    case, created = receive(
        session,
        replace(report, photos=[]),
        actor=partner_actor(partner.name),
        places=places,
        calendar=calendar,
        now=now,
        # The key is the partner's (its code), the body is fingerprinted: the same key with
        # another request is refused (issue 23), as on the other report routes.
        idempotency_key=f"{partner.code}:{external_id}" if external_id else None,
        fingerprint=report_fingerprint(report) if external_id else None,
    )
    # The link costs an insert: made only when something will follow it (a replay, a photo
    # link to show, status pushes to the partner's webhook).
    if created and (external_id or media_urls or partner.webhook_url):
        partners.link_case(session, partner, case, external_id, now, media_urls)
    return [
        {
            "service_request_id": case.ticket,
            "service_notice": _notice(session, case),
            "account_id": _one(fields, "account_id"),
        }
    ]


def _notice(session: Session, case: Case) -> str:
    if case.state == "merged" and case.merged_into_id is not None:
        first = session.get(Case, case.merged_into_id)
        if first is not None:
            return (
                f"此问题已有人上报（{first.ticket}），已合并处理。"
                f"Already reported as {first.ticket}; handled together."
            )
    return (
        f"已受理，编号 {case.ticket}，核实后立案派遣。"
        f"Received as {case.ticket}: it will be verified, filed and dispatched."
    )


# -- reading requests --------------------------------------------------------------------------
@dataclass
class RequestQuery:
    tickets: list[str] | None = None
    service_codes: list[str] | None = None
    start: datetime | None = None
    end: datetime | None = None
    statuses: frozenset[str] = frozenset({"open", "closed"})


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _datetime(value: str, name: str, tz: tzinfo) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace(" ", "+"))
    except ValueError:
        raise ValidationFailed(
            f"{name} must be a W3C date-time such as 2026-08-27T16:05:00+08:00", field=name
        ) from None
    # The spec wants the offset; a time without one is read in the city's time zone.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)


def parse_query(params: Mapping[str, str], *, now: datetime, tz: tzinfo) -> RequestQuery:
    """GET requests' filters: service_request_id overrides the others; the span is at most
    90 days and defaults to the last 90 days."""
    tickets = _split(params.get("service_request_id"))
    if tickets:
        if len(tickets) > MAX_IDS:
            raise ValidationFailed(
                f"service_request_id lists at most {MAX_IDS} ids", field="service_request_id"
            )
        return RequestQuery(tickets=tickets)
    statuses = frozenset(_split(params.get("status"))) or frozenset({"open", "closed"})
    if not statuses <= {"open", "closed"}:
        raise ValidationFailed("status must be open, closed or both", field="status")
    start_raw, end_raw = params.get("start_date"), params.get("end_date")
    end = _datetime(end_raw, "end_date", tz) if end_raw else None
    start = _datetime(start_raw, "start_date", tz) if start_raw else None
    if end is None:
        end = start + MAX_SPAN if start is not None else now
    if start is None:
        start = end - MAX_SPAN
    if end < start:
        raise ValidationFailed("end_date is before start_date", field="end_date")
    if end - start > MAX_SPAN:
        raise ValidationFailed("start_date to end_date may span at most 90 days", field="end_date")
    return RequestQuery(
        service_codes=_split(params.get("service_code")) or None,
        start=start,
        end=end,
        statuses=statuses,
    )


def _status_notes(row: Any, reasons: dict[str, str]) -> str:
    if row.state == "merged" and row.merged_into:
        return f"{state_label(row.state)} → {row.merged_into} (merged into that request)"
    if row.state == "rejected" and reasons.get(row.ticket):
        # The citizen is told why (issue 13): the reason the centre gave when rejecting.
        return f"{state_label(row.state)}：{reasons[row.ticket]}"
    return state_label(row.state)


def _rejection_reasons(session: Session, tickets: list[str]) -> dict[str, str]:
    if not tickets:
        return {}
    rows = session.execute(
        select(Case.ticket, CaseEvent.payload)
        .join(CaseEvent, CaseEvent.case_id == Case.id)
        .where(Case.ticket.in_(tickets), CaseEvent.action == "reject")
        .order_by(CaseEvent.seq)
    ).all()
    # The last rejection of each case (a case unmerged and rejected again says the latest).
    return {r.ticket: str((r.payload or {}).get("reason") or "") for r in rows}


def _masked(text: str | None) -> str | None:
    return _DIGIT_RUN.sub(lambda m: m.group(0)[:3] + "****", text) if text else text


def _address(row: Any, places: Any) -> str | None:
    if row.address:
        return str(row.address)
    names = []
    for code in (row.community, row.street, row.district):
        region = places.region(code) if code else None
        if region is not None:
            names.append(region.name)
    return ", ".join(names) or None


def _documents(session: Session, query: Any, places: Any, tz: tzinfo) -> list[dict[str, Any]]:
    rows = session.execute(query).all()
    reasons = _rejection_reasons(session, [r.ticket for r in rows if r.state == "rejected"])
    documents = []
    for row in rows:
        media_urls = row.media_urls or []
        documents.append(
            {
                "service_request_id": row.ticket,
                "status": "open" if row.state in OPEN_STATES else "closed",
                "status_notes": _status_notes(row, reasons),
                "service_name": row.matter_name or row.class_name,
                "service_code": row.class_code,
                "description": _masked(row.description),
                "agency_responsible": row.department,
                "service_notice": None,
                "requested_datetime": w3c(row.created_at, tz),
                "updated_datetime": w3c(row.closed_at or row.updated_at, tz),
                "expected_datetime": w3c(row.due_at, tz),
                "address": _address(row, places),
                "address_id": None,
                "zipcode": None,
                "lat": row.lat,
                "long": row.lon,
                "media_url": media_urls[0] if media_urls else None,
            }
        )
    return documents


def _request_rows() -> Any:
    primary = aliased(Case)
    return (
        select(
            Case.ticket,
            Case.state,
            Case.class_code,
            Case.description,
            Case.address,
            Case.lon,
            Case.lat,
            Case.district,
            Case.street,
            Case.community,
            Case.created_at,
            Case.updated_at,
            Case.closed_at,
            Case.due_at,
            ProblemClass.name.label("class_name"),
            ProblemClass.matter_name,
            Department.name.label("department"),
            PartnerTicket.media_urls,
            primary.ticket.label("merged_into"),
        )
        .join(ProblemClass, ProblemClass.code == Case.class_code)
        .outerjoin(Department, Department.id == Case.department_id)
        .outerjoin(PartnerTicket, PartnerTicket.case_id == Case.id)
        .outerjoin(primary, primary.id == Case.merged_into_id)
    )


def find_requests(
    session: Session, query: RequestQuery, *, places: Any, tz: tzinfo
) -> list[dict[str, Any]]:
    statement = _request_rows()
    if query.tickets is not None:
        statement = statement.where(Case.ticket.in_(query.tickets))
    else:
        assert query.start is not None and query.end is not None
        statement = statement.where(Case.created_at >= query.start, Case.created_at <= query.end)
        if query.service_codes:
            statement = statement.where(Case.class_code.in_(query.service_codes))
        if query.statuses == {"open"}:
            statement = statement.where(Case.state.in_(OPEN_STATES))
        elif query.statuses == {"closed"}:
            statement = statement.where(Case.state.not_in(OPEN_STATES))
    statement = statement.order_by(Case.created_at.desc(), Case.id.desc()).limit(MAX_REQUESTS)
    return _documents(session, statement, places, tz)


def find_request(session: Session, ticket: str, *, places: Any, tz: tzinfo) -> list[dict[str, Any]]:
    """GET requests/{id}: a list of one."""
    documents = _documents(session, _request_rows().where(Case.ticket == ticket), places, tz)
    if not documents:
        raise NotFound(f"service_request_id {ticket!r} was not found", field="service_request_id")
    return documents


def token(session: Session, value: str) -> list[dict[str, Any]]:
    """Requests are realtime (the id comes back at once), so a token is the request's id."""
    found = session.scalar(select(Case.ticket).where(Case.ticket == value))
    if found is None:
        raise NotFound(f"token {value!r} was not found", field="token")
    return [{"service_request_id": found, "token": value}]
