"""The case service: creating a case, `transition()`, and the views of a case.

`transition()` runs the case flow (`CASE_FLOW`: the table of `states.py` with this module's
effects, scopes and stage clock) on the one workflow engine (`workflow.engine.run`), the only
writer of `Case.state`. In one transaction (owned by the caller) it checks the table row
(role, state, scope, payload, guards), applies the row's effect, restarts the stage clock,
appends a hash-chained CaseEvent and bumps `Case.version`; a concurrent writer loses with a
Conflict (409).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import Table, func, insert, or_, select
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_dict
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from cityloop.assets.models import Component
from cityloop.cases.models import TIMELINE, Case, CaseEvent
from cityloop.cases.states import (
    METHODS_721,
    OPEN_STATES,
    SCOPE_DEPARTMENT,
    SCOPE_GRID,
    STAGE_LABELS,
    STATE_STAGE,
    TABLE,
    Transition,
)
from cityloop.errors import NotFound, ValidationFailed
from cityloop.kit.calendar import WorkingCalendar, traffic_light
from cityloop.org.models import Department, User
from cityloop.org.service import descendant_ids, responsible_department, responsible_rule
from cityloop.taxonomy.service import find_class, get_class, handling_days, stage_limits
from cityloop.workflow import engine
from cityloop.workflow import timeline as chain
from cityloop.workflow.actors import PUBLIC as PUBLIC
from cityloop.workflow.actors import SYSTEM as SYSTEM
from cityloop.workflow.actors import Actor as Actor
from cityloop.workflow.engine import ActionContext as ActionContext
from cityloop.workflow.flow import Flow

URGENCIES = ("A", "B", "C")


def partner_actor(name: str) -> Actor:
    """A partner platform (12345, 110, …) acting through its API key."""
    return Actor(None, name, "partner")


def device_actor(name: str) -> Actor:
    """A camera or a sensor reporting with no person involved."""
    return Actor(None, name, "device")


class Locator(Protocol):
    def locate(self, lon: float, lat: float) -> Any: ...


# -- creating a case ---------------------------------------------------------------------------
def new_ticket(now: datetime) -> str:
    # Random, not sequential: the public tracking page must not let anyone walk all cases.
    # Eight characters (32**8 a day): with six, a day of 20 000 reports drew the same ticket
    # twice one day in five, and the second report failed on the unique index (seen in
    # bench/bench_intake.py as a 500).
    alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
    return now.strftime("%y%m%d") + "".join(secrets.choice(alphabet) for _ in range(8))


def find_by_ticket(session: Session, ticket: str) -> Case | None:
    return session.scalar(select(Case).where(Case.ticket == ticket))


def find_by_idempotency_key(session: Session, key: str) -> Case | None:
    return session.scalar(select(Case).where(Case.idempotency_key == key))


def create_case(
    session: Session,
    *,
    places: Locator,
    calendar: WorkingCalendar,
    now: datetime,
    actor: Actor,
    source: str,
    class_code: str,
    description: str,
    lon: float,
    lat: float,
    initial_state: str,
    urgency: str | None = None,
    address: str | None = None,
    reporter_name: str | None = None,
    reporter_phone: str | None = None,
    component_id: str | None = None,
    leader_assigned: bool = False,
    idempotency_key: str | None = None,
    idempotency_fingerprint: str | None = None,
    photos: list[Any] | None = None,
    voice: str | None = None,
    merged_into_id: int | None = None,
    class_confirmed: bool = True,
    event_notes: dict[str, Any] | None = None,
) -> Case:
    """Give birth to a case; intake.receive() is the only caller in production."""
    problem_class = get_class(session, class_code)
    engine.check_media(session, [*(photos or []), *([voice] if voice else [])], field="photos")
    if urgency is not None and urgency not in URGENCIES:
        raise ValidationFailed("urgency must be A, B or C", field="urgency")
    location = places.locate(lon, lat)
    if location is None:
        raise ValidationFailed(f"the point ({lon}, {lat}) is outside the city's area", field="lon")
    if component_id is not None:
        component = session.get(Component, component_id)
        if component is None:
            raise ValidationFailed(
                f"component {component_id} is not registered", field="component_id"
            )
    case = Case(
        ticket=new_ticket(now),
        idempotency_key=idempotency_key,
        idempotency_fingerprint=idempotency_fingerprint,
        source=source,
        class_code=problem_class.code,
        kind=problem_class.kind,
        description=description,
        address=address,
        lon=lon,
        lat=lat,
        h3_cell=location.h3_cell,
        unit_grid=location.unit_grid,
        resp_grid=location.resp_grid,
        community=location.community,
        street=location.street,
        district=location.district,
        urgency=urgency or problem_class.default_urgency,
        state=initial_state,
        leader_assigned=leader_assigned,
        component_id=component_id,
        reporter_name=reporter_name,
        reporter_phone=reporter_phone,
        reporter_user_id=actor.user_id,
        created_at=now,
        updated_at=now,
        merged_into_id=merged_into_id,
        class_confirmed=class_confirmed,
    )
    if initial_state == "filed":
        case.filed_at = now
    _restart_clock(session, case, now, calendar)
    _insert_new(session, case)
    _append_event(
        session,
        case,
        actor,
        "report",
        None,
        initial_state,
        now,
        {
            "source": source,
            "class_code": problem_class.code,
            "urgency": case.urgency,
            "leader_assigned": leader_assigned,
            **({"voice": voice} if voice else {}),
            **(event_notes or {}),
        },
        list(photos or []),
    )
    session.flush()
    return case


_CASE_TABLE = cast(Table, Case.__table__)
_CASE_COLUMNS = [column for column in _CASE_TABLE.columns if column.key not in ("id", "version")]
_CASE_DEFAULTS = {
    column.key: column.default.arg
    for column in _CASE_COLUMNS
    if isinstance(column.default, ScalarElementColumnDefault)
}
_INSERT_CASE = insert(_CASE_TABLE).returning(_CASE_TABLE.c.id)


def _insert_new(session: Session, case: Case) -> None:
    """Write a new case's row with one plain INSERT, then hand the object to the session as
    the row it now is: the unit of work's flush of one new object cost a sixth of a report
    (cProfile of POST /api/v1/reports), and later changes to the case are still its UPDATEs,
    with the version check."""
    row = {column.key: getattr(case, column.key) for column in _CASE_COLUMNS}
    for key, default in _CASE_DEFAULTS.items():
        if row[key] is None:
            row[key] = default
    row["version"] = 1
    row["id"] = session.execute(_INSERT_CASE, row).scalar_one()
    # Every column's value is now in the object, as loaded: none is left to read back.
    instance_dict(case).update(row)
    make_transient_to_detached(case)
    session.add(case)


# -- transition --------------------------------------------------------------------------------
def get_case(session: Session, case_id: int, *, for_update: bool = False) -> Case:
    query = select(Case).where(Case.id == case_id)
    if for_update:
        # On PostgreSQL the second of two simultaneous writers waits here and then sees the
        # state the first one left, so it gets a clear "not allowed now" instead of a retry.
        query = query.with_for_update().execution_options(populate_existing=True)
    case = session.scalar(query)
    if case is None:
        raise NotFound(f"case {case_id} not found")
    return case


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
    held: Case | None = None,
) -> Case:
    """Take one row of the transition table on a case. `held` is the case when this
    transaction made it: it is not read again, nor written before the transaction ends."""
    return cast(
        Case,
        engine.run(
            CASE_FLOW,
            session,
            case_id,
            action,
            actor,
            payload,
            now=now,
            calendar=calendar,
            expected_version=expected_version,
            held=held,
        ),
    )


def _load(session: Session, case_id: int, for_update: bool) -> Case:
    return get_case(session, case_id, for_update=for_update)


def _department_scope(ctx: ActionContext) -> str | None:
    if ctx.case.department_id != ctx.actor.department_id:
        return "this case is not held by your department"
    return None


def _grid_scope(ctx: ActionContext) -> str | None:
    if not in_grid(ctx.actor, ctx.case):
        return "this case is outside your grids"
    return None


def in_grid(actor: Actor, case: Case) -> bool:
    codes = [c for c in (case.unit_grid, case.resp_grid, case.community, case.street) if c]
    return any(code.startswith(grid) for grid in actor.grid_codes for code in codes)


def can_see(session: Session, actor: Actor, case: Case) -> bool:
    if actor.role == "handler":
        if actor.department_id is None or case.department_id is None:
            return False
        return case.department_id in descendant_ids(session, actor.department_id)
    if actor.role == "inspector":
        return in_grid(actor, case)
    if actor.role == "public":
        # Anonymous callers reach a case only through its ticket and the reporter's phone
        # (intake.service.rate_by_ticket); no other edge hands PUBLIC to transition().
        return True
    return actor.role in {"admin", "operator", "shiftlead", "dispatcher", "leader", "system"}


_CLOCK_RESTARTING = {"rework", "return_visit", "send_back", "dispatch", "pass_down", "assign_proxy"}


def _restart_clock(session: Session, case: Case, now: datetime, calendar: WorkingCalendar) -> None:
    stage = STATE_STAGE.get(case.state)
    case.stage = stage
    case.stage_started_at = now if stage else None
    case.warned_stage = None
    case.overdue_stage = None
    if stage is None:
        case.stage_due_at = None
    elif stage == "handle" or stage == "enforce":
        # Under enforcement the case runs on the enforcement case's legal clock (due_at).
        case.stage_due_at = case.due_at
    else:
        limits = calendar.stage_minutes or stage_limits(session)
        case.stage_due_at = calendar.add_working_minutes(now, limits.get(stage, 60))


def _append_event(
    session: Session,
    case: Case,
    actor: Actor,
    action: str,
    from_state: str | None,
    to_state: str,
    now: datetime,
    payload: dict[str, Any],
    photos: list[Any],
) -> None:
    chain.append(session, TIMELINE, case, actor, action, from_state, to_state, now, payload, photos)


def add_note(
    session: Session,
    case: Case,
    actor: Actor,
    kind: str,
    now: datetime,
    payload: dict[str, Any],
    photos: list[Any] | None = None,
) -> None:
    """A timeline line that does not move the state: the sweep's warnings and overdue marks,
    a repeated sensor alarm, a duplicate report attached to the case. Same hash chain as
    transitions; `kind` must not be one of the table's actions."""
    engine.add_note(CASE_FLOW, session, case, actor, kind, now, payload, photos)


