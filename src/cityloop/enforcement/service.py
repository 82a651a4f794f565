"""The enforcement service: registers, the enforcement flow's effects, clocks and scopes, the
link to the case loop, the discretion check, amounts due and disclosure.

`transition()` runs flow "enforcement" (`ENFORCEMENT_FLOW`: `states.TABLE` with this module's
effects) on the one workflow engine, the only writer of `EnforcementCase.state`. Services
flush; the request commits.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from cityloop.cases import service as cases
from cityloop.cases.models import Case
from cityloop.enforcement import states
from cityloop.enforcement.ids import (
    credit_code_problem,
    id_number_problem,
    mask_id_number,
)
from cityloop.enforcement.models import (
    TIMELINE,
    DiscretionStandard,
    DiscretionTier,
    EnforcementCase,
    EnforcementEvent,
    EnforcementUnit,
    Law,
    LawArticle,
    LegalPeriod,
    Officer,
    Party,
    Violation,
)
from cityloop.enforcement.periods import DEFAULT_PERIODS, Period, due_after
from cityloop.errors import Conflict, NotFound, ValidationFailed
from cityloop.kit.calendar import WorkingCalendar
from cityloop.media.models import Media
from cityloop.workflow import engine
from cityloop.workflow import timeline as chain
from cityloop.workflow.actors import SYSTEM, Actor
from cityloop.workflow.engine import ActionContext
from cityloop.workflow.flow import Flow

TIERS = ("minor", "general", "serious", "grave")
TIER_LABELS = {"minor": "轻微", "general": "一般", "serious": "较重", "grave": "严重"}
PENALTIES = {
    "warning": "警告",
    "rectify": "责令改正",
    "confiscate": "没收违法所得、非法财物",
    "demolish": "限期拆除",
    "suspend": "责令停产停业",
    "revoke_licence": "吊销许可证件",
}
# Penalties that give the party a right to a hearing whatever the amount (art. 63, 摘要).
HEARING_PENALTIES = frozenset({"suspend", "revoke_licence", "demolish"})
# 较大数额 for a hearing (art. 63 leaves the amount to provincial rules): demo values, 待核对.
HEARING_FINE_YUAN = {"person": 10_000, "organisation": 100_000}
# 简易程序 (art. 51): a warning, or a fine of at most 200 yuan (person) / 3,000 (organisation).
SIMPLE_LIMIT_YUAN = {"person": 200, "organisation": 3_000}
DELIVERY_METHODS = {
    "direct": "直接送达",
    "lien": "留置送达",
    "post": "邮寄送达",
    "notice": "公告送达",
}
NO_PENALTY_BASES = {
    "first_offence": "初次违法且危害后果轻微并及时改正 (第三十三条第一款, 首违不罚)",
    "minor_rectified": "违法行为轻微并及时改正，没有造成危害后果 (第三十三条第一款)",
    "no_evidence": "违法事实不能成立 (第五十七条)",
}
PAYMENT_TEXT = (
    "自收到本决定书之日起十五日内缴纳罚款；逾期不缴纳的，每日按罚款数额的百分之三加处罚款"
    "（行政处罚法 第六十七条、第七十二条，摘要）"
)
REMEDY_TEXT = "如不服本决定，可依法申请行政复议或者提起行政诉讼（摘要，期限待核对）"
# A day's 加处罚款 (art. 72): 3 % of the fine, in all at most the fine itself.
SURCHARGE_RATE = 0.03


# -- registers -----------------------------------------------------------------------------
def seed_periods(session: Session) -> int:
    known = set(session.scalars(select(LegalPeriod.code)))
    added = 0
    for p in DEFAULT_PERIODS:
        if p.code not in known:
            session.add(
                LegalPeriod(
                    code=p.code,
                    label=p.label,
                    days=p.days,
                    working_days=p.working_days,
                    basis=p.basis,
                )
            )
            added += 1
    session.flush()
    return added


def period(session: Session, code: str) -> Period:
    row = session.get(LegalPeriod, code)
    if row is None:
        default = next((p for p in DEFAULT_PERIODS if p.code == code), None)
        if default is None:
            raise KeyError(code)
        return default
    return Period(row.code, row.label, row.days, row.working_days, row.basis)


def add_law(
    session: Session, *, code: str, name: str, issuer: str = "", effective: date | None = None
) -> Law:
    law = session.scalar(select(Law).where(Law.code == code))
    if law is None:
        law = Law(code=code, name=name, issuer=issuer, effective=effective)
        session.add(law)
    else:
        law.name, law.issuer, law.effective = name, issuer, effective
    session.flush()
    return law


def add_article(
    session: Session, law: Law, number: int, text: str, *, is_summary: bool = True
) -> LawArticle:
    article = session.scalar(
        select(LawArticle).where(LawArticle.law_id == law.id, LawArticle.number == number)
    )
    if article is None:
        article = LawArticle(law_id=law.id, number=number, text=text, is_summary=is_summary)
        session.add(article)
    else:
        article.text, article.is_summary = text, is_summary
    session.flush()
    return article


def article_by_ref(session: Session, law_code: str, number: int) -> LawArticle:
    article = session.scalar(
        select(LawArticle)
        .join(Law, Law.id == LawArticle.law_id)
        .where(Law.code == law_code, LawArticle.number == number)
    )
    if article is None:
        raise ValidationFailed(
            f"article {number} of law {law_code} is not registered", field="article"
        )
    return article


def add_standard(
    session: Session,
    *,
    code: str,
    name: str,
    tiers: list[dict[str, Any]],
    repeat_window_days: int = 365,
    demo_data: bool = False,
    note: str = "",
) -> DiscretionStandard:
    standard = DiscretionStandard(
        code=code, name=name, repeat_window_days=repeat_window_days, demo_data=demo_data, note=note
    )
    session.add(standard)
    session.flush()
    for tier in tiers:
        if tier["tier"] not in TIERS:
            raise ValidationFailed(f"tier must be one of {', '.join(TIERS)}", field="tier")
        low, high = tier.get("fine_min"), tier.get("fine_max")
        if low is not None and high is not None and low > high:
            raise ValidationFailed("fine_min is above fine_max", field="fine_min")
        session.add(DiscretionTier(standard_id=standard.id, **tier))
    session.flush()
    return standard


def add_violation(
    session: Session,
    *,
    code: str,
    name: str,
    violation_article: LawArticle,
    penalty_article: LawArticle,
    class_codes: list[str],
    standard: DiscretionStandard | None,
) -> Violation:
    violation = Violation(
        code=code,
        name=name,
        violation_article_id=violation_article.id,
        penalty_article_id=penalty_article.id,
        class_codes=class_codes,
        standard_id=standard.id if standard else None,
    )
    session.add(violation)
    session.flush()
    return violation


def get_violation(session: Session, code: Any, field: str = "violation_code") -> Violation:
    if not isinstance(code, str) or not code:
        raise ValidationFailed(f"{field} must be a violation code", field=field)
    violation = session.scalar(select(Violation).where(Violation.code == code))
    if violation is None:
        raise ValidationFailed(f"violation {code} is not in the register", field=field)
    return violation


def list_violations(session: Session) -> list[tuple[Violation, LawArticle, LawArticle, Law, Law]]:
    from sqlalchemy.orm import aliased

    va, pa = aliased(LawArticle), aliased(LawArticle)
    vl, pl = aliased(Law), aliased(Law)
    rows = session.execute(
        select(Violation, va, pa, vl, pl)
        .join(va, va.id == Violation.violation_article_id)
        .join(pa, pa.id == Violation.penalty_article_id)
        .join(vl, vl.id == va.law_id)
        .join(pl, pl.id == pa.law_id)
        .order_by(Violation.code)
    ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def list_laws(session: Session) -> list[tuple[Law, list[LawArticle]]]:
    laws = list(session.scalars(select(Law).order_by(Law.code)))
    articles: dict[int, list[LawArticle]] = {}
    for article in session.scalars(
        select(LawArticle).order_by(LawArticle.law_id, LawArticle.number)
    ):
        articles.setdefault(article.law_id, []).append(article)
    return [(law, articles.get(law.id, [])) for law in laws]


def tiers_of(session: Session, standard_id: int | None) -> dict[str, DiscretionTier]:
    if standard_id is None:
        return {}
    return {
        t.tier: t
        for t in session.scalars(
            select(DiscretionTier).where(DiscretionTier.standard_id == standard_id)
        )
    }


def _text(payload: dict[str, Any], name: str, limit: int, required: bool = True) -> str:
    value = payload.get(name)
    if not required and (value is None or (isinstance(value, str) and not value.strip())):
        return ""
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed(f"{name} is required (text)", field=name)
    if len(value) > limit:
        raise ValidationFailed(f"{name} has at most {limit} characters", field=name)
    return value.strip()


def create_party(session: Session, data: dict[str, Any], *, now: datetime, secret: str) -> Party:
    """A party; the same person (by ID number) or organisation (by credit code) is returned
    as registered, so their history stays one."""
    kind = data.get("kind")
    if kind not in ("person", "organisation"):
        raise ValidationFailed("kind must be person or organisation", field="kind")
    name = _text(data, "name", 120)
    address = _text(data, "address", 200, required=False)
    if kind == "person":
        number = data.get("id_number")
        if number is not None:
            if not isinstance(number, str):
                raise ValidationFailed("id_number must be text", field="id_number")
            number = number.strip().upper()
            problem = id_number_problem(number)
            if problem:
                raise ValidationFailed(problem, field="id_number")
            digest = hmac.new(secret.encode(), number.encode(), hashlib.sha256).hexdigest()
            found = session.scalar(select(Party).where(Party.id_hash == digest))
            if found is not None:
                return found
            party = Party(
                kind=kind,
                name=name,
                id_hash=digest,
                id_masked=mask_id_number(number),
                address=address,
                created_at=now,
            )
        else:
            party = Party(kind=kind, name=name, address=address, created_at=now)
        if data.get("credit_code") is not None:
            raise ValidationFailed("a person has no credit code", field="credit_code")
    else:
        code = data.get("credit_code")
        if not isinstance(code, str):
            raise ValidationFailed(
                "credit_code (统一社会信用代码) is required for an organisation",
                field="credit_code",
            )
        code = code.strip().upper()
        problem = credit_code_problem(code)
        if problem:
            raise ValidationFailed(problem, field="credit_code")
        if data.get("id_number") is not None:
            raise ValidationFailed("an organisation has no ID number", field="id_number")
        found = session.scalar(select(Party).where(Party.credit_code == code))
        if found is not None:
            return found
        party = Party(kind=kind, name=name, credit_code=code, address=address, created_at=now)
    session.add(party)
    session.flush()
    return party


def add_unit(
    session: Session,
    *,
    code: str,
    name: str,
    kind: str,
    parent: EnforcementUnit | None = None,
    doc_prefix: str | None = None,
    department_id: int | None = None,
) -> EnforcementUnit:
    unit = EnforcementUnit(
        code=code,
        name=name,
        kind=kind,
        parent_id=parent.id if parent else None,
        doc_prefix=doc_prefix,
        department_id=department_id,
    )
    session.add(unit)
    session.flush()
    return unit


def add_officer(
    session: Session,
    *,
    name: str,
    cert_no: str,
    unit: EnforcementUnit,
    valid_from: date,
    valid_until: date,
    user_id: int | None = None,
) -> Officer:
    if unit.kind != "squad":
        raise ValidationFailed("an officer belongs to a squad", field="unit_id")
    if valid_until < valid_from:
        raise ValidationFailed("valid_until is before valid_from", field="valid_until")
    officer = Officer(
        name=name,
        cert_no=cert_no,
        unit_id=unit.id,
        valid_from=valid_from,
        valid_until=valid_until,
        user_id=user_id,
    )
    session.add(officer)
    session.flush()
    return officer


_OFFICERS_KEY = "cityloop_enf_officers"


def officer_of(session: Session, user_id: int | None) -> Officer | None:
    """The officer an account is; asked by the visibility and the scope check of every step,
    so read once per transaction."""
    if user_id is None:
        return None
    known: dict[int, Officer | None] = session.info.setdefault(_OFFICERS_KEY, {})
    if user_id not in known:
        known[user_id] = session.scalar(select(Officer).where(Officer.user_id == user_id))
    return known[user_id]


@event.listens_for(Session, "after_transaction_end")
def _forget_officers(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(_OFFICERS_KEY, None)


def bureau_of(session: Session, unit_id: int) -> EnforcementUnit:
    unit = session.get(EnforcementUnit, unit_id)
    while unit is not None and unit.kind != "bureau" and unit.parent_id is not None:
        unit = session.get(EnforcementUnit, unit.parent_id)
    assert unit is not None
    return unit


# -- enforcement cases -----------------------------------------------------------------------
def get_enforcement_case(
    session: Session, case_id: int, *, for_update: bool = False
) -> EnforcementCase:
    query = select(EnforcementCase).where(EnforcementCase.id == case_id)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    record = session.scalar(query)
    if record is None:
        raise NotFound(f"enforcement case {case_id} not found")
    return record


def _load(session: Session, case_id: int, for_update: bool) -> EnforcementCase:
    return get_enforcement_case(session, case_id, for_update=for_update)


ENFORCEMENT_ROLES = frozenset({"officer", "legal_reviewer", "enforcement_chief", "admin", "system"})


def can_see(session: Session, actor: Actor, record: EnforcementCase) -> bool:
    if actor.role == "officer":
        officer = officer_of(session, actor.user_id)
        return officer is not None and officer.unit_id == record.department_id
    return actor.role in ENFORCEMENT_ROLES or actor.role == "leader"


def _squad_scope(ctx: ActionContext) -> str | None:
    officer = officer_of(ctx.session, ctx.actor.user_id)
    if ctx.actor.role == "officer" and (
        officer is None or officer.unit_id != ctx.case.department_id
    ):
        return "this enforcement case is held by another squad"
    return None


def create(
    session: Session,
    data: dict[str, Any],
    actor: Actor,
    *,
    now: datetime,
    calendar: WorkingCalendar,
    source: str = "patrol",
    case: Case | None = None,
    photos: list[str] | None = None,
) -> EnforcementCase:
    """Register an enforcement case (受案): from a case of the loop, a patrol, a transfer or
    an inspection. Its first timeline line is `register`."""
    if actor.role not in ("officer", "enforcement_chief", "admin", "handler", "system"):
        from cityloop.errors import Forbidden

        raise Forbidden(f"the role {actor.role} may not register an enforcement case")
    violation = get_violation(session, data.get("violation_code"))
    party_id = data.get("party_id")
    if isinstance(party_id, bool) or not isinstance(party_id, int):
        raise ValidationFailed("party_id must be a party id", field="party_id")
    party = session.get(Party, party_id)
    if party is None:
        raise ValidationFailed(f"party {party_id} is not registered", field="party_id")
    facts = _text(data, "facts", 4000)
    lon, lat = data.get("lon"), data.get("lat")
    for name, value, low, high in (("lon", lon, 73.0, 136.0), ("lat", lat, 3.0, 54.0)):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            raise ValidationFailed(
                f"{name} must be a number within China ({low}..{high})", field=name
            )
    squad = _squad_for(session, data, actor)
    if source not in ("case", "patrol", "transfer", "inspection"):
        raise ValidationFailed(
            "source must be case, patrol, transfer or inspection", field="source"
        )
    record = EnforcementCase(
        state="registered",
        version=1,
        procedure="ordinary",
        source=source,
        violation_id=violation.id,
        party_id=party.id,
        facts=facts,
        lon=float(cast(float, lon)),
        lat=float(cast(float, lat)),
        address=data.get("address") if isinstance(data.get("address"), str) else None,
        department_id=squad.id,
        case_id=case.id if case is not None else None,
        created_at=now,
        updated_at=now,
        reviews={},
        result_photos=[],
    )
    _restart_clock(session, record, now, calendar)
    session.add(record)
    session.flush()
    chain.append(
        session,
        TIMELINE,
        record,
        actor,
        "register",
        None,
        "registered",
        now,
        {
            "source": source,
            "violation_code": violation.code,
            "party_id": party.id,
            **({"from_case_id": case.id} if case is not None else {}),
        },
        list(photos or []),
    )
    return record


def _squad_for(session: Session, data: dict[str, Any], actor: Actor) -> EnforcementUnit:
    squad_id = data.get("squad_id")
    if squad_id is not None:
        if isinstance(squad_id, bool) or not isinstance(squad_id, int):
            raise ValidationFailed("squad_id must be a squad id", field="squad_id")
        unit = session.get(EnforcementUnit, squad_id)
        if unit is None or unit.kind != "squad":
            raise ValidationFailed(f"squad {squad_id} does not exist", field="squad_id")
        return unit
    officer = officer_of(session, actor.user_id)
    if officer is not None:
        unit = session.get(EnforcementUnit, officer.unit_id)
        assert unit is not None
        return unit
    if actor.department_id is not None:
        unit = session.scalar(
            select(EnforcementUnit).where(
                EnforcementUnit.department_id == actor.department_id,
                EnforcementUnit.kind == "squad",
            )
        )
        if unit is not None:
            return unit
    raise ValidationFailed("choose the squad that handles the case", field="squad_id")


def transition(
    session: Session,
    case_id: int,
    action: str,
    actor: Actor,
    payload: dict[str, Any] | None = None,
    *,
    now: datetime,
    calendar: WorkingCalendar,
    expected_version: int | None = None,
) -> EnforcementCase:
    return cast(
        EnforcementCase,
        engine.run(
            ENFORCEMENT_FLOW,
            session,
            case_id,
            action,
            actor,
            payload,
            now=now,
            calendar=calendar,
            expected_version=expected_version,
        ),
    )


def allowed_actions(
    session: Session,
    record: EnforcementCase,
    actor: Actor,
    *,
    now: datetime,
    calendar: WorkingCalendar,
) -> list[Any]:
    return engine.allowed(ENFORCEMENT_FLOW, session, record, actor, now=now, calendar=calendar)


def timeline(session: Session, case_id: int) -> list[EnforcementEvent]:
    return cast(list[EnforcementEvent], chain.events_of(session, TIMELINE, case_id))


def _restart_clock(
    session: Session, record: EnforcementCase, now: datetime, calendar: WorkingCalendar
) -> None:
    stage = states.STATE_STAGE.get(record.state)
    record.stage = stage
    record.stage_started_at = now if stage else None
    if stage is None:
        record.stage_due_at = None
    elif stage == "decide":
        record.stage_due_at = record.decision_due_at
    elif stage == "statement":
        record.stage_due_at = record.statement_due_at
    elif stage == "pay":
        record.stage_due_at = record.payment_due_at
    else:
        record.stage_due_at = due_after(calendar, now, period(session, stage))


# -- effects --------------------------------------------------------------------------------
def _officers(ctx: ActionContext, name: str = "officer_ids") -> list[Officer]:
    """At least two officers holding a valid 执法证 (art. 42)."""
    ids = ctx.payload.get(name)
    if not isinstance(ids, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in ids
    ):
        raise ValidationFailed(f"{name} must be a list of officer ids", field=name)
    unique = sorted(set(ids))
    if len(unique) < 2:
        raise ValidationFailed(
            "执法人员不得少于两人 (at least two officers, 行政处罚法 第四十二条)", field=name
        )
    officers = list(ctx.session.scalars(select(Officer).where(Officer.id.in_(unique))))
    if len(officers) != len(unique):
        missing = sorted(set(unique) - {o.id for o in officers})
        raise ValidationFailed(f"officers {missing} are not registered", field=name)
    today = ctx.now.astimezone(ctx.calendar.tz).date()
    for officer in officers:
        if not officer.valid_from <= today <= officer.valid_until:
            raise ValidationFailed(
                f"{officer.name}'s 执法证 {officer.cert_no} is not valid on {today}", field=name
            )
    ctx.notes["officers"] = [f"{o.name} {o.cert_no}" for o in officers]
    return officers


def _hash_media(ctx: ActionContext) -> None:
    photos = ctx.payload.get("photos") or []
    if photos:
        rows = ctx.session.execute(select(Media.id, Media.sha256).where(Media.id.in_(photos))).all()
        ctx.notes["media_sha256"] = {mid: digest for mid, digest in rows}


def _number(payload: dict[str, Any], name: str, *, low: float, high: float) -> float:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationFailed(f"{name} must be a number", field=name)
    if not low <= value <= high:
        raise ValidationFailed(f"{name} must be between {low:g} and {high:g}", field=name)
    return float(value)


def _bool(payload: dict[str, Any], name: str) -> bool:
    value = payload.get(name)
    if not isinstance(value, bool):
        raise ValidationFailed(f"{name} must be true or false", field=name)
    return value


def _when(payload: dict[str, Any], name: str) -> datetime:
    value = payload.get(name)
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ValidationFailed(f"{name} must be an ISO 8601 time with its offset", field=name)
    return parsed


def _effect_file(ctx: ActionContext) -> str | None:
    record = ctx.case
    record.filed_at = ctx.now
    record.decision_due_at = due_after(ctx.calendar, ctx.now, period(ctx.session, "decide"))
    ctx.notes["decision_due_at"] = record.decision_due_at.isoformat()
    _follow_on_loop(ctx, record.decision_due_at)
    return None


def _effect_add_evidence(ctx: ActionContext) -> str | None:
    _officers(ctx)
    if not ctx.payload.get("photos") and not ctx.payload.get("record"):
        raise ValidationFailed(
            "evidence needs photos or a record (询问笔录 / 勘验检查笔录)", field="photos"
        )
    record_form = ctx.payload.get("record")
    if record_form is not None:
        if not isinstance(record_form, dict) or record_form.get("kind") not in (
            "inquiry_record",
            "inspection_record",
        ):
            raise ValidationFailed(
                "record must be {kind: inquiry_record | inspection_record, content: …}",
                field="record",
            )
        if not isinstance(record_form.get("content"), str) or not record_form["content"].strip():
            raise ValidationFailed("record.content is required", field="record")
    _hash_media(ctx)
    ctx.case.evidence_count += 1
    return None


def _effect_order_rectification(ctx: ActionContext) -> str | None:
    _officers(ctx)
    days = int(_number(ctx.payload, "days", low=1, high=365))
    ctx.case.rectify_due_at = ctx.now + timedelta(days=days)
    ctx.case.rectified = None
    ctx.notes["rectify_due_at"] = ctx.case.rectify_due_at.isoformat()
    return None


def _effect_recheck(ctx: ActionContext) -> str | None:
    _officers(ctx)
    _hash_media(ctx)
    ctx.case.rectified = _bool(ctx.payload, "rectified")
    if ctx.case.rectified and ctx.payload.get("photos"):
        ctx.case.result_photos = list(ctx.payload["photos"])
    return None


def _effect_submit_review(ctx: ActionContext) -> str | None:
    if ctx.case.evidence_count < 1:
        raise ValidationFailed("add evidence before submitting for review", field="action")
    major = ctx.payload.get("major", False)
    if not isinstance(major, bool):
        raise ValidationFailed("major must be true or false", field="major")
    ctx.case.major = major
    tier = ctx.payload.get("tier")
    if tier is not None:
        if tier not in TIERS:
            raise ValidationFailed(f"tier must be one of {', '.join(TIERS)}", field="tier")
        ctx.case.tier = tier
    return None


def _record_review(ctx: ActionContext, step: str) -> bool:
    approved = _bool(ctx.payload, "approved")
    note = ctx.payload.get("note")
    if note is not None and not isinstance(note, str):
        raise ValidationFailed("note must be text", field="note")
    if not approved and not note:
        raise ValidationFailed("a refusal needs a note saying why", field="note")
    reviews = dict(ctx.case.reviews or {})
    reviews[step] = {"approved": approved, "by": ctx.actor.name, "at": ctx.now.isoformat()}
    ctx.case.reviews = reviews
    return approved


def _effect_review(ctx: ActionContext) -> str | None:
    if not _record_review(ctx, "case_review"):
        return "investigating"
    # 法制审核 before a decision of 重大 consequence (art. 58).
    return "legal_review" if ctx.case.major else "ready"


def _effect_legal_review(ctx: ActionContext) -> str | None:
    return "ready" if _record_review(ctx, "legal_review") else "investigating"


def _effect_discuss(ctx: ActionContext) -> str | None:
    ctx.case.discussion = {
        "reason": _text(ctx.payload, "reason", 2000),
        "conclusion": _text(ctx.payload, "conclusion", 2000),
        "by": ctx.actor.name,
        "at": ctx.now.isoformat(),
    }
    return None


def _proposed(ctx: ActionContext) -> tuple[int, str | None]:
    """(fine in cents, other penalty) from `fine` (yuan) and/or `penalty`."""
    fine = ctx.payload.get("fine")
    penalty = ctx.payload.get("penalty")
    if fine is None and penalty is None:
        raise ValidationFailed("give fine (yuan) or penalty", field="fine")
    cents = 0
    if fine is not None:
        cents = round(_number(ctx.payload, "fine", low=0, high=1e9) * 100)
    if penalty is not None and penalty not in PENALTIES:
        raise ValidationFailed(f"penalty must be one of {', '.join(PENALTIES)}", field="penalty")
    return cents, penalty


def _effect_notify(ctx: ActionContext) -> str | None:
    record = ctx.case
    party = ctx.session.get(Party, record.party_id)
    assert party is not None
    cents, penalty = _proposed(ctx)
    record.notified_at = ctx.now
    record.statement_due_at = due_after(ctx.calendar, ctx.now, period(ctx.session, "statement"))
    record.hearing_offered = (
        penalty in HEARING_PENALTIES or cents >= HEARING_FINE_YUAN[party.kind] * 100
    )
    if record.hearing_offered:
        record.hearing_request_due_at = due_after(
            ctx.calendar, ctx.now, period(ctx.session, "hearing_request")
        )
        ctx.notes["hearing_request_due_at"] = record.hearing_request_due_at.isoformat()
    ctx.notes["statement_due_at"] = record.statement_due_at.isoformat()
    ctx.notes["hearing_offered"] = record.hearing_offered
    return None


def _effect_record_statement(ctx: ActionContext) -> str | None:
    waived = _bool(ctx.payload, "waived")
    if not waived:
        _text(ctx.payload, "statement", 4000)
    ctx.case.statement_waived = waived
    hearing_waived = ctx.payload.get("hearing_waived")
    if hearing_waived is not None:
        if not isinstance(hearing_waived, bool):
            raise ValidationFailed("hearing_waived must be true or false", field="hearing_waived")
        if hearing_waived:
            ctx.case.hearing_offered = False
    return None


def _effect_request_hearing(ctx: ActionContext) -> str | None:
    record = ctx.case
    if not record.hearing_offered:
        raise ValidationFailed("this penalty gives no right to a hearing (art. 63)", field="action")
    assert record.hearing_request_due_at is not None
    if ctx.now > record.hearing_request_due_at:
        raise ValidationFailed(
            "听证要求须在告知后五日内提出 (a hearing must be requested within 5 days of the "
            f"notice, art. 64; the period ended {record.hearing_request_due_at.isoformat()})",
            field="hearing_request_due_at",
        )
    record.hearing_requested = True
    return None


def _effect_schedule_hearing(ctx: ActionContext) -> str | None:
    at = _when(ctx.payload, "hearing_at")
    earliest = due_after(ctx.calendar, ctx.now, period(ctx.session, "hearing_notice"))
    if at < earliest:
        raise ValidationFailed(
            "听证须在举行七日前通知当事人 (the party must be notified 7 days before the hearing, "
            f"art. 64; the earliest hearing noticed now is after {earliest.isoformat()})",
            field="hearing_at",
        )
    ctx.case.hearing_at = at
    ctx.notes["hearing_at"] = at.isoformat()
    return None


def _effect_hold_hearing(ctx: ActionContext) -> str | None:
    record = ctx.case
    if record.hearing_at is None:
        raise ValidationFailed("schedule the hearing first", field="hearing_at")
    if ctx.now < record.hearing_at:
        raise ValidationFailed(
            f"the hearing is set for {record.hearing_at.isoformat()}", field="hearing_at"
        )
    _text(ctx.payload, "record", 8000)
    record.hearing_held = True
    return None


def _effect_request_extension(ctx: ActionContext) -> str | None:
    if ctx.case.extension_request is not None:
        raise ValidationFailed("an extension request is already waiting", field="action")
    ctx.case.extension_request = {
        "days": int(_number(ctx.payload, "days", low=1, high=90)),
        "reason": _text(ctx.payload, "reason", 2000),
        "by": ctx.actor.name,
    }
    return None


def _effect_grant_extension(ctx: ActionContext) -> str | None:
    record = ctx.case
    if record.extension_request is None or record.decision_due_at is None:
        raise ValidationFailed("there is no extension request to grant", field="action")
    record.decision_due_at = record.decision_due_at + timedelta(
        days=int(record.extension_request["days"])
    )
    record.extension_request = None
    if record.stage == "decide":
        record.stage_due_at = record.decision_due_at
    ctx.notes["decision_due_at"] = record.decision_due_at.isoformat()
    _follow_on_loop(ctx, record.decision_due_at)
    return None


@dataclass(frozen=True)
class DiscretionCheck:
    tier: str
    repeat: bool
    prior_cases: int
    effective_tier: str
    fine_min: float | None
    fine_max: float | None
    penalties: list[str]
    within: bool | None
    note: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "tier_label": TIER_LABELS[self.tier],
            "repeat": self.repeat,
            "prior_cases": self.prior_cases,
            "effective_tier": self.effective_tier,
            "effective_tier_label": TIER_LABELS[self.effective_tier],
            "fine_min": self.fine_min,
            "fine_max": self.fine_max,
            "penalties": self.penalties,
            "within": self.within,
            "note": self.note,
        }


def prior_offences(
    session: Session, record: EnforcementCase, window_days: int, now: datetime
) -> int:
    """The party's earlier decided offences of the same violation within the window."""
    return (
        session.scalar(
            select(func.count())
            .select_from(EnforcementCase)
            .where(
                EnforcementCase.party_id == record.party_id,
                EnforcementCase.violation_id == record.violation_id,
                EnforcementCase.id != record.id,
                EnforcementCase.decided_at.is_not(None),
                EnforcementCase.decided_at >= now - timedelta(days=window_days),
                EnforcementCase.revoked.is_(False),
            )
        )
        or 0
    )


