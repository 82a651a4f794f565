"""REST edges of intake: the generic report, the inspector app (城管通), the citizens' channel,
the hotline desk, and inspectors' positions. Every one ends in `service.receive()`."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, Query, Request, Response, UploadFile
from pydantic import BaseModel, Field
from sqlalchemy import select

from cityloop.cases.models import Case
from cityloop.cases.service import Actor
from cityloop.deps import (
    ActorDep,
    CalendarDep,
    CaseWritingDep,
    ClaimsDep,
    NowDep,
    SessionDep,
    UserDep,
    actor_of,
    saved_in_thread,
)
from cityloop.errors import Forbidden, ValidationFailed
from cityloop.intake import service
from cityloop.intake.models import HotlineCall
from cityloop.intake.service import Report, receive, replay_of, report_fingerprint, sender_key
from cityloop.kit.privacy import SEES_REPORTER_CONTACT, mask_name, mask_phone
from cityloop.media.service import store_photo, store_voice
from cityloop.privacy.service import record_call_views

router = APIRouter(prefix="/api/v1", tags=["intake 信息收集"])

MAX_PHOTOS = 9
IdempotencyKey = Annotated[
    str | None,
    Header(
        max_length=200,
        description="a key of the sender's choosing: the same report sent again with it "
        "answers as the first did (201, the same case) with `Idempotent-Replayed: true`; "
        "another report with it is refused (422, field `Idempotency-Key`)",
    ),
]
REPLAYED_HEADER = "Idempotent-Replayed"


def _mark_replay(response: Response) -> None:
    response.headers[REPLAYED_HEADER] = "true"


HOTLINE_ROLES = frozenset({"operator", "shiftlead", "admin"})
WATCH_ROLES = frozenset({"admin", "leader", "shiftlead", "dispatcher", "operator"})


class ReportIn(BaseModel):
    source: str = Field(
        description="where the report comes from, e.g. inspector, public, hotline_12345, leader"
    )
    class_code: str | None = Field(
        default=None,
        description="GB/T 47678.5 class code (5 digits) or a legacy alias; "
        "left out, it is guessed from the description for the operator to confirm",
    )
    description: str = Field(min_length=1, max_length=2000)
    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)
    urgency: str | None = Field(default=None, pattern="^[ABC]$")
    address: str | None = Field(default=None, max_length=200)
    reporter_name: str | None = Field(default=None, max_length=40)
    reporter_phone: str | None = Field(default=None, max_length=30)
    component_id: str | None = Field(default=None, max_length=17)
    photos: list[str] = Field(default_factory=list, max_length=MAX_PHOTOS)


class ReportOut(BaseModel):
    id: int
    ticket: str
    state: str
    class_code: str
    class_confirmed: bool
    duplicate_of: str | None = Field(
        default=None, description="the ticket of the open case this report was attached to"
    )


def _report_out(session: Any, case: Any) -> ReportOut:
    duplicate_of = None
    if case.merged_into_id is not None:
        # The ticket alone: the case it joined was written in this transaction, so the ORM
        # would load its whole row again.
        duplicate_of = session.scalar(select(Case.ticket).where(Case.id == case.merged_into_id))
    return ReportOut(
        id=case.id,
        ticket=case.ticket,
        state=case.state,
        class_code=case.class_code,
        class_confirmed=case.class_confirmed,
        duplicate_of=duplicate_of,
    )


@router.post(
    "/reports", response_model=ReportOut, status_code=201, summary="Report a problem 上报问题"
)
async def post_report(
    body: ReportIn,
    response: Response,
    writing: CaseWritingDep,
    claims: ClaimsDep,
    idempotency_key: IdempotencyKey = None,
) -> ReportOut:
    session = writing.session

    def save() -> ReportOut:
        actor = actor_of(session, claims)
        report = Report(**body.model_dump())
        case, created = receive(
            session,
            report,
            actor=actor,
            places=writing.places,
            calendar=writing.calendar,
            now=writing.now,
            idempotency_key=sender_key(actor, idempotency_key) if idempotency_key else None,
            gazetteer=writing.gazetteer,
            fingerprint=report_fingerprint(report) if idempotency_key else None,
        )
        if not created:
            _mark_replay(response)
        return _report_out(session, case)

    return await saved_in_thread(session, save)


async def _read_uploads(
    request: Request, files: list[UploadFile]
) -> list[tuple[bytes, str | None]]:
    """The photos' bytes (one over the size limit, so that store_photo can say so)."""
    limit = request.app.state.settings.media_limits.max_photo_bytes + 1
    if len(files) > MAX_PHOTOS:
        raise ValidationFailed(f"at most {MAX_PHOTOS} photos, not {len(files)}", field="photos")
    return [(await upload.read(limit), upload.filename) for upload in files]