def record_clock_event(
    session: Session, case: Case, kind: str, now: datetime, payload: dict[str, Any]
) -> None:
    """The sweep's warnings and overdue marks."""
    add_note(session, case, SYSTEM, kind, now, payload)


# -- effects: what each action does besides moving the state -----------------------------------
def _positive_number(payload: dict[str, Any], name: str, maximum: float) -> float:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= maximum:
        raise ValidationFailed(
            f"{name} must be a number above 0 and at most {maximum:g}", field=name
        )
    return float(value)


def _boolean(payload: dict[str, Any], name: str) -> bool:
    value = payload.get(name)
    if not isinstance(value, bool):
        raise ValidationFailed(f"{name} must be true or false", field=name)
    return value


def _department(
    session: Session, payload: dict[str, Any], name: str = "department_id"
) -> Department:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(f"{name} must be a department id", field=name)
    department = session.get(Department, value)
    if department is None:
        raise ValidationFailed(f"department {value} does not exist", field=name)
    return department


def _handling_due(ctx: ActionContext, start: datetime) -> datetime:
    problem_class = find_class(ctx.session, ctx.case.class_code)
    assert problem_class is not None
    return ctx.calendar.add_working_days(start, handling_days(problem_class, ctx.case.urgency))


def _receive(ctx: ActionContext, department: Department) -> None:
    ctx.case.department_id = department.id
    ctx.case.received_at = ctx.now
    ctx.notes["department_id"] = department.id
    ctx.notes["department_name"] = department.name