def discretion(
    session: Session,
    record: EnforcementCase,
    *,
    now: datetime,
    tier: str | None = None,
    fine_cents: int | None = None,
    base_amount: float | None = None,
) -> DiscretionCheck | None:
    """The range the discretion standard gives: the tier asked for (or the case's, else
    一般), raised one step for a repeat offence within the standard's window."""
    violation = session.get(Violation, record.violation_id)
    assert violation is not None
    standard = (
        session.get(DiscretionStandard, violation.standard_id) if violation.standard_id else None
    )
    if standard is None:
        return None
    tiers = tiers_of(session, standard.id)
    asked = tier or record.tier or "general"
    prior = prior_offences(session, record, standard.repeat_window_days, now)
    effective = asked
    if prior and TIERS.index(asked) < len(TIERS) - 1:
        effective = TIERS[TIERS.index(asked) + 1]
    row = tiers.get(effective) or tiers.get(asked)
    if row is None:
        return None
    low, high = row.fine_min, row.fine_max
    note = row.conditions
    if row.percent_min is not None and row.percent_max is not None:
        note = f"{row.percent_min:g}%–{row.percent_max:g}% of {row.percent_of or 'the base'}"
        if base_amount is not None:
            low = base_amount * row.percent_min / 100
            high = base_amount * row.percent_max / 100
    within: bool | None = None
    if fine_cents is not None and (low is not None or high is not None):
        yuan = fine_cents / 100
        within = (low is None or yuan >= low - 1e-9) and (high is None or yuan <= high + 1e-9)
    return DiscretionCheck(
        asked, bool(prior), prior, row.tier, low, high, list(row.penalties or []), within, note
    )


