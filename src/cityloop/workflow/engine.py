"""The engine: takes one row of any flow's table on one record.

In one transaction (owned by the caller) `run()` locks the record, checks the version, the
row (role, state, scope, payload, guards), applies the row's effect, restarts the stage clock,
appends a hash-chained timeline line, announces the step and flushes once; a concurrent writer
loses with a Conflict (409). It is the only writer of a flow's `state`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from cityloop.errors import Conflict, Forbidden, NotFound, ValidationFailed
from cityloop.events import DomainEvent, publish
from cityloop.kit.calendar import WorkingCalendar
from cityloop.media.service import missing_media
from cityloop.workflow import timeline as chain
from cityloop.workflow.actors import Actor
from cityloop.workflow.flow import SAME, Flow, Transition


@dataclass
class ActionContext:
    """What a guard and an effect see. `case` is the record the flow runs on (a case of the
    loop, an enforcement case)."""

    session: Session
    case: Any
    actor: Actor
    payload: dict[str, Any]
    now: datetime
    calendar: WorkingCalendar
    notes: dict[str, Any] = field(default_factory=dict)
    # Set by the engine once the timeline line is written (documents cite it).
    event_hash: str | None = None


def run(
    flow: Flow,
    session: Session,
    record_id: int,
    action: str,
    actor: Actor,
    payload: dict[str, Any] | None = None,
    *,
    now: datetime,
    calendar: WorkingCalendar,
    expected_version: int | None = None,
    held: Any = None,
) -> Any:
    """Take one row of `flow` on a record. `held` is the record when this transaction made
    it: it is not read again, nor written before the transaction ends."""
    row = flow.table.by_action.get(action)
    if row is None:
        raise NotFound(f"unknown action {action!r}")
    record = held if held is not None and held.id == record_id else None
    if record is None:
        record = flow.load(session, record_id, True)
    if not flow.can_see(session, actor, record):
        raise NotFound(f"{flow.noun} {record_id} not found")
    if expected_version is not None and expected_version != record.version:
        raise Conflict(
            f"the {flow.noun} has changed since you loaded it (version {record.version}, "
            f"you sent {expected_version}); reload and try again",
            field="version",
        )
    ctx = ActionContext(session, record, actor, dict(payload or {}), now, calendar)
    # One flush at the end: the record's row is written once per action, version + 1.
    with session.no_autoflush:
        refusal = refusal_of(flow, ctx, row)
        if refusal is not None:
            raise refusal
        check_payload(row, ctx.payload)
        if flow.payload_check is not None:
            flow.payload_check(row, ctx.payload)
        check_media(session, ctx.payload.get("photos"))
        from_state = record.state
        target = row.target_for(ctx.payload)
        if target == SAME:
            target = from_state
        effect = flow.effects.get(action)
        if effect is not None:
            chosen = effect(ctx)
            if chosen is not None:
                target = chosen
        record.state = target
        record.updated_at = now
        if target != from_state or action in flow.clock_restarting:
            flow.restart_clock(session, record, now, calendar)
        photos = ctx.payload.pop("photos", []) or []
        event_payload = {**ctx.payload, **ctx.notes}
        ctx.event_hash = chain.append(
            session,
            flow.timeline,
            record,
            actor,
            action,
            from_state,
            target,
            now,
            event_payload,
            photos,
        )
        announce(
            session,
            DomainEvent(
                flow=flow.table.name,
                record_id=record.id,
                action=action,
                from_state=from_state,
                to_state=target,
                actor_name=actor.name,
                actor_role=actor.role,
                at=now,
                actor_id=actor.user_id,
                payload=event_payload,
                record=record,
            ),
        )
    if record is held:
        # This transaction made the record, so no one else can write it: its row is written
        # once, when the caller's transaction ends, however many actions it takes meanwhile.
        return record
    try:
        session.flush()
    except (StaleDataError, IntegrityError) as exc:
        raise Conflict(
            f"another action on this {flow.noun} was saved first; reload and try again"
        ) from exc
    return record


def announce(session: Session, event: DomainEvent) -> None:
    """The one place a step of any flow is announced: after its timeline line is written, in
    the same transaction, to the event stream's subscribers (partner pushes, notifications,
    webhooks…, registered at start-up by `cityloop.listeners`). The flows know no listener."""
    publish(session, event)


def refusal_of(flow: Flow, ctx: ActionContext, row: Transition) -> Exception | None:
    """Why this actor may not take this row now (None when they may)."""
    actor, record = ctx.actor, ctx.case
    if actor.role != "admin" and actor.role not in row.roles:
        return Forbidden(f"the role {actor.role} may not {row.action} ({row.label})")
    if record.state not in row.sources:
        return Conflict(
            f"{row.label} ({row.action}) is not allowed while the {flow.noun} is "
            f"{flow.table.state_label(record.state)} ({record.state})",
            field="action",
        )
    if actor.role != "admin":
        scope_check = flow.scope_checks.get(row.scope)
        if scope_check is not None:
            reason = scope_check(ctx)
            if reason is not None:
                return Forbidden(reason)
    for guard in row.guards:
        reason = guard(ctx)
        if reason is not None:
            return Conflict(reason, field="action")
    return None


def check_payload(row: Transition, payload: dict[str, Any]) -> None:
    for name in row.required:
        value = payload.get(name)
        if value is None or (isinstance(value, str | list) and len(value) == 0):
            raise ValidationFailed(f"{name} is required for {row.action} ({row.label})", field=name)
    photos = payload.get("photos")
    if photos is not None and (
        not isinstance(photos, list) or not all(isinstance(p, str) and p for p in photos)
    ):
        raise ValidationFailed("photos must be a list of photo references", field="photos")
    for text_field in ("reason", "note", "result"):
        value = payload.get(text_field)
        if value is not None and not isinstance(value, str):
            raise ValidationFailed(f"{text_field} must be text", field=text_field)


def check_media(session: Session, photos: list[str] | None, field: str = "photos") -> None:
    missing = missing_media(session, list(photos or []))
    if missing:
        raise ValidationFailed(
            f"media {', '.join(missing)} were not uploaded: POST /api/v1/media first",
            field=field,
        )


def allowed(
    flow: Flow,
    session: Session,
    record: Any,
    actor: Actor,
    *,
    now: datetime,
    calendar: WorkingCalendar,
) -> list[Transition]:
    """The rows this actor may take on this record now (the console's buttons)."""
    result = []
    for row in flow.table.actions_from.get(record.state, []):
        ctx = ActionContext(session, record, actor, {}, now, calendar)
        if refusal_of(flow, ctx, row) is None:
            result.append(row)
    return result


def add_note(
    flow: Flow,
    session: Session,
    record: Any,
    actor: Actor,
    kind: str,
    now: datetime,
    payload: dict[str, Any],
    photos: list[Any] | None = None,
) -> str:
    """A timeline line that does not move the state (clock warnings, attached evidence, a
    duplicate report). Same hash chain as the rows; `kind` must not be one of the actions."""
    if kind in flow.table.by_action:
        raise ValueError(f"{kind} is an action of the {flow.name} flow: use the engine's run()")
    record.updated_at = now
    return chain.append(
        session,
        flow.timeline,
        record,
        actor,
        kind,
        record.state,
        record.state,
        now,
        payload,
        list(photos or []),
    )