def _effect_verify(ctx: ActionContext) -> str | None:
    _boolean(ctx.payload, "confirmed")
    return None


def _effect_unmerge(ctx: ActionContext) -> str | None:
    target = ctx.session.get(Case, ctx.case.merged_into_id) if ctx.case.merged_into_id else None
    if target is not None:
        add_note(
            ctx.session,
            target,
            ctx.actor,
            "duplicate_detached",
            ctx.now,
            {"ticket": ctx.case.ticket, "case_id": ctx.case.id},
        )
        ctx.notes["from_ticket"] = target.ticket
    ctx.case.merged_into_id = None
    return None


def _effect_file(ctx: ActionContext) -> str | None:
    urgency = ctx.payload.get("urgency")
    if urgency is not None:
        if urgency not in URGENCIES:
            raise ValidationFailed("urgency must be A, B or C", field="urgency")
        ctx.case.urgency = urgency
    class_code = ctx.payload.get("class_code")
    if class_code is not None:
        problem_class = get_class(ctx.session, str(class_code))
        ctx.case.class_code, ctx.case.kind = problem_class.code, problem_class.kind
    ctx.case.class_confirmed = True
    ctx.case.filed_at = ctx.now
    return None


def _effect_merge(ctx: ActionContext) -> str | None:
    into = ctx.payload.get("into_case_id")
    if isinstance(into, bool) or not isinstance(into, int):
        raise ValidationFailed("into_case_id must be a case id", field="into_case_id")
    if into == ctx.case.id:
        raise ValidationFailed("a case cannot be merged into itself", field="into_case_id")
    target = ctx.session.get(Case, into)
    if target is None or target.state not in OPEN_STATES:
        raise ValidationFailed(
            f"case {into} is not an open case to merge into", field="into_case_id"
        )
    ctx.case.merged_into_id = target.id
    ctx.notes["into_ticket"] = target.ticket
    return None