def _store_photos(
    request: Request,
    session: Any,
    uploads: list[tuple[bytes, str | None]],
    now: datetime,
    uploaded_by: int | None,
) -> list[str]:
    settings = request.app.state.settings
    return [
        store_photo(
            session,
            data,
            filename,
            directory=settings.media_dir,
            now=now,
            uploaded_by=uploaded_by,
            limits=settings.media_limits,
            field=f"photos.{index}",
        ).id
        for index, (data, filename) in enumerate(uploads)
    ]


@router.post(
    "/inspector/reports",
    response_model=ReportOut,
    status_code=201,
    summary="Inspector app report with photos and voice 城管通上报",
)
async def inspector_report(
    request: Request,
    response: Response,
    writing: CaseWritingDep,
    user: UserDep,
    class_code: Annotated[str, Form(max_length=8)],
    description: Annotated[str, Form(min_length=1, max_length=2000)],
    lon: Annotated[float, Form(ge=-180, le=180)],
    lat: Annotated[float, Form(ge=-90, le=90)],
    photos: Annotated[list[UploadFile], File(description="1 to 9 photos")],
    urgency: Annotated[str | None, Form(pattern="^[ABC]$")] = None,
    address: Annotated[str | None, Form(max_length=200)] = None,
    component_id: Annotated[str | None, Form(max_length=17)] = None,
    voice: Annotated[UploadFile | None, File(description="an optional voice note")] = None,
    idempotency_key: IdempotencyKey = None,
) -> ReportOut:
    if user.role not in ("inspector", "admin"):
        raise Forbidden("the inspector app is for inspectors")
    session, now = writing.session, writing.now
    actor = Actor.of(user)
    settings = request.app.state.settings
    uploads = await _read_uploads(request, photos)
    voice_data = (
        await voice.read(settings.media_limits.max_voice_bytes + 1) if voice is not None else None
    )

    key = sender_key(actor, idempotency_key) if idempotency_key else None
    fields = Report(
        source="inspector",
        class_code=class_code,
        description=description,
        lon=lon,
        lat=lat,
        urgency=urgency,
        address=address,
        component_id=component_id,
    )
    attachments = [data for data, _ in uploads] + ([voice_data] if voice_data is not None else [])
    fingerprint = report_fingerprint(fields, attachments) if key else None

    def save() -> ReportOut:
        if key is not None:
            existing = replay_of(session, f"inspector:{key}", fingerprint)
            if existing is not None:  # a retry from a phone that lost the answer: no new photos
                _mark_replay(response)
                return _report_out(session, existing)
        photo_ids = _store_photos(request, session, uploads, now, user.id)
        voice_id = None
        if voice is not None and voice_data is not None:
            voice_id = store_voice(
                session,
                voice_data,
                voice.filename,
                voice.content_type,
                directory=settings.media_dir,
                now=now,
                uploaded_by=user.id,
                limits=settings.media_limits,
            ).id
        case, created = receive(
            session,
            replace(fields, photos=photo_ids, voice=voice_id),
            actor=actor,
            places=writing.places,
            calendar=writing.calendar,
            now=now,
            idempotency_key=key,
            fingerprint=fingerprint,
        )
        if not created:
            _mark_replay(response)
        return _report_out(session, case)

    return await saved_in_thread(session, save)


CITIZEN_CHANNELS = ("app", "wechat", "web")


