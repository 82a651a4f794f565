"""`receive()`: the one intake path. Services flush; the caller commits."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import h3
from sqlalchemy import bindparam, func, insert, select
from sqlalchemy import text as sql_text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cityloop.cases.models import Case
from cityloop.cases.service import (
    PUBLIC,
    Actor,
    Locator,
    add_note,
    auto_route,
    create_case,
    find_by_idempotency_key,
    get_case,
    transition,
)
from cityloop.cases.states import OPEN_CASE_SQL, OPEN_STATES
from cityloop.errors import Conflict, Forbidden, NotFound, TooManyRequests, ValidationFailed
from cityloop.events import DomainEvent, publish
from cityloop.intake.models import HotlineCall, InspectorPosition
from cityloop.kit.calendar import WorkingCalendar
from cityloop.kit.geo import h3_cell, haversine_m
from cityloop.learning import service as learning
from cityloop.media.service import declared_pixels
from cityloop.org import throttle
from cityloop.org.models import User
from cityloop.taxonomy.service import minor_class_names

STAFF = frozenset({"operator", "shiftlead", "dispatcher", "admin"})
# Non-human reporters: a partner platform authenticated by its API key, a camera or sensor.
PARTNER = frozenset({"partner"})
DEVICE = frozenset({"device"})
ANYONE: frozenset[str] = frozenset()

# source -> (Chinese label, roles that may report from it; empty = anyone, no login needed)
SOURCES: dict[str, tuple[str, frozenset[str]]] = {
    "inspector": ("监督员上报", frozenset({"inspector", "admin"})),
    "public": ("公众举报", ANYONE),
    "wechat": ("微信公众号", ANYONE),
    "app": ("市民APP", ANYONE),
    "web": ("网站", ANYONE),
    "hotline_12319": ("12319热线", STAFF),
    "hotline_12345": ("12345热线", STAFF),
    "partner_12345": ("12345平台转办", STAFF | PARTNER),
    "partner_110": ("110转办", STAFF | PARTNER),
    "public_safety": ("公共安全平台转办", STAFF | PARTNER),
    "open311": ("Open311接口", ANYONE),
    "leader": ("领导交办", frozenset({"leader", "admin"})),
    "media": ("媒体曝光", STAFF),
    "newspaper": ("报纸", STAFF),
    "forum": ("网络论坛", STAFF),
    "visit": ("来访", STAFF),
    "video": ("视频监控", STAFF | DEVICE),
    "sensor": ("物联感知", STAFF | DEVICE),
    "drone": ("无人机巡查", STAFF),
}


def initial_state(source: str) -> str:
    """Inspectors' reports wait for filing; leaders' are filed at once; others are verified."""
    if source == "inspector":
        return "pending_filing"
    if source == "leader":
        return "filed"
    return "reported"


# Sources whose repeats have their own rule (cameras and sensors join their open case;
# leaders' assignments always stand on their own).
NO_DEDUPLICATION = frozenset({"leader", "video", "sensor"})
MACHINE_SOURCES = frozenset({"video", "sensor"})
# Reports trusted enough to skip the desks when ownership is clear (verified on site already,
# or assigned by a leader).
AUTO_ROUTED_SOURCES = frozenset({"inspector", "leader"})
DUPLICATE_RADIUS_M = 50.0
DUPLICATE_WINDOW_DAYS = 7


@dataclass
class Report:
    source: str
    class_code: str | None
    description: str
    lon: float | None = None
    lat: float | None = None
    urgency: str | None = None
    address: str | None = None
    reporter_name: str | None = None
    reporter_phone: str | None = None
    component_id: str | None = None
    photos: list[Any] = field(default_factory=list)
    voice: str | None = None
    # A device or partner platform vouching for its report (a confident camera detection, a
    # sensor over its threshold) may ask for it to start filed: see start_state().
    initial_state: str | None = None


# States a device or partner may ask its report to start in (Report.initial_state).
REQUESTABLE_STATES = frozenset({"reported", "filed"})


def start_state(report: Report, actor: Actor) -> str:
    """The source's initial state, or the one a device or partner platform asked for."""
    if report.initial_state is None:
        return initial_state(report.source)
    if actor.role not in DEVICE | PARTNER or report.initial_state not in REQUESTABLE_STATES:
        raise ValidationFailed(
            "only a device or partner platform may choose the initial state "
            f"({', '.join(sorted(REQUESTABLE_STATES))})",
            field="initial_state",
        )
    return report.initial_state