def _check_discretion(ctx: ActionContext, cents: int, penalty: str | None) -> None:
    record = ctx.case
    tier = ctx.payload.get("tier")
    if tier is not None and tier not in TIERS:
        raise ValidationFailed(f"tier must be one of {', '.join(TIERS)}", field="tier")
    base = ctx.payload.get("base_amount")
    if base is not None:
        base = _number(ctx.payload, "base_amount", low=0, high=1e12)
    check = discretion(
        ctx.session,
        record,
        now=ctx.now,
        tier=tier,
        fine_cents=cents if cents else None,
        base_amount=base,
    )
    if check is None:
        return
    record.tier = check.effective_tier
    ctx.notes["discretion"] = check.as_dict()
    outside = check.within is False or (
        penalty is not None and check.penalties and penalty not in check.penalties
    )
    if outside and not record.discussion:
        raise ValidationFailed(
            f"罚款超出裁量基准 (the fine {cents / 100:g} yuan is outside the range "
            f"{_yuan(check.fine_min)}–{_yuan(check.fine_max)} yuan of tier "
            f"{TIER_LABELS[check.effective_tier]}"
            f"{' (repeat offence)' if check.repeat else ''}); attach a 集体讨论 record (discuss) "
            "with its reason to decide outside it",
            field="fine",
        )
    if outside:
        ctx.notes["outside_range_by_discussion"] = True