@router.post(
    "/citizen/reports",
    response_model=ReportOut,
    status_code=201,
    tags=["public 公众"],
    summary="A citizen reports a problem with photos and a map pin 市民随手拍",
)
async def citizen_report(
    request: Request,
    response: Response,
    writing: CaseWritingDep,
    description: Annotated[str, Form(min_length=1, max_length=2000)],
    phone: Annotated[str, Form(pattern=r"^1\d{10}$", description="mobile number, 11 digits")],
    lon: Annotated[float | None, Form(ge=-180, le=180)] = None,
    lat: Annotated[float | None, Form(ge=-90, le=90)] = None,
    address: Annotated[str | None, Form(max_length=200)] = None,
    class_code: Annotated[str | None, Form(max_length=8)] = None,
    name: Annotated[str | None, Form(max_length=40)] = None,
    channel: Annotated[str, Form()] = "app",
    photos: Annotated[list[UploadFile] | None, File(description="up to 9 photos")] = None,
    idempotency_key: IdempotencyKey = None,
) -> ReportOut:
    if channel not in CITIZEN_CHANNELS:
        raise ValidationFailed(
            f"channel must be one of {', '.join(CITIZEN_CHANNELS)}", field="channel"
        )
    session, now = writing.session, writing.now
    client = request.client.host if request.client else "unknown"
    uploads = await _read_uploads(request, photos or [])

    fields = Report(
        source=channel,
        class_code=class_code,
        description=description,
        lon=lon,
        lat=lat,
        address=address,
        reporter_name=name,
        reporter_phone=phone,
    )
    fingerprint = report_fingerprint(fields, [data for data, _ in uploads])

    def save() -> ReportOut:
        if idempotency_key:
            existing = replay_of(session, f"{channel}:{idempotency_key}", fingerprint)
            if existing is not None:
                _mark_replay(response)
                return _report_out(session, existing)
        service.spend_anonymous_budget(
            session, request.app.state.settings, client, [data for data, _ in uploads], now
        )
        service.check_citizen_quota(session, phone, now)
        photo_ids = _store_photos(request, session, uploads, now, None)
        case, created = receive(
            session,
            replace(fields, photos=photo_ids),
            actor=service.PUBLIC,
            places=writing.places,
            calendar=writing.calendar,
            now=now,
            idempotency_key=idempotency_key,
            gazetteer=writing.gazetteer,
            fingerprint=fingerprint if idempotency_key else None,
        )
        if not created:
            _mark_replay(response)
        return _report_out(session, case)

    return await saved_in_thread(session, save)


class RatingIn(BaseModel):
    phone: str = Field(description="the phone number the report was made with")
    satisfied: bool
    comment: str | None = Field(default=None, max_length=500)


class RatingOut(BaseModel):
    ticket: str
    state: str


@router.post(
    "/tickets/{ticket}/rating",
    response_model=RatingOut,
    tags=["public 公众"],
    summary="The reporter rates the result 满意度评价",
)
def rate(
    ticket: str, body: RatingIn, session: SessionDep, calendar: CalendarDep, now: NowDep
) -> RatingOut:
    case = service.rate_by_ticket(
        session,
        ticket,
        phone=body.phone,
        satisfied=body.satisfied,
        comment=body.comment,
        calendar=calendar,
        now=now,
    )
    return RatingOut(ticket=ticket, state=case.state)


# -- hotline desk ------------------------------------------------------------------------------
class CallIn(BaseModel):
    line: str = Field(description="12345 or 12319")
    kind: str = Field(description="consultation (answered, no case) or case")
    caller_phone: str = Field(min_length=1, max_length=30)
    caller_name: str | None = Field(default=None, max_length=40)
    text: str = Field(min_length=1, max_length=2000)
    address: str | None = Field(default=None, max_length=200)
    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)
    class_code: str | None = Field(default=None, max_length=8)
    urgency: str | None = Field(default=None, pattern="^[ABC]$")
    answer: str | None = Field(default=None, max_length=2000)


class CallOut(BaseModel):
    id: int
    line: str
    kind: str
    status: str
    caller_name: str | None
    caller_phone: str
    text: str
    address: str | None
    answer: str | None
    case_id: int | None
    ticket: str | None
    created_at: datetime


class CallPage(BaseModel):
    items: list[CallOut]
    total: int
    page: int
    page_size: int


def _call_out(session: Any, call: HotlineCall, actor: Actor | None = None) -> CallOut:
    """A call as `actor` may see it: the caller's name and number masked for roles that do
    not call back (R-IN-4)."""
    plain = actor is None or actor.role in SEES_REPORTER_CONTACT
    ticket = None
    if call.case_id is not None:
        from cityloop.cases.models import Case

        case = session.get(Case, call.case_id)
        ticket = case.ticket if case is not None else None
    return CallOut(
        id=call.id,
        line=call.line,
        kind=call.kind,
        status=call.status,
        caller_name=call.caller_name if plain else mask_name(call.caller_name),
        caller_phone=call.caller_phone if plain else mask_phone(call.caller_phone),
        text=call.text,
        address=call.address,
        answer=call.answer,
        case_id=call.case_id,
        ticket=ticket,
        created_at=call.created_at,
    )


# Who reads the calls: the desk, and leaders supervising it (masked), as on the console page.
CALL_READERS = frozenset({"leader"})