class AddressLookup(Protocol):
    def geocode(self, address: str) -> Any: ...


def sender_key(actor: Actor, key: str) -> str:
    """An Idempotency-Key as its sender's: a user's keys are theirs alone; an anonymous
    sender has no name, so its key stands alone and the fingerprint guards it."""
    return key if actor.user_id is None else f"u{actor.user_id}:{key}"


def report_fingerprint(report: Report, attachments: Iterable[bytes] | None = None) -> str:
    """sha256 over what the report says; for a multipart report, over its files' bytes
    instead of the media ids each attempt's files get."""
    fields = {k: v for k, v in asdict(report).items() if k not in ("photos", "voice")}
    if attachments is None:
        fields["photos"], fields["voice"] = list(report.photos), report.voice
    else:
        fields["files"] = [hashlib.sha256(data).hexdigest() for data in attachments]
    canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def replay_of(session: Session, key: str, fingerprint: str | None) -> Case | None:
    """The case a report with this (scoped) key made, when this is the same report again.
    The same key with another body is refused (IETF Idempotency-Key draft: 422)."""
    existing = find_by_idempotency_key(session, key)
    if (
        existing is not None
        and fingerprint is not None
        and existing.idempotency_fingerprint is not None
        and existing.idempotency_fingerprint != fingerprint
    ):
        raise ValidationFailed(
            "this Idempotency-Key was already used for another report; send a new report "
            "with a new key",
            field="Idempotency-Key",
        )
    return existing


def receive(
    session: Session,
    report: Report,
    *,
    actor: Actor,
    places: Locator,
    calendar: WorkingCalendar,
    now: datetime,
    idempotency_key: str | None = None,
    gazetteer: AddressLookup | None = None,
    fingerprint: str | None = None,
) -> tuple[Case, bool]:
    """The one intake path: create the case for a report, or return the one a replay made.

    In order: the source and the reporter's role; a replay (same source + idempotency key)
    returns the first case; the location (lon/lat, else the address through the gazetteer);
    the class (given, else guessed from the text for the operator to confirm); an open case of
    the same class within 50 m in the last 7 days makes this report a duplicate attached to it;
    the state the case starts in depends on the source. Returns (case, created).

    `fingerprint` (report_fingerprint) is given by the edges where a caller chose the key (the
    Idempotency-Key header, scoped with sender_key): a replay must then be the same report."""
    if report.source not in SOURCES:
        raise ValidationFailed(
            f"unknown source {report.source!r}; one of: {', '.join(SOURCES)}", field="source"
        )
    allowed = SOURCES[report.source][1]
    if allowed and actor.role not in allowed:
        roles = ", ".join(sorted(allowed))
        raise Forbidden(f"reports from source {report.source} need one of the roles {roles}")
    key = f"{report.source}:{idempotency_key}" if idempotency_key else None
    if key is not None:
        existing = replay_of(session, key, fingerprint)
        if existing is not None:
            return existing, False
    description = (report.description or "").strip()
    if not description:
        raise ValidationFailed("description must not be empty", field="description")
    notes: dict[str, Any] = {}
    lon, lat = _position(report, gazetteer, notes)
    # A camera's or sensor's class comes from the device: nothing for a person to choose.
    suggestion = (
        None
        if report.source in MACHINE_SOURCES
        else _suggest(session, places, description, lon, lat, notes)
    )
    class_code = report.class_code
    if not class_code:
        class_code = _guess_class(session, description, notes, suggestion)
    duplicate = None
    if report.source not in NO_DEDUPLICATION:
        duplicate = find_duplicate(session, places, class_code, lon, lat, now)
        if duplicate is None and suggestion is not None:
            candidates = duplicate_candidates(
                session, suggestion, class_code, description, lon, lat, now
            )
            if candidates:
                notes["duplicate_candidates"] = candidates
    state = "merged" if duplicate is not None else start_state(report, actor)
    if (
        state == "reported"
        and not report.class_code
        and suggestion is not None
        and learning.prefile(session, report.source, suggestion)
    ):
        # Pre-classified and pre-routed: it waits for a person to file it, skipping the
        # verification desk; the suggested department is the dispatcher's proposal.
        state = "pending_filing"
        notes["prefiled"] = {
            "class_code": class_code,
            "department": suggestion.departments[0] if suggestion.departments else None,
        }
    if duplicate is not None:
        notes["duplicate_of"] = duplicate.ticket
    try:
        # A replay racing its original (two sends of one key at once) meets the original's
        # row in the key's unique index: it waits for it, and answers with that case.
        with session.begin_nested() if key is not None else nullcontext():
            case = create_case(
                session,
                places=places,
                calendar=calendar,
                now=now,
                actor=actor,
                source=report.source,
                class_code=class_code,
                description=description,
                lon=lon,
                lat=lat,
                initial_state=state,
                urgency=report.urgency,
                address=report.address,
                reporter_name=report.reporter_name,
                reporter_phone=report.reporter_phone,
                component_id=report.component_id,
                leader_assigned=report.source == "leader",
                idempotency_key=key,
                idempotency_fingerprint=fingerprint if key is not None else None,
                photos=report.photos,
                voice=report.voice,
                merged_into_id=duplicate.id if duplicate is not None else None,
                class_confirmed="class_suggestions" not in notes,
                event_notes=notes,
            )
    except IntegrityError:
        existing = replay_of(session, key, fingerprint) if key is not None else None
        if existing is None:
            raise
        return existing, False
    # A case born is the first event of its flow; the automatic file + dispatch below are
    # published by transition() after it.
    publish(
        session,
        DomainEvent(
            flow="case",
            record_id=case.id,
            action="report",
            from_state=None,
            to_state=case.state,
            actor_name=actor.name,
            actor_role=actor.role,
            at=now,
            actor_id=actor.user_id,
            payload={"source": report.source, **notes},
            record=case,
        ),
    )
    if suggestion is not None:
        learning.record(
            session,
            suggestion,
            case_id=case.id,
            source=report.source,
            chosen_class=report.class_code or None,
            now=now,
        )
    if duplicate is None and report.source in AUTO_ROUTED_SOURCES:
        auto_route(session, case, now=now, calendar=calendar)
    if duplicate is not None:
        add_note(
            session,
            duplicate,
            actor,
            "duplicate_report",
            now,
            {"ticket": case.ticket, "case_id": case.id, "source": report.source},
            list(report.photos),
        )
    return case, True


