"""One pass of the clock sweep. The caller commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityloop.cases.models import Case
from cityloop.cases.service import SYSTEM, record_clock_event, transition
from cityloop.cases.states import OPEN_STATES, STAGE_LABELS
from cityloop.events import DomainEvent, publish
from cityloop.kit.calendar import WorkingCalendar


@dataclass
class SweepResult:
    examined: int = 0
    warnings: int = 0
    overdue: int = 0
    urged: int = 0


def sweep(
    session: Session, *, now: datetime, calendar: WorkingCalendar, batch: int = 500
) -> SweepResult:
    result = SweepResult()
    query = (
        select(Case)
        .where(
            Case.state.in_(OPEN_STATES),
            Case.stage_due_at.is_not(None),
            Case.overdue_stage.is_(None),
        )
        .order_by(Case.stage_due_at)
        .limit(batch)
        # Several workers may sweep at once on PostgreSQL: each takes different rows.
        .with_for_update(skip_locked=True)
    )
    for case in session.scalars(query).all():
        result.examined += 1
        if case.stage is None or case.stage_started_at is None or case.stage_due_at is None:
            continue
        stage = case.stage
        label = STAGE_LABELS.get(stage, stage)
        if now > case.stage_due_at:
            case.overdue_stage = stage
            case.warned_stage = stage
            overdue = {
                "stage": stage,
                "due_at": case.stage_due_at.isoformat(),
                "note": f"{label}超期",
            }
            record_clock_event(session, case, "clock_overdue", now, overdue)
            _publish(session, case, "clock_overdue", now, {**overdue, "light": "red"})
            result.overdue += 1
            if case.state == "dispatched":
                session.flush()
                transition(
                    session,
                    case.id,
                    "urge",
                    SYSTEM,
                    {"note": f"{label}已超过期限，系统自动催办", "automatic": True},
                    now=now,
                    calendar=calendar,
                )
                result.urged += 1
            continue
        if case.warned_stage == stage:
            continue
        limit = calendar.working_minutes_between(case.stage_started_at, case.stage_due_at)
        elapsed = calendar.working_minutes_between(case.stage_started_at, now)
        if limit > 0 and elapsed / limit >= 0.8:
            case.warned_stage = stage
            warning = {
                "stage": stage,
                "due_at": case.stage_due_at.isoformat(),
                "note": f"{label}即将到期 (已用{elapsed / limit:.0%})",
            }
            record_clock_event(session, case, "clock_warning", now, warning)
            _publish(session, case, "clock_warning", now, {**warning, "light": "yellow"})
            result.warnings += 1
    session.flush()
    return result


def _publish(
    session: Session, case: Case, kind: str, now: datetime, payload: dict[str, object]
) -> None:
    # The clock's marks are events of the case's flow too: the holder is told its deadline
    # turned yellow or red (the automatic urging is published by transition()).
    publish(
        session,
        DomainEvent(
            flow="case",
            record_id=case.id,
            action=kind,
            from_state=case.state,
            to_state=case.state,
            actor_name=SYSTEM.name,
            actor_role=SYSTEM.role,
            at=now,
            payload=dict(payload),
            record=case,
        ),
    )
