"""What one case's timeline says, as rows the indicators count (pure: no database).

`derive()` reads a case's events in order and writes down, for each event, the stage it
ended, how long that stage took in working minutes and whether it ended within its limit
(the stage limits of `taxonomy.service.stage_limits`; the handling stage against the deadline
recorded in the dispatch / rework / postponement events), the department it counts against,
and the handling deadlines the case was under (`holds`). Everything the evaluation and the
analytics count is a query over these rows, and these rows are a function of the timeline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cityloop.cases.states import STATE_STAGE
from cityloop.evaluation.worktime import WorkTime

# Timeline lines written by the clock sweep: their payload names the stage.
CLOCK_NOTES = frozenset({"clock_warning", "clock_overdue"})
# Actions after which a (new) handling deadline is in force; the payload carries `due_at`
# for all but pass_down and assign_proxy, which hand the same deadline to another unit.
HOLD_OPENERS = frozenset(
    {"dispatch", "pass_down", "assign_proxy", "rework", "approve_postpone", "resume"}
)
DEFAULT_STAGE_MINUTES = 60

DIMENSIONS = ("source", "class_code", "district", "street", "community", "resp_grid", "unit_grid")
# The acceptance decisions of the desk (受理): a person's first one on a case counts it once.
ACCEPTANCE = frozenset({"send_to_verify", "file", "reject", "merge"})
ACCEPTANCE_FROM = frozenset({"reported", "pending_filing", "verifying"})


def month_of(value: datetime | None, tz: Any) -> int | None:
    """yyyymm of an instant in the city's time zone (the rollups' month key)."""
    if value is None:
        return None
    local = value.astimezone(tz)
    return local.year * 100 + local.month


@dataclass(frozen=True)
class CaseDims:
    """The case's own attributes: where it is and what it is about."""

    case_id: int
    source: str
    class_code: str
    kind: str
    district: str
    street: str | None
    community: str | None
    resp_grid: str | None
    unit_grid: str | None
    h3_cell: str


@dataclass(frozen=True)
class EventRow:
    id: int
    case_id: int
    seq: int
    at: datetime
    action: str
    actor_id: int | None
    actor_role: str
    from_state: str | None
    to_state: str
    department_id: int | None
    payload: Mapping[str, Any]