def _position(
    report: Report, gazetteer: AddressLookup | None, notes: dict[str, Any]
) -> tuple[float, float]:
    if report.lon is not None and report.lat is not None:
        return report.lon, report.lat
    if report.lon is not None or report.lat is not None:
        missing = "lat" if report.lat is None else "lon"
        raise ValidationFailed(f"{missing} is missing: give both lon and lat", field=missing)
    if not report.address:
        raise ValidationFailed("give a position (lon and lat) or an address", field="lon")
    found = gazetteer.geocode(report.address) if gazetteer is not None else None
    if found is None:
        raise ValidationFailed(
            f"the address {report.address!r} is not in the city's gazetteer; "
            "give lon and lat (pick the point on the map)",
            field="address",
        )
    notes["located_by"] = {
        "address": report.address,
        "matched": found.name,
        "score": round(found.score, 1),
    }
    return found.lon, found.lat


def _suggest(
    session: Session,
    places: Locator,
    description: str,
    lon: float,
    lat: float,
    notes: dict[str, Any],
) -> learning.Suggestion | None:
    """The trained model's top classes and departments (None before `cityloop learn`); the
    timeline keeps them with the model's version."""
    if not learning.has_model(session):
        return None
    found = places.locate(lon, lat)
    suggestion = learning.suggest(
        session, description, district=found.district if found is not None else None
    )
    if suggestion is not None:
        notes["suggestion"] = {
            "model": suggestion.model,
            "classes": suggestion.classes,
            "departments": suggestion.departments,
        }
    return suggestion


def _guess_class(
    session: Session,
    description: str,
    notes: dict[str, Any],
    suggestion: learning.Suggestion | None = None,
) -> str:
    from cityloop.intake.classify import suggest

    if suggestion is not None and suggestion.classes:
        notes["class_suggestions"] = [
            {"class_code": c["code"], "name": c["name"], "score": c["p"]}
            for c in suggestion.classes
        ]
        return str(suggestion.classes[0]["code"])
    names = minor_class_names(session)
    suggestions = suggest(description, names)
    if not suggestions:
        raise ValidationFailed(
            "no class_code given and none could be guessed from the description; choose one",
            field="class_code",
        )
    notes["class_suggestions"] = [
        {"class_code": s.class_code, "name": s.name, "score": s.score} for s in suggestions
    ]
    return suggestions[0].class_code