def _effect_dispatch(ctx: ActionContext) -> str | None:
    case = ctx.case
    department: Department | None
    if "department_id" in ctx.payload and ctx.payload["department_id"] is not None:
        department = _department(ctx.session, ctx.payload)
    else:
        department = suggested_department(ctx.session, case)
        if department is None:
            raise ValidationFailed(
                f"no responsibility rule names a department for class {case.class_code} here; "
                "choose department_id",
                field="department_id",
            )
    urgency = ctx.payload.get("urgency")
    if urgency is not None:
        if urgency not in URGENCIES:
            raise ValidationFailed("urgency must be A, B or C", field="urgency")
        case.urgency = urgency
    _receive(ctx, department)
    case.due_at = _handling_due(ctx, ctx.now)
    ctx.notes["due_at"] = case.due_at.isoformat()
    return None


def _effect_pass_down(ctx: ActionContext) -> str | None:
    department = _department(ctx.session, ctx.payload)
    current = ctx.case.department_id
    if (
        current is None
        or department.id == current
        or department.id not in descendant_ids(ctx.session, current)
    ):
        raise ValidationFailed(
            f"{department.name} is not a unit below the department holding the case",
            field="department_id",
        )
    _receive(ctx, department)
    return None


def _effect_return(ctx: ActionContext) -> str | None:
    ctx.notes["returned_by_department_id"] = ctx.case.department_id
    ctx.case.department_id = None
    ctx.case.received_at = None
    ctx.case.due_at = None
    return None