def _yuan(value: float | None) -> str:
    return "…" if value is None else f"{value:g}"


def _effect_decide(ctx: ActionContext) -> str | None:
    record = ctx.case
    _officers(ctx)
    assert record.statement_due_at is not None
    if not record.statement_waived and ctx.now <= record.statement_due_at:
        raise ValidationFailed(
            "陈述申辩期未满 (the statement period ends "
            f"{record.statement_due_at.isoformat()}; decide after it, or record the party's "
            "written waiver, 行政处罚法 第四十四、四十五条)",
            field="statement_due_at",
        )
    if (
        record.hearing_offered
        and not record.hearing_held
        and record.hearing_request_due_at is not None
        and ctx.now <= record.hearing_request_due_at
    ):
        raise ValidationFailed(
            "听证申请期未满 (the party may still request a hearing until "
            f"{record.hearing_request_due_at.isoformat()}, art. 64)",
            field="hearing_request_due_at",
        )
    _within_decision_period(ctx)
    if record.major and not (record.reviews or {}).get("legal_review", {}).get("approved"):
        raise ValidationFailed(
            "a 重大 decision needs an approved 法制审核 (art. 58)", field="action"
        )
    cents, penalty = _proposed(ctx)
    _check_discretion(ctx, cents, penalty)
    _decided(ctx, cents, penalty)
    return None