# Built once, with one parameter per cell of the disk (19 at radius 2; a disk touching one
# of h3's pentagons has fewer, and repeats a cell): an expanding IN list would be rendered
# anew for every report, which costs more than the query. The open-case condition is the
# partial index's own (ix_cases_open_class_h3), so that index, which holds open cases only,
# is the one that can serve it: before it, every case the cells ever had came back and was
# filtered here (a hot spot's merged reports and years of closed cases, for every report).
# The time window is checked on the few rows returned: with it in SQL, PostgreSQL's
# generic plan for the prepared statement could read the class's whole window instead.
_DISK_RADIUS = 2
_DISK_CELLS = 1 + 3 * _DISK_RADIUS * (_DISK_RADIUS + 1)
# The table's columns, not the entity's: the ORM's handling of an entity query cost more than
# the rest of the search, for four plain values.
_CASES = Case.__table__.c
_NEARBY = select(_CASES.id, _CASES.lon, _CASES.lat, _CASES.created_at).where(
    _CASES.class_code == bindparam("class_code"),
    _CASES.h3_cell.in_([bindparam(f"cell{i}") for i in range(_DISK_CELLS)]),
    sql_text(OPEN_CASE_SQL),
)


def find_duplicate(
    session: Session, places: Locator, class_code: str, lon: float, lat: float, now: datetime
) -> Case | None:
    """The nearest open case of the same class within 50 m reported in the last 7 days,
    locked for this transaction: two reports of the same bin arriving together are both
    attached to it, one after the other, instead of one of them failing."""
    for _distance, case_id in _nearby(session, class_code, lon, lat, now):
        case = get_case(session, case_id, for_update=True)
        if case.state in OPEN_STATES:  # it may have moved on while we waited for the lock
            return case
    return None


def _nearby(
    session: Session, class_code: str, lon: float, lat: float, now: datetime
) -> list[tuple[float, int]]:
    """(distance, case id) of the open cases of a class within 50 m in the last 7 days."""
    cells = list(h3.grid_disk(h3_cell(lon, lat), _DISK_RADIUS))
    cells += cells[:1] * (_DISK_CELLS - len(cells))
    since = now - timedelta(days=DUPLICATE_WINDOW_DAYS)
    parameters: dict[str, Any] = {f"cell{i}": cell for i, cell in enumerate(cells)}
    parameters["class_code"] = class_code
    nearest = sorted(
        (haversine_m(lon, lat, c_lon, c_lat), case_id)
        for case_id, c_lon, c_lat, created_at in session.execute(_NEARBY, parameters)
        if since <= created_at <= now
    )
    return [(d, case_id) for d, case_id in nearest if d <= DUPLICATE_RADIUS_M]


# Two reports alike in meaning at least this much (learning.similarity, 0-1) are offered to
# the operator as one problem: measured on the demo generator's paraphrases (BENCHMARKS.md).
SEMANTIC_DUPLICATE_SCORE = 0.6


def duplicate_candidates(
    session: Session,
    suggestion: learning.Suggestion,
    class_code: str,
    description: str,
    lon: float,
    lat: float,
    now: datetime,
) -> list[dict[str, Any]]:
    """The same search by meaning: open cases within 50 m in the last 7 days whose class is
    another of the model's top classes for this text ("果皮箱溢出" filed as 暴露垃圾 beside a
    "垃圾桶满了没人清"), scored by how alike the two texts are. The operator decides: these
    are not merged automatically."""
    found: list[tuple[float, int]] = []
    for other in suggestion.classes:
        if other["code"] != class_code:
            found += _nearby(session, other["code"], lon, lat, now)
    if not found:
        return []
    rows = session.execute(
        select(_CASES.id, _CASES.ticket, _CASES.description).where(
            _CASES.id.in_([case_id for _d, case_id in found])
        )
    ).all()
    scores = learning.similarity(session, description, [r.description for r in rows]) or []
    distance = {case_id: d for d, case_id in found}
    candidates = [
        {
            "ticket": r.ticket,
            "case_id": r.id,
            "score": round(score, 3),
            "metres": round(distance[r.id]),
        }
        for r, score in zip(rows, scores, strict=True)
        if score >= SEMANTIC_DUPLICATE_SCORE
    ]
    return sorted(candidates, key=lambda c: -c["score"])[:3]