def _effect_request_postpone(ctx: ActionContext) -> str | None:
    days = _positive_number(ctx.payload, "days", 60)
    ctx.case.postpone_request = {
        "days": days,
        "reason": ctx.payload["reason"],
        "requested_at": ctx.now.isoformat(),
        "by": ctx.actor.name,
    }
    return None


def _effect_approve_postpone(ctx: ActionContext) -> str | None:
    case = ctx.case
    request = case.postpone_request or {}
    days = float(request["days"])
    previous = case.due_at or ctx.now
    case.due_at = ctx.calendar.add_working_days(previous, days)
    case.stage_due_at = case.due_at
    case.warned_stage = case.overdue_stage = None
    case.postpone_request = None
    ctx.notes.update(
        {"days": days, "previous_due_at": previous.isoformat(), "due_at": case.due_at.isoformat()}
    )
    return None


def _effect_refuse_postpone(ctx: ActionContext) -> str | None:
    ctx.notes["refused_days"] = (ctx.case.postpone_request or {}).get("days")
    ctx.case.postpone_request = None
    return None


def _effect_assign_proxy(ctx: ActionContext) -> str | None:
    department = _department(ctx.session, ctx.payload)
    if department.id == ctx.case.department_id:
        raise ValidationFailed("the proxy must be another department", field="department_id")
    ctx.notes["owner_department_id"] = ctx.case.department_id
    _receive(ctx, department)
    return None


def _effect_suspend(ctx: ActionContext) -> str | None:
    case = ctx.case
    case.suspended_from = case.state
    if case.due_at is not None and case.state == "dispatched":
        case.suspended_remaining_minutes = ctx.calendar.working_minutes_between(
            ctx.now, case.due_at
        )
    return None


def _effect_resume(ctx: ActionContext) -> str | None:
    case = ctx.case
    target = case.suspended_from or "filed"
    if case.suspended_remaining_minutes is not None:
        case.due_at = ctx.calendar.add_working_minutes(
            ctx.now, max(case.suspended_remaining_minutes, 0.0)
        )
        ctx.notes["due_at"] = case.due_at.isoformat()
    case.suspended_from = None
    case.suspended_remaining_minutes = None
    return target


def _effect_submit_result(ctx: ActionContext) -> str | None:
    method = ctx.payload.get("method")
    if method not in METHODS_721:
        raise ValidationFailed(
            "method must be service, management or enforcement (the 721 share)", field="method"
        )
    ctx.case.result_method = str(method)
    ctx.case.check_passed = None
    return None


def _effect_report_check(ctx: ActionContext) -> str | None:
    ctx.case.check_passed = _boolean(ctx.payload, "passed")
    return None


def _effect_close(ctx: ActionContext) -> str | None:
    ctx.case.closed_at = ctx.now
    if ctx.case.due_at is not None:
        ctx.notes["on_time"] = ctx.now <= ctx.case.due_at
    return None


def _reopen(ctx: ActionContext) -> None:
    case = ctx.case
    case.received_at = ctx.now
    case.due_at = _handling_due(ctx, ctx.now)
    case.check_passed = None
    case.closed_at = None
    ctx.notes["due_at"] = case.due_at.isoformat()
    ctx.notes["department_id"] = case.department_id


def _effect_rework(ctx: ActionContext) -> str | None:
    ctx.case.rework_count += 1
    _reopen(ctx)
    return None


def _effect_return_visit(ctx: ActionContext) -> str | None:
    satisfied = _boolean(ctx.payload, "satisfied")
    ctx.case.satisfied = satisfied
    if not satisfied:
        _reopen(ctx)
        return "dispatched"
    return "archived"


def _effect_open_enforcement(ctx: ActionContext) -> str | None:
    # Replaced by the enforcement package when it is loaded (register_effect).
    raise ValidationFailed("enforcement cases are not available here", field="action")