def _decided(ctx: ActionContext, cents: int, penalty: str | None) -> None:
    record = ctx.case
    record.fine_cents = cents
    record.penalty = penalty
    record.decided_at = ctx.now
    ctx.notes["fine_yuan"] = cents / 100


def _effect_decide_on_site(ctx: ActionContext) -> str | None:
    record = ctx.case
    party = ctx.session.get(Party, record.party_id)
    assert party is not None
    _officers(ctx)
    cents, penalty = _proposed(ctx)
    limit = SIMPLE_LIMIT_YUAN[party.kind]
    if cents > limit * 100:
        raise ValidationFailed(
            f"简易程序当场处罚: {'a person' if party.kind == 'person' else 'an organisation'} "
            f"may be fined at most {limit} yuan on the spot (行政处罚法 第五十一条); use the "
            "ordinary procedure",
            field="fine",
        )
    if penalty not in (None, "warning"):
        raise ValidationFailed(
            "on the spot: a warning or a small fine only (art. 51)", field="penalty"
        )
    _check_discretion(ctx, cents, penalty)
    _hash_media(ctx)
    record.procedure = "simple"
    record.filed_at = ctx.now
    _decided(ctx, cents, penalty)
    _delivered(ctx, "direct")
    return "executing" if cents else "executed"


def _delivered(ctx: ActionContext, method: str) -> None:
    record = ctx.case
    record.delivered_at = ctx.now
    record.delivery_method = method
    if record.fine_cents:
        record.payment_due_at = due_after(ctx.calendar, ctx.now, period(ctx.session, "pay"))
        ctx.notes["payment_due_at"] = record.payment_due_at.isoformat()
        _follow_on_loop(ctx, record.payment_due_at)


def _effect_deliver(ctx: ActionContext) -> str | None:
    method = ctx.payload.get("method")
    if method not in DELIVERY_METHODS:
        raise ValidationFailed(
            f"method must be one of {', '.join(DELIVERY_METHODS)}", field="method"
        )
    record = ctx.case
    assert record.decided_at is not None
    due = due_after(ctx.calendar, record.decided_at, period(ctx.session, "deliver"))
    if ctx.now > due:
        # Late delivery is still owed to the party: it is recorded, not refused (art. 61).
        ctx.notes["late"] = True
    _delivered(ctx, str(method))
    return "executing" if record.fine_cents else "executed"


def surcharge_cents(record: EnforcementCase, now: datetime, calendar: WorkingCalendar) -> int:
    """加处罚款 (art. 72): 3 % of the fine for each day past the due date, at most the fine."""
    if record.payment_due_at is None or not record.fine_cents or now <= record.payment_due_at:
        return 0
    days = (
        now.astimezone(calendar.tz).date() - record.payment_due_at.astimezone(calendar.tz).date()
    ).days
    return min(round(record.fine_cents * SURCHARGE_RATE * days), record.fine_cents)


def outstanding_cents(record: EnforcementCase, now: datetime, calendar: WorkingCalendar) -> int:
    return max(record.fine_cents + surcharge_cents(record, now, calendar) - record.paid_cents, 0)


def _effect_record_payment(ctx: ActionContext) -> str | None:
    record = ctx.case
    cents = round(_number(ctx.payload, "amount", low=0.01, high=1e9) * 100)
    due = outstanding_cents(record, ctx.now, ctx.calendar)
    if cents > due:
        raise ValidationFailed(
            f"the payment {cents / 100:.2f} yuan is more than the {due / 100:.2f} yuan due "
            "(fine plus 加处罚款, less what was paid)",
            field="amount",
        )
    record.paid_cents += cents
    ctx.notes["surcharge_yuan"] = surcharge_cents(record, ctx.now, ctx.calendar) / 100
    ctx.notes["outstanding_yuan"] = (due - cents) / 100
    return "executed" if cents == due else record.state


def _effect_grant_instalments(ctx: ActionContext) -> str | None:
    record = ctx.case
    days = int(_number(ctx.payload, "days", low=1, high=365))
    assert record.payment_due_at is not None
    record.payment_due_at = record.payment_due_at + timedelta(days=days)
    record.instalments = {"days": days, "reason": _text(ctx.payload, "reason", 2000)}
    record.stage_due_at = record.payment_due_at
    ctx.notes["payment_due_at"] = record.payment_due_at.isoformat()
    return None


def _effect_apply_court(ctx: ActionContext) -> str | None:
    record = ctx.case
    if record.payment_due_at is None or ctx.now <= record.payment_due_at:
        raise ValidationFailed("the payment period has not ended (art. 67, 72)", field="action")
    return None


def _within_decision_period(ctx: ActionContext) -> None:
    due = ctx.case.decision_due_at
    if due is not None and ctx.now > due:
        raise ValidationFailed(
            "超过九十日办案期限 (the decision is due within 90 days of 立案, art. 60: ended "
            f"{due.isoformat()}; an extension must be granted first)",
            field="decision_due_at",
        )


