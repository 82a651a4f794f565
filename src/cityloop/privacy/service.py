"""Retention, erasure, subject requests and the contact-view log.

The reporters' contacts live in `cases.reporter_name/phone` and `hotline_calls.caller_*`, never
in the hashed timeline, so erasing them leaves every hash chain and anchor verifiable; the
erasure itself is a timeline line (what was erased, under which rule), not a silent update.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from cityloop.cases.models import Case, CaseEvent
from cityloop.cases.service import SYSTEM, Actor, add_note
from cityloop.cases.states import OPEN_STATES
from cityloop.db import WRITE_OPTION, begin_write
from cityloop.errors import ValidationFailed
from cityloop.intake.models import HotlineCall
from cityloop.org.keyring import Keyring
from cityloop.privacy.models import ContactView, DataSubjectRequest, ErasedContact, RetentionRule

# kind -> (default months, label)
DEFAULT_RULES: dict[str, tuple[int, str]] = {
    "case_reporter": (24, "案件上报人姓名、电话：案件归档后保留（月）"),
    "hotline_caller": (24, "热线来电人姓名、电话：来电办结后保留（月）"),
}
ERASED_NOTE = "personal_data_erased"
_BATCH = 500


# -- retention rules ----------------------------------------------------------------------------


def retention_rules(session: Session) -> list[RetentionRule]:
    stored = {r.kind: r for r in session.scalars(select(RetentionRule))}
    return [
        stored.get(kind) or RetentionRule(kind=kind, months=months, label=label)
        for kind, (months, label) in DEFAULT_RULES.items()
    ]


def retention_months(session: Session, kind: str) -> int:
    row = session.get(RetentionRule, kind)
    return row.months if row is not None else DEFAULT_RULES[kind][0]


def set_retention(session: Session, kind: str, months: Any) -> RetentionRule:
    if kind not in DEFAULT_RULES:
        raise ValidationFailed(
            f"unknown retention kind {kind!r} (known: {', '.join(DEFAULT_RULES)})", field="kind"
        )
    if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= 240:
        raise ValidationFailed("months must be a whole number from 1 to 240", field="months")
    row = session.get(RetentionRule, kind)
    if row is None:
        row = RetentionRule(kind=kind, months=months, label=DEFAULT_RULES[kind][1])
        session.add(row)
    row.months = months
    session.flush()
    return row


def months_before(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    day = min(moment.day, 28)  # every month has a 28th: close enough for a retention period
    return moment.replace(year=year, month=month + 1, day=day)


# -- digests ------------------------------------------------------------------------------------


def normalise_phone(phone: str) -> str:
    digits = re.sub(r"\D", "", phone)
    return digits[2:] if len(digits) == 13 and digits.startswith("86") else digits


def phone_digest(keyring: Keyring, phone: str) -> tuple[str, str]:
    """A keyed digest: a bare hash of an 11-digit number is reversed by trying them all."""
    key = keyring.signing
    digest = hmac.new(
        key.secret.encode(), b"phone|" + normalise_phone(phone).encode(), hashlib.sha256
    )
    return digest.hexdigest(), key.kid


def _digests(keyring: Keyring, phone: str, now: datetime) -> list[str]:
    number = normalise_phone(phone).encode()
    return [
        hmac.new(secret.encode(), b"phone|" + number, hashlib.sha256).hexdigest()
        for secret in keyring.accepted(now)
    ]


# -- erasure ------------------------------------------------------------------------------------


@dataclass
class ErasureResult:
    cases: int = 0
    calls: int = 0
    retained: list[str] = field(default_factory=list)


def _erase_case(
    session: Session, case: Case, *, reason: str, now: datetime, keyring: Keyring, actor: Actor
) -> None:
    digest, kid = (
        phone_digest(keyring, case.reporter_phone) if case.reporter_phone else (None, None)
    )
    session.add(
        ErasedContact(
            subject_type="case",
            subject_id=case.id,
            phone_digest=digest,
            key_id=kid,
            reason=reason,
            erased_at=now,
        )
    )
    fields = [name for name in ("reporter_name", "reporter_phone") if getattr(case, name)]
    case.reporter_name = None
    case.reporter_phone = None
    add_note(session, case, actor, ERASED_NOTE, now, {"fields": fields, "reason": reason})


def _erase_call(
    session: Session, call: HotlineCall, *, reason: str, now: datetime, keyring: Keyring
) -> None:
    digest, kid = phone_digest(keyring, call.caller_phone)
    session.add(
        ErasedContact(
            subject_type="hotline_call",
            subject_id=call.id,
            phone_digest=digest,
            key_id=kid,
            reason=reason,
            erased_at=now,
        )
    )
    call.caller_name = None
    call.caller_phone = ""  # the column is NOT NULL: an empty number is "erased"


def _archived_before(cutoff: datetime) -> Any:
    archived = (
        select(CaseEvent.case_id, func.max(CaseEvent.at).label("at"))
        # Entering the archive (by `archive` or a satisfied return visit), not notes after it.
        .where(CaseEvent.to_state == "archived", CaseEvent.from_state != "archived")
        .group_by(CaseEvent.case_id)
        .subquery()
    )
    return select(archived.c.case_id).where(archived.c.at < cutoff)


def erase_expired(
    session: Session, *, now: datetime, keyring: Keyring, limit: int = _BATCH
) -> ErasureResult:
    """The worker's pass: contacts whose retention has run out, at most `limit` of each kind
    (the rest next pass)."""
    result = ErasureResult()
    case_cutoff = months_before(now, retention_months(session, "case_reporter"))
    cases = session.scalars(
        select(Case)
        .where(
            Case.state == "archived",
            or_(Case.reporter_name.is_not(None), Case.reporter_phone.is_not(None)),
            Case.id.in_(_archived_before(case_cutoff)),
        )
        .order_by(Case.id)
        .limit(limit)
    ).all()
    for case in cases:
        _erase_case(session, case, reason="retention", now=now, keyring=keyring, actor=SYSTEM)
        result.cases += 1
    call_cutoff = months_before(now, retention_months(session, "hotline_caller"))
    calls = session.scalars(
        select(HotlineCall)
        .where(
            HotlineCall.caller_phone != "",
            or_(
                (HotlineCall.case_id.is_(None)) & (HotlineCall.created_at < call_cutoff),
                HotlineCall.case_id.in_(_archived_before(call_cutoff)),
            ),
        )
        .order_by(HotlineCall.id)
        .limit(limit)
    ).all()
    for call in calls:
        _erase_call(session, call, reason="retention", now=now, keyring=keyring)
        result.calls += 1
    session.flush()
    return result


# -- subject requests -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SubjectRecord:
    subject_type: str
    id: int
    ticket: str | None
    created_at: datetime
    state: str | None
    class_code: str | None
    text: str
    address: str | None
    contact_erased: bool


def _records(session: Session, keyring: Keyring, phone: str, now: datetime) -> list[SubjectRecord]:
    erased = session.execute(
        select(ErasedContact.subject_type, ErasedContact.subject_id).where(
            ErasedContact.phone_digest.in_(_digests(keyring, phone, now))
        )
    ).all()
    erased_cases = {i for t, i in erased if t == "case"}
    erased_calls = {i for t, i in erased if t == "hotline_call"}
    records: list[SubjectRecord] = []
    number = normalise_phone(phone)
    # Numbers are stored as they were typed (+86, dashes, spaces): a match on the last four
    # digits in SQL, the whole number compared once normalised. A rare request: a scan is fine.
    tail = f"%{number[-4:]}"
    for case in session.scalars(
        select(Case)
        .where(or_(Case.reporter_phone.like(tail), Case.id.in_(erased_cases)))
        .order_by(Case.created_at)
    ):
        if case.id not in erased_cases and normalise_phone(case.reporter_phone or "") != number:
            continue
        records.append(
            SubjectRecord(
                "case",
                case.id,
                case.ticket,
                case.created_at,
                case.state,
                case.class_code,
                case.description,
                case.address,
                case.id in erased_cases and case.reporter_phone is None,
            )
        )
    for call in session.scalars(
        select(HotlineCall)
        .where(or_(HotlineCall.caller_phone.like(tail), HotlineCall.id.in_(erased_calls)))
        .order_by(HotlineCall.created_at)
    ):
        if call.id not in erased_calls and normalise_phone(call.caller_phone) != number:
            continue
        records.append(
            SubjectRecord(
                "hotline_call",
                call.id,
                None,
                call.created_at,
                call.status,
                call.class_code,
                call.text,
                call.address,
                call.caller_phone == "",
            )
        )
    return records


@dataclass(frozen=True)
class SubjectAnswer:
    request: DataSubjectRequest
    records: list[SubjectRecord]
    erased: int
    retained: list[str]


def handle_request(
    session: Session,
    *,
    kind: str,
    phone: Any,
    note: str | None,
    staff: Actor,
    now: datetime,
    keyring: Keyring,
) -> SubjectAnswer:
    """A citizen's request, taken by staff who have checked who is asking. Erasure spares
    what is still being handled (the contact is needed to call back); it is erased when the
    case is archived and its retention runs out."""
    if kind not in ("access", "erasure"):
        raise ValidationFailed("kind must be access or erasure", field="kind")
    if not isinstance(phone, str) or len(normalise_phone(phone)) < 7:
        raise ValidationFailed("phone must be a telephone number", field="phone")
    if staff.user_id is None:
        raise ValidationFailed("a request is taken by a member of staff", field="staff")
    records = _records(session, keyring, phone, now)
    erased, retained = 0, []
    if kind == "erasure":
        for record in records:
            if record.contact_erased:
                continue
            if record.subject_type == "case":
                case = session.get(Case, record.id)
                assert case is not None
                if case.state in OPEN_STATES:
                    retained.append(case.ticket)
                    continue
                if case.reporter_phone:
                    _erase_case(
                        session, case, reason="request", now=now, keyring=keyring, actor=staff
                    )
                    erased += 1
            else:
                call = session.get(HotlineCall, record.id)
                assert call is not None
                open_case = call.case_id is not None and (
                    session.scalar(select(Case.state).where(Case.id == call.case_id)) in OPEN_STATES
                )
                if open_case:
                    continue
                _erase_call(session, call, reason="request", now=now, keyring=keyring)
                erased += 1
        records = _records(session, keyring, phone, now)
    row = DataSubjectRequest(
        kind=kind,
        phone_digest=phone_digest(keyring, phone)[0],
        note=(note or None) and str(note)[:200],
        handled_by=staff.user_id,
        handled_at=now,
        records_found=len(records),
        records_erased=erased,
    )
    session.add(row)
    session.flush()
    return SubjectAnswer(row, records, erased, retained)


# -- the contact-view log ------------------------------------------------------------------------


def record_contact_view(
    session: Session,
    actor: Actor,
    *,
    subject_type: str,
    subject_id: int,
    ticket: str | None,
    now: datetime,
) -> None:
    _log_views(
        session,
        [
            ContactView(
                at=now,
                user_id=actor.user_id,
                user_name=actor.name,
                role=actor.role,
                subject_type=subject_type,
                subject_id=subject_id,
                ticket=ticket,
            )
        ],
    )


def _log_views(session: Session, views: list[ContactView]) -> None:
    """In the request's transaction when it writes; a page read on SQLite holds a deferred
    read transaction that cannot become a writer once another has written (WAL), so there
    the views are written by a short writer of their own."""
    if not views:
        return
    connection = session.connection()
    bind = session.get_bind()
    if (
        connection.dialect.name != "sqlite"
        or connection.get_execution_options().get(WRITE_OPTION)
        # A session bound to one connection (the tests' rolled-back transaction) has no
        # second connection to write with: a second session there would nest savepoints
        # under the first one's.
        or not isinstance(bind, Engine)
    ):
        session.add_all(views)
        return
    with Session(bind=bind) as log:
        begin_write(log)
        log.add_all(views)
        log.commit()


def record_call_views(
    session: Session, actor: Actor, calls: list[HotlineCall], *, now: datetime
) -> None:
    """A list of calls shown with their callers' numbers: one view per call shown."""
    for call in calls:
        if call.caller_phone or call.caller_name:
            record_contact_view(
                session,
                actor,
                subject_type="hotline_call",
                subject_id=call.id,
                ticket=None,
                now=now,
            )


def contact_views(
    session: Session,
    *,
    case_id: int | None = None,
    user_id: int | None = None,
    page: int = 1,
    page_size: int = 50,
) -> tuple[list[ContactView], int]:
    query = select(ContactView)
    if case_id is not None:
        query = query.where(ContactView.subject_type == "case", ContactView.subject_id == case_id)
    if user_id is not None:
        query = query.where(ContactView.user_id == user_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(ContactView.at.desc(), ContactView.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return list(rows), int(total)