def _effect_enforcement_result(ctx: ActionContext) -> str | None:
    ctx.case.result_method = "enforcement"
    ctx.case.check_passed = None
    return None


def register_effect(action: str, effect: Callable[[ActionContext], str | None]) -> None:
    """A package above `cases` gives a row of the loop its effect (`open_enforcement` by
    enforcement), so that `cases` imports none of it."""
    if action not in TABLE.by_action:
        raise KeyError(action)
    EFFECTS[action] = effect


def follow_enforcement_clock(
    session: Session, case_id: int, due: datetime | None, now: datetime
) -> None:
    """The legal clock of the enforcement case a case waits on moved (立案: 90 days; 送达:
    the payment period): the case's own clock follows it and its timeline says so."""
    case = get_case(session, case_id, for_update=True)
    if case.state != "enforcing":
        return
    case.due_at = case.stage_due_at = due
    case.warned_stage = case.overdue_stage = None
    add_note(
        session,
        case,
        SYSTEM,
        "enforcement_clock",
        now,
        {"due_at": due.isoformat() if due else None},
    )


EFFECTS: dict[str, Callable[[ActionContext], str | None]] = {
    "open_enforcement": _effect_open_enforcement,
    "enforcement_result": _effect_enforcement_result,
    "verify": _effect_verify,
    "file": _effect_file,
    "merge": _effect_merge,
    "unmerge": _effect_unmerge,
    "dispatch": _effect_dispatch,
    "pass_down": _effect_pass_down,
    "return": _effect_return,
    "request_postpone": _effect_request_postpone,
    "approve_postpone": _effect_approve_postpone,
    "refuse_postpone": _effect_refuse_postpone,
    "assign_proxy": _effect_assign_proxy,
    "suspend": _effect_suspend,
    "resume": _effect_resume,
    "submit_result": _effect_submit_result,
    "report_check": _effect_report_check,
    "close": _effect_close,
    "rework": _effect_rework,
    "return_visit": _effect_return_visit,
}

CASE_FLOW = Flow(
    table=TABLE,
    timeline=TIMELINE,
    noun="case",
    load=_load,
    can_see=can_see,
    restart_clock=_restart_clock,
    effects=EFFECTS,
    scope_checks={SCOPE_DEPARTMENT: _department_scope, SCOPE_GRID: _grid_scope},
    clock_restarting=frozenset(_CLOCK_RESTARTING),
)


# -- reading ------------------------------------------------------------------------------------
def suggested_department(session: Session, case: Case) -> Department | None:
    """The asset's owner when the case is about a registered component, else the rules."""
    if case.component_id is not None:
        component = session.get(Component, case.component_id)
        if component is not None:
            owner = component.owner_department_id or component.managing_department_id
            if owner is not None:
                return session.get(Department, owner)
    places = [
        c for c in (case.district, case.street, case.community, case.resp_grid, case.unit_grid) if c
    ]
    return responsible_department(session, case.class_code, places)


def auto_route(session: Session, case: Case, *, now: datetime, calendar: WorkingCalendar) -> bool:
    """File and dispatch at once when ownership is beyond doubt: the case is about a registered
    component with an owner, or the most specific responsibility rule says auto_dispatch.
    The caller decides which reports are trusted enough to ask."""
    if case.state not in ("pending_filing", "filed"):
        return False
    department: Department | None = None
    if case.component_id is not None:
        department = suggested_department(session, case)
    else:
        places = [
            c
            for c in (case.district, case.street, case.community, case.resp_grid, case.unit_grid)
            if c
        ]
        rule = responsible_rule(session, case.class_code, places)
        if rule is not None and rule.auto_dispatch:
            department = session.get(Department, rule.department_id)
    if department is None:
        return False
    session.flush()
    # The case was born in this transaction: no one else can see it, so no lock to take.
    if case.state == "pending_filing":
        transition(
            session,
            case.id,
            "file",
            SYSTEM,
            {"automatic": True},
            now=now,
            calendar=calendar,
            held=case,
        )
    transition(
        session,
        case.id,
        "dispatch",
        SYSTEM,
        {"department_id": department.id, "automatic": True},
        now=now,
        calendar=calendar,
        held=case,
    )
    return True