def _effect_no_penalty(ctx: ActionContext) -> str | None:
    record = ctx.case
    _within_decision_period(ctx)
    basis = ctx.payload.get("basis")
    if basis not in NO_PENALTY_BASES:
        raise ValidationFailed(f"basis must be one of {', '.join(NO_PENALTY_BASES)}", field="basis")
    if basis in ("first_offence", "minor_rectified") and record.rectified is not True:
        raise ValidationFailed(
            "不予处罚 needs the party to have rectified in time: record a re-check first",
            field="basis",
        )
    if basis == "first_offence":
        violation = ctx.session.get(Violation, record.violation_id)
        assert violation is not None
        tiers = tiers_of(ctx.session, violation.standard_id)
        if not any(t.first_offence_exempt for t in tiers.values()):
            raise ValidationFailed(
                "the discretion standard of this violation has no 首违不罚 tier", field="basis"
            )
        standard = ctx.session.get(DiscretionStandard, violation.standard_id)
        window = standard.repeat_window_days if standard else 365
        prior = prior_offences(ctx.session, record, window, ctx.now)
        if prior:
            raise ValidationFailed(
                f"首违不罚 is for a first offence: the party has {prior} earlier within "
                f"{window} days (art. 33)",
                field="basis",
            )
    record.result = "not_punished"
    record.result_note = _text(ctx.payload, "reason", 2000)
    return None


def _ended(ctx: ActionContext, result: str, note: str) -> None:
    """The enforcement case has ended: the case it came from gets its result."""
    record = ctx.case
    record.closed_at = ctx.now
    if record.result is None or result != "closed":
        record.result = result
    if record.case_id is None:
        return
    linked = ctx.session.get(Case, record.case_id)
    if linked is None or linked.state != "enforcing":
        return
    cases.transition(
        ctx.session,
        linked.id,
        "enforcement_result",
        SYSTEM,
        {
            "result": note,
            "enforcement_case_id": record.id,
            "outcome": record.result,
            "photos": list(record.result_photos or []),
        },
        now=ctx.now,
        calendar=ctx.calendar,
    )


def _effect_close(ctx: ActionContext) -> str | None:
    record = ctx.case
    note = ctx.payload.get("note")
    if note is not None and not isinstance(note, str):
        raise ValidationFailed("note must be text", field="note")
    if record.result is None:
        record.result = "penalised"
    text = note or record.result_note or _result_text(record)
    record.result_note = text
    _ended(ctx, record.result, text)
    return None


def _result_text(record: EnforcementCase) -> str:
    if record.result == "not_punished":
        return "经查处，依法不予处罚"
    parts = []
    if record.fine_cents:
        parts.append(f"罚款{record.fine_cents / 100:g}元")
    if record.penalty:
        parts.append(PENALTIES[record.penalty])
    return "经立案查处，已作出行政处罚（" + "、".join(parts) + "）并执行完毕"


def _effect_end(result: str, label: str) -> Callable[[ActionContext], str | None]:
    def effect(ctx: ActionContext) -> str | None:
        reason = _text(ctx.payload, "reason", 2000)
        if result == "transferred":
            ctx.notes["authority"] = _text(ctx.payload, "authority", 120)
        if result == "revoked":
            ctx.case.revoked = True
        _ended(ctx, result, f"{label}：{reason}")
        return None

    return effect


def _effect_withhold(ctx: ActionContext) -> str | None:
    ctx.case.disclosure_withheld = _text(ctx.payload, "reason", 2000)
    return None


# -- documents (文书): issued by the one generator, their hashes on the timeline -------------
SUBJECT = "enforcement_case"


def _basis(session: Session, article_id: int) -> str:
    return basis_label(session, article_id)


def _penalty_text(record: EnforcementCase) -> str:
    parts = []
    if record.fine_cents:
        parts.append(f"罚款人民币{record.fine_cents / 100:g}元")
    if record.penalty:
        parts.append(PENALTIES[record.penalty])
    return "、".join(parts) or "（拟定）"


def _issue(ctx: ActionContext, kind: str, **extra: Any) -> None:
    """Issue one numbered document of this step and note it (id, number, sha256) in the
    step's timeline line, so the hash chain covers the document's bytes."""
    from cityloop.documents.service import issue_document

    record = ctx.case
    party = ctx.session.get(Party, record.party_id)
    violation = ctx.session.get(Violation, record.violation_id)
    assert party is not None and violation is not None
    bureau = bureau_of(ctx.session, record.department_id)
    local = ctx.now.astimezone(ctx.calendar.tz)
    context: dict[str, Any] = {
        "case_number": f"{bureau.doc_prefix or bureau.code}执〔{local.year}〕{record.id}号",
        "party_name": party.name,
        "party_address": party.address or "—",
        "facts": record.facts,
        "violation_name": violation.name,
        "legal_basis": _basis(ctx.session, violation.violation_article_id),
        "penalty_basis": _basis(ctx.session, violation.penalty_article_id),
        "penalty_text": _penalty_text(record),
        "fine_yuan": f"{record.fine_cents / 100:g}" if record.fine_cents else "",
        "officers": "、".join(ctx.notes.get("officers") or [ctx.actor.name]),
        "place": record.address or f"{record.lon:.6f}, {record.lat:.6f}",
        "date": f"{local.year}年{local.month}月{local.day}日",
        "source": {
            "case": "群众投诉（案件转办）",
            "patrol": "巡查发现",
            "transfer": "移送",
            "inspection": "检查发现",
        }.get(record.source, record.source),
        **extra,
    }
    document = issue_document(
        ctx.session,
        kind=kind,
        issuer_code=bureau.code,
        context=context,
        subject_type=SUBJECT,
        subject_id=record.id,
        now=ctx.now,
        actor_name=ctx.actor.name,
    )
    ctx.notes.setdefault("documents", []).append(
        {"id": document.id, "kind": kind, "number": document.number, "sha256": document.sha256}
    )


def _with_document(
    effect: Callable[[ActionContext], str | None],
    kind: str | Callable[[ActionContext], str | None],
    **extra: Callable[[ActionContext], Any],
) -> Callable[[ActionContext], str | None]:
    def wrapped(ctx: ActionContext) -> str | None:
        target = effect(ctx)
        chosen = kind(ctx) if callable(kind) else kind
        if chosen is not None:
            _issue(ctx, chosen, **{name: make(ctx) for name, make in extra.items()})
        return target

    return wrapped


def _local(ctx: ActionContext, at: datetime | None) -> str:
    if at is None:
        return ""
    local = at.astimezone(ctx.calendar.tz)
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"


def _record_kind(ctx: ActionContext) -> str | None:
    form = ctx.payload.get("record")
    return str(form["kind"]) if isinstance(form, dict) else None


def _record_text(ctx: ActionContext) -> str:
    form = ctx.payload.get("record")
    return str(form.get("content", "")) if isinstance(form, dict) else ""


def _notify_documents(
    effect: Callable[[ActionContext], str | None],
) -> Callable[[ActionContext], str | None]:
    def wrapped(ctx: ActionContext) -> str | None:
        target = effect(ctx)
        cents, penalty = _proposed(ctx)
        parts = [f"罚款人民币{cents / 100:g}元"] if cents else []
        if penalty is not None:
            parts.append(PENALTIES[penalty])
        proposal = "、".join(parts)
        _issue(
            ctx,
            "prior_notice",
            penalty_text=proposal,
            statement_deadline=_local(ctx, ctx.case.statement_due_at),
        )
        if ctx.case.hearing_offered:
            _issue(
                ctx,
                "hearing_notice",
                penalty_text=proposal,
                hearing_deadline=_local(ctx, ctx.case.hearing_request_due_at),
            )
        return target

    return wrapped