# -- hotline desk (R-IN-4) -------------------------------------------------------------------
HOTLINES = {"12319": "hotline_12319", "12345": "hotline_12345"}


def register_call(
    session: Session,
    *,
    actor: Actor,
    operator_id: int,
    line: str,
    kind: str,
    caller_phone: str,
    text: str,
    caller_name: str | None,
    address: str | None,
    lon: float | None,
    lat: float | None,
    class_code: str | None,
    urgency: str | None,
    answer: str | None,
    places: Locator,
    calendar: WorkingCalendar,
    now: datetime,
    gazetteer: AddressLookup | None,
    idempotency_key: str | None = None,
) -> HotlineCall:
    """A call at the desk: a consultation is answered and recorded with no case; a complaint
    becomes a case through receive(), or waits for the operator to place it on the map."""
    if line not in HOTLINES:
        raise ValidationFailed(f"line must be one of {', '.join(HOTLINES)}", field="line")
    if kind not in ("consultation", "case"):
        raise ValidationFailed("kind must be consultation or case", field="kind")
    if not caller_phone.strip():
        raise ValidationFailed("caller_phone is required", field="caller_phone")
    if not text.strip():
        raise ValidationFailed("text must not be empty", field="text")
    call = HotlineCall(
        line=line,
        kind=kind,
        caller_phone=caller_phone.strip(),
        caller_name=caller_name,
        text=text.strip(),
        address=address,
        class_code=class_code,
        operator_id=operator_id,
        created_at=now,
        status="answered",
    )
    if kind == "consultation":
        if not (answer or "").strip():
            raise ValidationFailed("a consultation needs the answer given", field="answer")
        call.answer = answer
        session.add(call)
        session.flush()
        return call
    report = Report(
        source=HOTLINES[line],
        class_code=class_code,
        description=text,
        lon=lon,
        lat=lat,
        address=address,
        urgency=urgency,
        reporter_name=caller_name,
        reporter_phone=call.caller_phone,
    )
    try:
        with session.begin_nested():
            case, _ = receive(
                session,
                report,
                actor=actor,
                places=places,
                calendar=calendar,
                now=now,
                idempotency_key=idempotency_key,
                gazetteer=gazetteer,
                fingerprint=report_fingerprint(report) if idempotency_key else None,
            )
    except ValidationFailed as exc:
        if exc.field not in ("address", "lon"):
            raise
        call.status = "waiting_location"
        session.add(call)
        session.flush()
        return call
    call.status, call.case_id = "case_created", case.id
    session.add(call)
    session.flush()
    return call


def place_call(
    session: Session,
    call_id: int,
    *,
    actor: Actor,
    lon: float,
    lat: float,
    places: Locator,
    calendar: WorkingCalendar,
    now: datetime,
) -> HotlineCall:
    """The operator picked the point on the map for a call the gazetteer could not place."""
    call = session.get(HotlineCall, call_id)
    if call is None:
        raise NotFound(f"hotline call {call_id} not found")
    if call.status != "waiting_location":
        raise Conflict(f"call {call_id} is not waiting for a location (it is {call.status})")
    report = Report(
        source=HOTLINES[call.line],
        class_code=call.class_code,
        description=call.text,
        lon=lon,
        lat=lat,
        address=call.address,
        reporter_name=call.caller_name,
        reporter_phone=call.caller_phone,
    )
    case, _ = receive(session, report, actor=actor, places=places, calendar=calendar, now=now)
    call.status, call.case_id = "case_created", case.id
    session.flush()
    return call