def allowed_actions(
    session: Session, case: Case, actor: Actor, *, now: datetime, calendar: WorkingCalendar
) -> list[Transition]:
    """The rows this actor may take on this case now (the console's buttons)."""
    return engine.allowed(CASE_FLOW, session, case, actor, now=now, calendar=calendar)


def deadlines(
    session: Session, case: Case, *, now: datetime, calendar: WorkingCalendar
) -> list[dict[str, Any]]:
    """The running stage clock and the handling deadline, each with its traffic light."""
    clocks: list[dict[str, Any]] = []
    end = case.closed_at or now
    if case.stage and case.stage_started_at and case.stage_due_at and case.state in OPEN_STATES:
        clocks.append(_clock(case.stage, case.stage_started_at, case.stage_due_at, now, calendar))
    if (
        case.due_at is not None
        and case.received_at is not None
        and case.stage != "handle"
        and case.state != "suspended"
    ):
        handle = _clock("handle", case.received_at, case.due_at, end, calendar)
        clocks.append(handle)
    return clocks


def _clock(
    stage: str, started: datetime, due: datetime, now: datetime, calendar: WorkingCalendar
) -> dict[str, Any]:
    limit = calendar.working_minutes_between(started, due)
    elapsed = calendar.working_minutes_between(started, now)
    return {
        "stage": stage,
        "label": STAGE_LABELS.get(stage, stage),
        "started_at": started,
        "due_at": due,
        "limit_working_minutes": round(limit, 1),
        "elapsed_working_minutes": round(elapsed, 1),
        "light": traffic_light(elapsed, limit),
        "overdue": now > due,
    }


def timeline(session: Session, case_id: int) -> list[CaseEvent]:
    return list(
        session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq)
        )
    )


@dataclass
class CaseFilters:
    state: str | None = None
    source: str | None = None
    class_code: str | None = None
    district: str | None = None
    street: str | None = None
    community: str | None = None
    department_id: int | None = None
    urgency: str | None = None
    ticket: str | None = None
    overdue: bool | None = None


def list_cases(
    session: Session,
    actor: Actor,
    filters: CaseFilters,
    *,
    page: int,
    page_size: int,
    now: datetime,
) -> tuple[list[Case], int]:
    query = select(Case)
    if actor.role == "handler":
        if actor.department_id is None:
            return [], 0
        query = query.where(Case.department_id.in_(descendant_ids(session, actor.department_id)))
    elif actor.role == "inspector":
        if not actor.grid_codes:
            return [], 0
        query = query.where(
            or_(
                *[
                    or_(
                        Case.resp_grid.startswith(code),
                        Case.unit_grid.startswith(code),
                        Case.community.startswith(code),
                        Case.street.startswith(code),
                    )
                    for code in actor.grid_codes
                ]
            )
        )
    for name in (
        "state",
        "source",
        "class_code",
        "district",
        "street",
        "community",
        "department_id",
        "urgency",
        "ticket",
    ):
        value = getattr(filters, name)
        if value is not None:
            query = query.where(getattr(Case, name) == value)
    if filters.overdue is True:
        query = query.where(Case.state.in_(OPEN_STATES), Case.stage_due_at < now)
    elif filters.overdue is False:
        query = query.where(or_(Case.stage_due_at.is_(None), Case.stage_due_at >= now))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = session.scalars(
        query.order_by(Case.created_at.desc(), Case.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return list(items), total


def inspectors_for(session: Session, case: Case) -> list[User]:
    inspectors = session.scalars(select(User).where(User.role == "inspector", User.active)).all()
    return [u for u in inspectors if in_grid(Actor.of(u), case)]