EFFECTS: dict[str, Callable[[ActionContext], str | None]] = {
    "file": _with_document(_effect_file, "filing_approval"),
    "decline_filing": _effect_end("not_filed", "不予立案"),
    "add_evidence": _with_document(
        _effect_add_evidence,
        _record_kind,
        started_at=lambda ctx: _local(ctx, ctx.now),
        ended_at=lambda ctx: _local(ctx, ctx.now),
        record_text=_record_text,
    ),
    "order_rectification": _with_document(
        _effect_order_rectification,
        "rectification_notice",
        deadline=lambda ctx: _local(ctx, ctx.case.rectify_due_at),
        rectification=lambda ctx: str(
            ctx.payload.get("rectification") or "立即停止违法行为，限期改正"
        ),
    ),
    "recheck": _effect_recheck,
    "submit_review": _effect_submit_review,
    "review": _effect_review,
    "legal_review": _effect_legal_review,
    "discuss": _effect_discuss,
    "notify": _notify_documents(_effect_notify),
    "record_statement": _effect_record_statement,
    "request_hearing": _effect_request_hearing,
    "schedule_hearing": _effect_schedule_hearing,
    "hold_hearing": _with_document(
        _effect_hold_hearing,
        "hearing_record",
        hearing_time=lambda ctx: _local(ctx, ctx.case.hearing_at),
        hearing_place=lambda ctx: str(ctx.payload.get("place") or "听证室"),
        host=lambda ctx: ctx.actor.name,
        record_text=lambda ctx: str(ctx.payload.get("record")),
    ),
    "request_extension": _effect_request_extension,
    "grant_extension": _effect_grant_extension,
    "decide": _with_document(
        _effect_decide,
        "penalty_decision",
        payment_text=lambda ctx: PAYMENT_TEXT,
        remedy_text=lambda ctx: REMEDY_TEXT,
    ),
    "decide_on_site": _with_document(
        _effect_decide_on_site,
        "on_site_decision",
        payment_text=lambda ctx: PAYMENT_TEXT,
        remedy_text=lambda ctx: REMEDY_TEXT,
    ),
    "deliver": _with_document(
        _effect_deliver,
        "delivery_receipt",
        delivered_documents=lambda ctx: "行政处罚决定书",
        delivery_method=lambda ctx: DELIVERY_METHODS[str(ctx.payload["method"])],
        delivered_at=lambda ctx: _local(ctx, ctx.now),
    ),
    "record_payment": _effect_record_payment,
    "grant_instalments": _effect_grant_instalments,
    "apply_court": _effect_apply_court,
    "no_penalty": _effect_no_penalty,
    "close": _with_document(
        _effect_close, "closing_approval", result=lambda ctx: ctx.case.result_note or ""
    ),
    "withdraw": _effect_end("withdrawn", "撤案"),
    "transfer": _effect_end("transferred", "移送"),
    "revoke": _effect_end("revoked", "撤销处罚决定"),
    "withhold_disclosure": _effect_withhold,
}

ENFORCEMENT_FLOW = Flow(
    table=states.TABLE,
    timeline=TIMELINE,
    noun="enforcement case",
    load=_load,
    can_see=can_see,
    restart_clock=_restart_clock,
    effects=EFFECTS,
    scope_checks={states.SCOPE_SQUAD: _squad_scope},
)


# -- the link to the case loop (R-HD-5) ------------------------------------------------------
def _follow_on_loop(ctx: ActionContext, due: datetime) -> None:
    if ctx.case.case_id is not None:
        cases.follow_enforcement_clock(ctx.session, ctx.case.case_id, due, ctx.now)


def _open_from_case(ctx: ActionContext) -> str | None:
    """The case loop's `open_enforcement`: the case's facts, place, photos and party become a
    new enforcement case's; the case waits in 立案查处中 on its legal clock."""
    case = ctx.case
    photos: list[str] = []
    for line in cases.timeline(ctx.session, case.id):
        photos.extend(p for p in line.photos or [] if isinstance(p, str) and p not in photos)
    data = {
        "violation_code": ctx.payload.get("violation_code"),
        "party_id": ctx.payload.get("party_id"),
        "facts": ctx.payload.get("facts") or case.description or "",
        "lon": case.lon,
        "lat": case.lat,
        "address": case.address,
        "squad_id": ctx.payload.get("squad_id"),
    }
    record = create(
        ctx.session,
        data,
        ctx.actor,
        now=ctx.now,
        calendar=ctx.calendar,
        source="case",
        case=case,
        photos=photos,
    )
    case.enforcement_case_id = record.id
    case.due_at = record.stage_due_at
    ctx.notes["enforcement_case_id"] = record.id
    return None


cases.register_effect("open_enforcement", _open_from_case)


def _can_read_documents(session: Session, user: Any, subject_id: int) -> bool:
    if user.role == "admin":
        return True
    record = session.get(EnforcementCase, subject_id)
    return record is not None and can_see(session, Actor.of(user), record)


def _register_reader() -> None:
    from cityloop.documents.service import register_reader

    register_reader(SUBJECT, _can_read_documents)


_register_reader()


def documents(session: Session, record_id: int) -> list[dict[str, Any]]:
    from cityloop.documents.service import documents_of

    return [
        {
            "id": d.id,
            "kind": d.kind,
            "title": d.title,
            "number": d.number,
            "sha256": d.sha256,
            "url": f"/api/v1/enforcement/documents/{d.id}.pdf",
        }
        for d in documents_of(session, SUBJECT, record_id)
    ]