@dataclass
class Derived:
    case: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    holds: list[dict[str, Any]] = field(default_factory=list)


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def derive(
    dims: CaseDims,
    events: Sequence[EventRow],
    *,
    worktime: WorkTime,
    limits: Mapping[str, int],
) -> Derived:
    """The fact rows of one case (events in timeline order)."""
    tz = worktime.tz
    where = {name: getattr(dims, name) for name in DIMENSIONS}
    case: dict[str, Any] = {
        "case_id": dims.case_id,
        "kind": dims.kind,
        "h3_cell": dims.h3_cell,
        **where,
        "reporter_id": None,
        "filed_at": None,
        "filed_by": None,
        "rejected_at": None,
        "merged_at": None,
        "voided_after_filing": False,
    }
    out = Derived(case)
    state: str | None = None
    entered: datetime | None = None
    due: datetime | None = None
    hold: dict[str, Any] | None = None
    last_submit: dict[str, Any] | None = None
    pending_submit: dict[str, Any] | None = None
    last_dispatch: dict[str, Any] | None = None
    department: int | None = None
    accepted_by: set[int] = set()

    def end_hold(event: EventRow) -> None:
        nonlocal hold
        if hold is not None:
            hold["ended_at"], hold["end_action"] = event.at, event.action
            hold = None

    def open_hold(event: EventRow) -> None:
        nonlocal hold
        end_hold(event)
        hold = {
            "case_id": dims.case_id,
            "department_id": event.department_id,
            "started_at": event.at,
            "ended_at": None,
            "end_action": None,
            "due_at": due,
            "submitted_at": None,
            "submitted_on_time": None,
            **where,
        }
        out.holds.append(hold)

    for index, event in enumerate(events):
        payload = event.payload or {}
        fact: dict[str, Any] = {
            "event_id": event.id,
            "case_id": dims.case_id,
            "seq": event.seq,
            "at": event.at,
            "local_day": event.at.astimezone(tz).date(),
            "month": month_of(event.at, tz),
            "entered_month": None,
            "first_by_actor": None,
            "action": event.action,
            "actor_id": event.actor_id,
            "actor_role": event.actor_role,
            "department_id": event.department_id,
            "from_state": event.from_state,
            "to_state": event.to_state,
            "stage": None,
            "stage_entered_at": None,
            "stage_deadline": None,
            "stage_minutes": None,
            "on_time": None,
            "flag": None,
            "handled_on_time": None,
            "method": None,
            "due_at": None,
            **where,
        }
        out.events.append(fact)
        department = event.department_id
        action = event.action

        if index == 0:  # the report: the case is born in its first state
            local = event.at.astimezone(tz)
            case.update(
                created_at=event.at,
                local_day=local.date(),
                local_hour=local.hour,
                local_weekday=local.weekday(),
                reporter_id=event.actor_id,
                born_state=event.to_state,
            )
            if event.to_state == "filed":
                case["filed_at"], case["filed_by"] = event.at, event.actor_id
            if event.to_state == "merged":
                case["merged_at"] = event.at
            state, entered = event.to_state, event.at
            continue

        if action in CLOCK_NOTES:
            fact["stage"] = payload.get("stage")
            fact["stage_deadline"] = _when(payload.get("due_at"))
            continue

        moves = event.to_state != event.from_state
        if moves:
            left = STATE_STAGE.get(event.from_state or "")
            if left is not None and entered is not None:
                if left == "handle":
                    deadline = due
                else:
                    minutes = limits.get(left, DEFAULT_STAGE_MINUTES)
                    deadline = worktime.deadline(entered, minutes)
                fact.update(
                    stage=left,
                    stage_entered_at=entered,
                    entered_month=month_of(entered, tz),
                    stage_deadline=deadline,
                    stage_minutes=round(worktime.minutes_between(entered, event.at), 3),
                    on_time=None if deadline is None else event.at <= deadline,
                )
        else:
            fact["stage"] = STATE_STAGE.get(state or "")

        if (
            action in ACCEPTANCE
            and event.from_state in ACCEPTANCE_FROM
            and event.actor_id is not None
        ):
            fact["first_by_actor"] = event.actor_id not in accepted_by
            accepted_by.add(event.actor_id)

        if action == "file":
            if case["filed_at"] is None:
                case["filed_at"], case["filed_by"] = event.at, event.actor_id
        elif action in ("reject", "merge"):
            case["rejected_at" if action == "reject" else "merged_at"] = event.at
            if case["filed_at"] is not None:
                case["voided_after_filing"] = True
        elif action == "unmerge":
            case["merged_at"] = None
        elif action == "return":
            returned_by = payload.get("returned_by_department_id")
            if isinstance(returned_by, int):
                fact["department_id"] = returned_by
            if last_dispatch is not None:
                last_dispatch["flag"] = True
                last_dispatch = None
            end_hold(event)
            due = None
        elif action == "suspend":
            end_hold(event)
            due = None
        elif action == "close":
            fact["flag"] = _bool(payload.get("on_time"))
            if last_submit is not None:
                fact["handled_on_time"] = last_submit["on_time"]
                fact["method"] = last_submit["method"]
            end_hold(event)
            due = None
            last_dispatch = None
        elif action == "submit_result":
            method = payload.get("method")
            fact["method"] = method if isinstance(method, str) else None
            on_time = None if due is None else event.at <= due
            last_submit = {"at": event.at, "on_time": on_time, "method": fact["method"]}
            if hold is not None and hold["submitted_at"] is None:
                hold["submitted_at"], hold["submitted_on_time"] = event.at, on_time
            pending_submit = fact
            last_dispatch = None
        elif action in ("approve_result", "send_back"):
            if pending_submit is not None:
                pending_submit["flag"] = action == "approve_result"
                pending_submit = None
        elif action == "refer_hearing":
            pending_submit = None
        elif action in ("verify", "report_check", "return_visit"):
            key = {"verify": "confirmed", "report_check": "passed", "return_visit": "satisfied"}
            fact["flag"] = _bool(payload.get(key[action]))

        reopened = action == "return_visit" and event.to_state == "dispatched"
        if action in HOLD_OPENERS or reopened:
            new_due = _when(payload.get("due_at"))
            if new_due is not None:
                due = new_due
            # A case resumed before it was ever dispatched has no deadline yet.
            if not (action == "resume" and new_due is None):
                if action == "rework" or reopened:
                    last_submit = None
                fact["due_at"] = due
                open_hold(event)
            if action == "dispatch":
                fact["flag"] = False
                last_dispatch = fact

        if moves:
            state, entered = event.to_state, event.at

    stage = STATE_STAGE.get(state or "")
    deadline = None
    if stage == "handle":
        deadline = due
    elif stage is not None and entered is not None:
        deadline = worktime.deadline(entered, limits.get(stage, DEFAULT_STAGE_MINUTES))
    case.update(
        created_month=month_of(case.get("created_at"), tz),
        filed_month=month_of(case["filed_at"], tz),
        state=state,
        state_at=entered,
        state_stage=stage,
        state_deadline=deadline,
        department_id=department,
        last_event_id=events[-1].id if events else 0,
    )
    return out