def _hotline_user(actor: Actor) -> None:
    if actor.role not in HOTLINE_ROLES:
        raise Forbidden("the hotline desk is for operators and shift leaders")


@router.post(
    "/hotline/calls",
    response_model=CallOut,
    status_code=201,
    tags=["hotline 热线"],
    summary="Register a hotline call 热线登记",
)
def register_call(
    body: CallIn,
    writing: CaseWritingDep,
    actor: ActorDep,
    idempotency_key: IdempotencyKey = None,
) -> CallOut:
    _hotline_user(actor)
    assert actor.user_id is not None
    call = service.register_call(
        writing.session,
        actor=actor,
        operator_id=actor.user_id,
        places=writing.places,
        calendar=writing.calendar,
        now=writing.now,
        gazetteer=writing.gazetteer,
        idempotency_key=sender_key(actor, idempotency_key) if idempotency_key else None,
        **body.model_dump(),
    )
    return _call_out(writing.session, call)


class PlaceIn(BaseModel):
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)


@router.post(
    "/hotline/calls/{call_id}/place",
    response_model=CallOut,
    tags=["hotline 热线"],
    summary="Place a waiting call on the map 补充定位",
)
def place_call(
    call_id: int,
    body: PlaceIn,
    writing: CaseWritingDep,
    actor: ActorDep,
) -> CallOut:
    _hotline_user(actor)
    call = service.place_call(
        writing.session,
        call_id,
        actor=actor,
        lon=body.lon,
        lat=body.lat,
        places=writing.places,
        calendar=writing.calendar,
        now=writing.now,
    )
    return _call_out(writing.session, call)


@router.get(
    "/hotline/calls",
    response_model=CallPage,
    tags=["hotline 热线"],
    summary="Hotline calls 热线记录",
)
def list_calls(
    session: SessionDep,
    actor: ActorDep,
    now: NowDep,
    status: str | None = None,
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 20,
) -> CallPage:
    if actor.role not in CALL_READERS:
        _hotline_user(actor)
    rows, total = service.list_calls(session, status=status, page=page, page_size=page_size)
    if actor.role in SEES_REPORTER_CONTACT:
        record_call_views(session, actor, list(rows), now=now)
    return CallPage(
        items=[_call_out(session, c, actor) for c in rows],
        total=total,
        page=page,
        page_size=page_size,
    )


# -- inspectors' positions ---------------------------------------------------------------------
class PositionIn(BaseModel):
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    at: datetime
    accuracy_m: float | None = Field(default=None, ge=0, le=100000)


class PositionsIn(BaseModel):
    positions: list[PositionIn] = Field(min_length=1, max_length=1000)


class PositionOut(BaseModel):
    user_id: int
    name: str
    lon: float
    lat: float
    at: datetime


@router.post(
    "/inspector/positions",
    status_code=201,
    tags=["inspector 城管通"],
    summary="The phone reports where the inspector is 位置上报",
)
def post_positions(body: PositionsIn, session: SessionDep, user: UserDep) -> dict[str, int]:
    if user.role != "inspector":
        raise Forbidden("only inspectors report positions")
    count = service.record_positions(session, user.id, [p.model_dump() for p in body.positions])
    return {"stored": count}


@router.get(
    "/inspectors/positions",
    response_model=list[PositionOut],
    tags=["inspector 城管通"],
    summary="Every inspector's last position 监督员位置",
)
def latest_positions(session: SessionDep, actor: ActorDep) -> list[PositionOut]:
    if actor.role not in WATCH_ROLES:
        raise Forbidden("positions are for the command centre")
    return [
        PositionOut(user_id=u.id, name=u.display_name, lon=p.lon, lat=p.lat, at=p.at)
        for u, p in service.latest_positions(session)
    ]


@router.get(
    "/inspectors/{user_id}/track",
    response_model=list[PositionOut],
    tags=["inspector 城管通"],
    summary="An inspector's track 巡查轨迹",
)
def inspector_track(
    user_id: int, since: datetime, until: datetime, session: SessionDep, actor: ActorDep
) -> list[PositionOut]:
    if actor.role not in WATCH_ROLES and actor.user_id != user_id:
        raise Forbidden("tracks are for the command centre and the inspector")
    from cityloop.org.service import require_user

    user = require_user(session, user_id)
    return [
        PositionOut(user_id=user.id, name=user.display_name, lon=p.lon, lat=p.lat, at=p.at)
        for p in service.track(session, user_id, since, until)
    ]