# -- disclosure (执法公示, art. 48) ---------------------------------------------------------
def public_penalties(
    session: Session, *, page: int, page_size: int
) -> tuple[list[tuple[EnforcementCase, Party, Violation]], int]:
    """Decisions from their delivery on: not withheld, not revoked."""
    query = (
        select(EnforcementCase, Party, Violation)
        .join(Party, Party.id == EnforcementCase.party_id)
        .join(Violation, Violation.id == EnforcementCase.violation_id)
        .where(
            EnforcementCase.delivered_at.is_not(None),
            EnforcementCase.disclosure_withheld.is_(None),
            EnforcementCase.revoked.is_(False),
        )
    )
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(
        query.order_by(EnforcementCase.delivered_at.desc(), EnforcementCase.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return [tuple(r) for r in rows], total  # type: ignore[misc]


def undisclosed_overdue(
    session: Session, *, now: datetime, calendar: WorkingCalendar
) -> list[EnforcementCase]:
    """Withheld decisions still undisclosed N working days after delivery (flagged)."""
    days = period(session, "disclose")
    rows = session.scalars(
        select(EnforcementCase).where(
            EnforcementCase.delivered_at.is_not(None),
            EnforcementCase.disclosure_withheld.is_not(None),
            EnforcementCase.revoked.is_(False),
        )
    )
    return [r for r in rows if r.delivered_at and now > due_after(calendar, r.delivered_at, days)]


def issue_conflict(message: str) -> Conflict:
    return Conflict(message)


_DIGITS = "零一二三四五六七八九"


def chinese_number(n: int) -> str:
    """64 → 六十四, 105 → 一百零五 (article numbers)."""
    if n < 10:
        return _DIGITS[n]
    if n < 20:
        return "十" + (_DIGITS[n % 10] if n % 10 else "")
    if n < 100:
        return _DIGITS[n // 10] + "十" + (_DIGITS[n % 10] if n % 10 else "")
    rest = n % 100
    tail = "" if rest == 0 else ("零" + _DIGITS[rest] if rest < 10 else chinese_number(rest))
    if 10 <= rest < 20:
        tail = "一" + tail
    return _DIGITS[n // 100] + "百" + tail


def article_label(number: int) -> str:
    return f"第{chinese_number(number)}条"


# -- views --------------------------------------------------------------------------------
def standard_code(session: Session, standard_id: int | None) -> str | None:
    if standard_id is None:
        return None
    standard = session.get(DiscretionStandard, standard_id)
    return standard.code if standard else None


def basis_label(session: Session, article_id: int) -> str:
    article = session.get(LawArticle, article_id)
    assert article is not None
    law = session.get(Law, article.law_id)
    assert law is not None
    return f"《{law.name}》{article_label(article.number)}"


@dataclass
class CaseView:
    violation: Violation
    party: Party
    squad: EnforcementUnit
    surcharge_cents: int
    outstanding_cents: int
    deadlines: list[dict[str, Any]]
    discretion: dict[str, Any] | None


def case_view(
    session: Session, record: EnforcementCase, *, now: datetime, calendar: WorkingCalendar
) -> CaseView:
    violation = session.get(Violation, record.violation_id)
    party = session.get(Party, record.party_id)
    squad = session.get(EnforcementUnit, record.department_id)
    assert violation is not None and party is not None and squad is not None
    deadlines: list[dict[str, Any]] = []
    for code, due in (
        (record.stage or "", record.stage_due_at),
        ("decide", record.decision_due_at if record.decided_at is None else None),
        ("hearing_request", record.hearing_request_due_at if record.state == "notified" else None),
        ("pay", record.payment_due_at if record.state == "executing" else None),
    ):
        if due is not None and code and not any(d["code"] == code for d in deadlines):
            deadlines.append(
                {
                    "code": code,
                    "label": states.STAGE_LABELS.get(code, period(session, code).label),
                    "due_at": due,
                    "overdue": now > due,
                }
            )
    shown: dict[str, Any] | None = None
    if record.decided_at is not None:
        # The check as it stood when the decision was made (later offences do not change it).
        shown = session.scalar(
            select(EnforcementEvent.payload)
            .where(
                EnforcementEvent.case_id == record.id,
                EnforcementEvent.action.in_(("decide", "decide_on_site")),
            )
            .order_by(EnforcementEvent.seq.desc())
            .limit(1)
        )
        shown = (shown or {}).get("discretion")
    else:
        check = discretion(session, record, now=now)
        shown = check.as_dict() if check else None
    return CaseView(
        violation,
        party,
        squad,
        surcharge_cents(record, now, calendar),
        outstanding_cents(record, now, calendar) if record.decided_at else 0,
        deadlines,
        shown,
    )


# -- 执法通: the officer's on-site case from the phone ---------------------------------------
def find_by_key(session: Session, key: str) -> EnforcementCase | None:
    return session.scalar(select(EnforcementCase).where(EnforcementCase.idempotency_key == key))


def on_site(
    session: Session,
    data: dict[str, Any],
    actor: Actor,
    *,
    key: str,
    photos: list[str],
    now: datetime,
    calendar: WorkingCalendar,
    secret: str,
) -> tuple[EnforcementCase, bool]:
    """Register the party and the case, record the evidence with the second officer, and
    decide on the spot when asked (简易程序). The key makes a second send return the first
    case (False: nothing new)."""
    if not key or len(key) > 100:
        raise ValidationFailed("the form needs its idempotency key", field="idempotency_key")
    found = find_by_key(session, key)
    if found is not None:
        return found, False
    me = officer_of(session, actor.user_id)
    if me is None:
        raise ValidationFailed("your account is not a registered officer", field="officer_ids")
    party = create_party(
        session,
        {
            "kind": data.get("party_kind"),
            "name": data.get("party_name"),
            **({"id_number": data["id_number"]} if data.get("id_number") else {}),
            **({"credit_code": data["credit_code"]} if data.get("credit_code") else {}),
            "address": data.get("party_address") or "",
        },
        now=now,
        secret=secret,
    )
    record = create(
        session,
        {
            "violation_code": data.get("violation_code"),
            "party_id": party.id,
            "facts": data.get("facts"),
            "lon": data.get("lon"),
            "lat": data.get("lat"),
            "address": data.get("address") or None,
        },
        actor,
        now=now,
        calendar=calendar,
        source="patrol",
    )
    record.idempotency_key = key
    second = data.get("second_officer_id")
    officers = [me.id, second]
    evidence: dict[str, Any] = {"officer_ids": officers, "photos": photos}
    if data.get("record_text"):
        evidence["record"] = {
            "kind": data.get("record_kind") or "inspection_record",
            "content": data["record_text"],
        }
    transition(session, record.id, "add_evidence", actor, evidence, now=now, calendar=calendar)
    if data.get("decide"):
        decision: dict[str, Any] = {"officer_ids": officers, "tier": data.get("tier") or "minor"}
        if data.get("fine") not in (None, "", 0):
            decision["fine"] = data["fine"]
        else:
            decision["penalty"] = "warning"
        transition(
            session, record.id, "decide_on_site", actor, decision, now=now, calendar=calendar
        )
    return record, True


def squad_cases(session: Session, actor: Actor) -> list[EnforcementCase]:
    """The open enforcement cases of the officer's squad, newest first."""
    me = officer_of(session, actor.user_id)
    query = select(EnforcementCase).where(EnforcementCase.state.in_(states.OPEN_STATES))
    if actor.role == "officer":
        if me is None:
            return []
        query = query.where(EnforcementCase.department_id == me.unit_id)
    return list(session.scalars(query.order_by(EnforcementCase.id.desc()).limit(50)))


def squad_officers(session: Session, actor: Actor) -> list[Officer]:
    me = officer_of(session, actor.user_id)
    if me is None:
        return list(session.scalars(select(Officer).order_by(Officer.id)))
    return list(
        session.scalars(
            select(Officer)
            .where(Officer.unit_id == me.unit_id, Officer.id != me.id)
            .order_by(Officer.id)
        )
    )


def all_violations(session: Session) -> list[Violation]:
    return list(session.scalars(select(Violation).order_by(Violation.code)))


# -- figures for the bureau's leaders (read-only, from the cases and their timelines) ------
# The steps whose record is a document: a case's 全过程记录 is complete when each of its steps
# of these kinds carries its document on the timeline line (art. 47).
RECORDED_STEPS = frozenset(
    {
        "file",
        "order_rectification",
        "notify",
        "hold_hearing",
        "decide",
        "decide_on_site",
        "deliver",
        "close",
    }
)


def figures(
    session: Session, *, now: datetime, calendar: WorkingCalendar | None = None
) -> dict[str, Any]:
    records = list(session.scalars(select(EnforcementCase)))
    squads = {u.id: u.name for u in session.scalars(select(EnforcementUnit))}
    by_state: dict[str, int] = {}
    per_squad: dict[str, int] = {}
    decided = collected = 0
    ended = on_time = 0
    for record in records:
        by_state[record.state] = by_state.get(record.state, 0) + 1
        name = squads.get(record.department_id, str(record.department_id))
        per_squad[name] = per_squad.get(name, 0) + 1
        if record.decided_at is not None and not record.revoked:
            decided += record.fine_cents
            collected += record.paid_cents
        if record.closed_at is not None:
            ended += 1
            finished = record.decided_at or record.closed_at
            if record.decision_due_at is None or finished <= record.decision_due_at:
                on_time += 1
    covered: dict[int, bool] = {r.id: True for r in records}
    per_officer: dict[str, set[int]] = {}
    for case_id, action, payload in session.execute(
        select(EnforcementEvent.case_id, EnforcementEvent.action, EnforcementEvent.payload)
    ):
        if action in RECORDED_STEPS and not (payload or {}).get("documents"):
            covered[case_id] = False
        for officer in (payload or {}).get("officers") or []:
            per_officer.setdefault(str(officer), set()).add(case_id)
    return {
        "cases": len(records),
        "by_state": {
            state: by_state.get(state, 0) for state in states.STATES if by_state.get(state)
        },
        "on_time_rate": round(on_time / ended, 4) if ended else None,
        "fines_decided_yuan": decided / 100,
        "fines_collected_yuan": collected / 100,
        "record_coverage": round(sum(covered.values()) / len(records), 4) if records else None,
        "per_squad": per_squad,
        "per_officer": {name: len(ids) for name, ids in sorted(per_officer.items())},
        # Decisions still undisclosed N working days after delivery (the `disclose` period).
        "undisclosed_overdue": [
            r.id for r in undisclosed_overdue(session, now=now, calendar=calendar)
        ]
        if calendar is not None
        else [],
        "at": now,
    }
