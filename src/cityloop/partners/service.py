"""Partner platforms: keys, forwarded reports, ticket links and status pushes.

Services flush; the caller owns the transaction. A forwarded report goes through
`intake.receive()` like every other report; this module adds the partner's identity, its
ticket id as the idempotency key, and the link that later status pushes follow.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cityloop.cases.models import Case
from cityloop.cases.service import Locator, partner_actor
from cityloop.cases.states import BY_ACTION, STATES, state_label
from cityloop.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from cityloop.intake.service import SOURCES, Report, receive
from cityloop.kit.calendar import WorkingCalendar
from cityloop.kit.geo import gcj02_to_wgs84
from cityloop.org.models import Department
from cityloop.outbox.service import enqueue
from cityloop.partners.hooks import PARTNER_SOURCES
from cityloop.partners.models import Partner, PartnerTicket

STATUS_TOPIC = "case.status"
CODE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")
# A partner's ticket id: no spaces or slashes, so that it is safe in logs and in a URL path.
EXTERNAL_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")
MIN_KEY_LENGTH = 12
# Actions that leave the state as it is but that a partner's citizen would want to hear of:
# who handles the case now, a progress note, a new deadline.
VISIBLE_SAME_STATE_ACTIONS = frozenset(
    {"dispatch", "pass_down", "assign_proxy", "feedback", "approve_postpone"}
)


# -- keys ---------------------------------------------------------------------------------------
def new_key() -> str:
    return "clk_" + secrets.token_urlsafe(32)


def key_digest(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def _check_key(api_key: str) -> None:
    if len(api_key) < MIN_KEY_LENGTH or len(api_key) > 200 or not api_key.isprintable():
        raise ValidationFailed(
            f"an API key must be {MIN_KEY_LENGTH} to 200 printable characters", field="api_key"
        )


@dataclass(frozen=True)
class Caller:
    """The partner behind an API key, as a request needs it (no session attached)."""

    id: int
    code: str
    name: str
    source: str
    webhook_url: str | None
    active: bool


# digest -> (when read, the caller). Keys are checked on every report, so each process keeps
# what it read for a few seconds; a change made in this process clears it, one made in another
# takes effect here within KEY_CACHE_SECONDS.
KEY_CACHE_SECONDS = 5.0
_callers: dict[str, tuple[float, Caller]] = {}
_callers_lock = threading.Lock()


def forget_keys() -> None:
    with _callers_lock:
        _callers.clear()


def _caller(session: Session, digest: str) -> Caller | None:
    now = time.monotonic()
    cached = _callers.get(digest)
    if cached is not None and now - cached[0] < KEY_CACHE_SECONDS:
        return cached[1]
    row = session.execute(
        select(
            Partner.id,
            Partner.code,
            Partner.name,
            Partner.source,
            Partner.webhook_url,
            Partner.active,
        ).where(Partner.key_digest == digest)
    ).first()
    if row is None:
        return None  # unknown keys are not cached: a guesser must not fill the memory
    caller = Caller(row.id, row.code, row.name, row.source, row.webhook_url, row.active)
    with _callers_lock:
        if len(_callers) > 1000:
            _callers.clear()
        _callers[digest] = (now, caller)
    return caller


def authenticate(session: Session, api_key: str | None, *, field: str = "X-Api-Key") -> Caller:
    """The active partner holding this key."""
    if not api_key:
        raise Unauthorized(f"send the partner's API key in {field}", field=field)
    if len(api_key) > 200:
        raise Unauthorized("unknown API key", field=field)
    caller = _caller(session, key_digest(api_key))
    if caller is None:
        raise Unauthorized("unknown API key", field=field)
    if not caller.active:
        raise Forbidden(f"the partner {caller.code} is disabled", field=field)
    return caller


# -- administration ----------------------------------------------------------------------------
def check_webhook_url(url: str | None) -> str | None:
    if url is None or url == "":
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 300:
        raise ValidationFailed(
            "webhook_url must be an http(s) URL of at most 300 characters", field="webhook_url"
        )
    return url


def create_partner(
    session: Session,
    *,
    code: str,
    name: str,
    source: str,
    now: datetime,
    webhook_url: str | None = None,
    api_key: str | None = None,
) -> tuple[Partner, str]:
    """Register a partner; returns it with its API key, which is shown this once only."""
    if not CODE_PATTERN.match(code):
        raise ValidationFailed("code must be 2-40 lower-case letters, digits or '-'", field="code")
    if not name.strip():
        raise ValidationFailed("name must not be empty", field="name")
    if source not in PARTNER_SOURCES or source not in SOURCES:
        raise ValidationFailed(
            f"source must be one of {', '.join(sorted(PARTNER_SOURCES))}", field="source"
        )
    if session.scalar(select(Partner.id).where(Partner.code == code)) is not None:
        raise Conflict(f"a partner with code {code} already exists", field="code")
    key = api_key or new_key()
    _check_key(key)
    digest = key_digest(key)
    if session.scalar(select(Partner.id).where(Partner.key_digest == digest)) is not None:
        raise Conflict("this API key is already in use", field="api_key")
    partner = Partner(
        code=code,
        name=name.strip(),
        source=source,
        key_digest=digest,
        key_hint=key[-4:],
        webhook_url=check_webhook_url(webhook_url),
        active=True,
        created_at=now,
    )
    session.add(partner)
    session.flush()
    forget_keys()
    return partner, key


def get_partner(session: Session, partner_id: int) -> Partner:
    partner = session.get(Partner, partner_id)
    if partner is None:
        raise NotFound(f"partner {partner_id} not found")
    return partner


def list_partners(session: Session) -> list[Partner]:
    return list(session.scalars(select(Partner).order_by(Partner.code)))


def update_partner(session: Session, partner_id: int, changes: dict[str, Any]) -> Partner:
    partner = get_partner(session, partner_id)
    for name, value in changes.items():
        if name == "name":
            if not isinstance(value, str) or not value.strip():
                raise ValidationFailed("name must not be empty", field="name")
            partner.name = value.strip()
        elif name == "webhook_url":
            partner.webhook_url = check_webhook_url(value)
        elif name == "active":
            if not isinstance(value, bool):
                raise ValidationFailed("active must be true or false", field="active")
            partner.active = value
        else:
            raise ValidationFailed(f"{name} cannot be changed", field=name)
    session.flush()
    forget_keys()
    return partner


def rotate_key(session: Session, partner_id: int) -> tuple[Partner, str]:
    """A new key for the partner; the old one stops working when the transaction commits."""
    partner = get_partner(session, partner_id)
    key = new_key()
    partner.key_digest = key_digest(key)
    partner.key_hint = key[-4:]
    session.flush()
    forget_keys()
    return partner, key


def revoke_key(session: Session, partner_id: int) -> Partner:
    """The partner's key stops working when the transaction commits; the partner stays
    registered (its tickets, its webhook) until a new key is issued with `rotate_key`.

    The digest column is unique and required, so it gets the digest of a random key that is
    never shown to anyone; an empty hint marks the partner as keyless."""
    partner = get_partner(session, partner_id)
    partner.key_digest = key_digest(new_key())
    partner.key_hint = ""
    session.flush()
    forget_keys()
    return partner


# -- forwarded reports -------------------------------------------------------------------------
@dataclass
class PartnerReport:
    ticket_id: str
    class_code: str
    description: str
    lon: float
    lat: float
    coord_system: str = "wgs84"
    urgency: str | None = None
    address: str | None = None
    reporter_name: str | None = None
    reporter_phone: str | None = None
    photo_urls: list[str] = field(default_factory=list)


def check_external_id(external_id: str, *, field: str = "ticket_id") -> str:
    if not EXTERNAL_ID_PATTERN.match(external_id):
        raise ValidationFailed(
            f"{field} must be 1-100 characters: letters, digits and . _ : -", field=field
        )
    return external_id


def receive_partner_report(
    session: Session,
    partner: Caller,
    report: PartnerReport,
    *,
    places: Locator,
    calendar: WorkingCalendar,
    now: datetime,
) -> tuple[Case, bool]:
    """The case for a partner's ticket: created once, returned again on every replay.

    Returns (case, created)."""
    check_external_id(report.ticket_id)
    media_urls = check_media_urls(report.photo_urls, field="photo_urls")
    lon, lat = report.lon, report.lat
    if report.coord_system == "gcj02":
        lon, lat = gcj02_to_wgs84(lon, lat)
    elif report.coord_system != "wgs84":
        raise ValidationFailed("coord_system must be wgs84 or gcj02", field="coord_system")
    intake_report = Report(
        source=partner.source,
        class_code=report.class_code,
        description=report.description,
        lon=lon,
        lat=lat,
        urgency=report.urgency,
        address=report.address,
        reporter_name=report.reporter_name,
        reporter_phone=report.reporter_phone,
    )
    try:
        # A savepoint: when the same ticket is being saved by a concurrent request, our
        # insert fails on the unique key and we answer with the case that request made.
        with session.begin_nested():
            case, created = receive(
                session,
                intake_report,
                actor=partner_actor(partner.name),
                places=places,
                calendar=calendar,
                now=now,
                idempotency_key=f"{partner.code}:{report.ticket_id}",
            )
            if created:
                link_case(session, partner, case, report.ticket_id, now, media_urls)
    except IntegrityError as exc:
        existing = find_partner_case(session, partner, report.ticket_id)
        if existing is None:
            raise Conflict(
                "this ticket is being saved by another request; try again", field="ticket_id"
            ) from exc
        return existing, False
    return case, created


def check_media_urls(urls: list[str], *, field: str) -> list[str]:
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 500:
            raise ValidationFailed(
                f"{field}: {url[:60]!r} is not an http(s) link of at most 500 characters",
                field=field,
            )
    return list(urls)


def link_case(
    session: Session,
    partner: Caller,
    case: Case,
    external_id: str | None,
    now: datetime,
    media_urls: list[str] | None = None,
) -> PartnerTicket:
    link = PartnerTicket(
        partner_id=partner.id,
        external_id=external_id,
        case_id=case.id,
        media_urls=list(media_urls or []),
        created_at=now,
    )
    session.add(link)
    session.flush()
    return link


def find_partner_case(session: Session, partner: Caller, external_id: str) -> Case | None:
    return session.scalar(
        select(Case)
        .join(PartnerTicket, PartnerTicket.case_id == Case.id)
        .where(PartnerTicket.partner_id == partner.id, PartnerTicket.external_id == external_id)
    )


def partner_case(session: Session, partner: Caller, external_id: str) -> Case:
    check_external_id(external_id)
    case = find_partner_case(session, partner, external_id)
    if case is None:
        raise NotFound(f"no report with your ticket id {external_id}", field="ticket_id")
    return case


def merged_into_ticket(session: Session, case: Case) -> str | None:
    if case.state != "merged" or case.merged_into_id is None:
        return None
    return session.scalar(select(Case.ticket).where(Case.id == case.merged_into_id))


# -- status pushes -----------------------------------------------------------------------------
def is_open(state: str) -> bool:
    return STATES[state][2]


def _note(payload: dict[str, Any]) -> str | None:
    for name in ("reason", "result", "note"):
        value = payload.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def push_status(
    session: Session,
    case: Case,
    action: str,
    from_state: str | None,
    payload: dict[str, Any],
    now: datetime,
) -> None:
    """Queue the status change for the partner's webhook, in the transition's transaction."""
    if case.state == from_state and action not in VISIBLE_SAME_STATE_ACTIONS:
        return
    link = session.execute(
        select(PartnerTicket.external_id, Partner.code, Partner.webhook_url, Partner.active)
        .join(Partner, Partner.id == PartnerTicket.partner_id)
        .where(PartnerTicket.case_id == case.id)
    ).first()
    if link is None or not link.active or not link.webhook_url:
        return
    department = session.get(Department, case.department_id) if case.department_id else None
    row = BY_ACTION.get(action)
    message = {
        "event": STATUS_TOPIC,
        "partner": link.code,
        "ticket_id": link.external_id,
        "ticket": case.ticket,
        "action": action,
        "action_label": row.label if row else action,
        "from_state": from_state,
        "state": case.state,
        "state_label": state_label(case.state),
        "status": "open" if is_open(case.state) else "closed",
        "department": department.name if department else None,
        "note": _note(payload),
        "due_at": case.due_at.isoformat() if case.due_at else None,
        "at": now.isoformat(),
    }
    enqueue(
        session,
        topic=STATUS_TOPIC,
        target_url=link.webhook_url,
        payload=message,
        now=now,
        ordering_key=f"case:{case.id}",
    )