def list_calls(
    session: Session, *, status: str | None, page: int, page_size: int
) -> tuple[list[HotlineCall], int]:
    query = select(HotlineCall)
    if status is not None:
        query = query.where(HotlineCall.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(HotlineCall.created_at.desc(), HotlineCall.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return list(rows), total


# -- citizens (R-IN-3, R-CL-4) -----------------------------------------------------------------
CITIZEN_REPORTS_PER_HOUR = 10


def check_citizen_quota(session: Session, phone: str, now: datetime) -> None:
    """A phone may send so many reports an hour: counted from the cases themselves."""
    recent = (
        session.scalar(
            select(func.count())
            .select_from(Case)
            .where(Case.reporter_phone == phone, Case.created_at >= now - timedelta(hours=1))
        )
        or 0
    )
    if recent >= CITIZEN_REPORTS_PER_HOUR:
        raise TooManyRequests(
            f"this phone has sent {recent} reports in the last hour; please wait", field="phone"
        )


def spend_anonymous_budget(
    session: Session, settings: Any, client: str, photos: list[bytes], now: datetime
) -> None:
    """An anonymous sender's hourly budget, per client address and counted in the database
    (org.throttle.spend), whatever phone number the form gives: one report, and the
    megapixels its photos declare — charged before any is decoded."""
    hour = timedelta(hours=1)
    throttle.spend(
        session,
        "reports",
        client,
        1,
        limit=settings.anonymous_reports_per_hour,
        window=hour,
        now=now,
        field="client",
        message="too many reports from this address",
    )
    if photos:
        megapixels = math.ceil(sum(declared_pixels(data) for data in photos) / 1_000_000)
        throttle.spend(
            session,
            "megapixels",
            client,
            megapixels,
            limit=int(settings.anonymous_megapixels_per_hour),
            window=hour,
            now=now,
            field="photos",
            message="too many photos from this address",
        )


def rate_by_ticket(
    session: Session,
    ticket: str,
    *,
    phone: str,
    satisfied: bool,
    comment: str | None,
    calendar: WorkingCalendar,
    now: datetime,
) -> Case:
    """The reporter rates the result: satisfied archives, not satisfied reopens (R-CL-4)."""
    case = session.scalar(select(Case).where(Case.ticket == ticket))
    if case is None or not case.reporter_phone or case.reporter_phone != phone.strip():
        # One answer for both: the ticket alone must not reveal whose report it is.
        raise NotFound("no report with this ticket and phone number")
    target = session.get(Case, case.merged_into_id) if case.merged_into_id else case
    assert target is not None
    payload = {"satisfied": satisfied, "by": "reporter", "ticket": ticket}
    if comment:
        payload["comment"] = comment
    return transition(
        session, target.id, "return_visit", PUBLIC, payload, now=now, calendar=calendar
    )


# -- inspectors' positions (R-IN-2, R-AN-4) -----------------------------------------------------
def record_positions(session: Session, user_id: int, points: list[dict[str, Any]]) -> int:
    rows = []
    for index, point in enumerate(points):
        lon, lat, at = point.get("lon"), point.get("lat"), point.get("at")
        if not isinstance(lon, int | float) or not isinstance(lat, int | float):
            raise ValidationFailed(
                f"positions[{index}]: lon and lat must be numbers", field=f"positions.{index}"
            )
        if not isinstance(at, datetime) or at.tzinfo is None:
            raise ValidationFailed(
                f"positions[{index}]: at must be a time with its offset",
                field=f"positions.{index}.at",
            )
        rows.append(
            {
                "user_id": user_id,
                "at": at,
                "lon": float(lon),
                "lat": float(lat),
                "accuracy_m": point.get("accuracy_m"),
            }
        )
    if rows:
        session.execute(insert(InspectorPosition), rows)
        session.flush()
    return len(rows)


def latest_positions(session: Session) -> list[tuple[User, InspectorPosition]]:
    newest = (
        select(InspectorPosition.user_id, func.max(InspectorPosition.at).label("at"))
        .group_by(InspectorPosition.user_id)
        .subquery()
    )
    rows = session.execute(
        select(User, InspectorPosition)
        .join(InspectorPosition, InspectorPosition.user_id == User.id)
        .join(
            newest,
            (newest.c.user_id == InspectorPosition.user_id) & (newest.c.at == InspectorPosition.at),
        )
        .order_by(User.id)
    ).all()
    return [(user, position) for user, position in rows]


def track(
    session: Session, user_id: int, since: datetime, until: datetime
) -> list[InspectorPosition]:
    return list(
        session.scalars(
            select(InspectorPosition)
            .where(
                InspectorPosition.user_id == user_id,
                InspectorPosition.at >= since,
                InspectorPosition.at <= until,
            )
            .order_by(InspectorPosition.at)
        )
    )
