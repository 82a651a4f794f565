"""The hash chain every flow's timeline is written with, and the check that finds a changed
row (R-CL-5; 行政处罚法 art. 47, 全过程记录).

A timeline is a table with the same columns in every flow (`case_id` is the id of the record
the flow runs on, `seq` counts from 1 per record); each row carries the hash of the previous
row of its record, so a row changed, removed or inserted behind the application's back is
found by `verify_all`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import JSON, ForeignKey, Insert, Integer, String, Table, event, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from cityloop.db import UtcDateTime
from cityloop.workflow.actors import Actor

GENESIS = "0" * 64


def event_digest(prev_hash: str, fields: dict[str, Any]) -> str:
    body = json.dumps(
        fields, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_HASHED_COLUMNS = (
    "case_id",
    "seq",
    "at",
    "actor_id",
    "actor_name",
    "actor_role",
    "action",
    "from_state",
    "to_state",
    "department_id",
    "payload",
    "photos",
)


def hashed_values(row: Mapping[str, Any]) -> dict[str, Any]:
    """What the hash covers of a timeline row (its column values by name)."""
    return {
        "case_id": row["case_id"],
        "seq": row["seq"],
        "at": _iso(row["at"]),
        "actor_id": row["actor_id"],
        "actor_name": row["actor_name"],
        "actor_role": row["actor_role"],
        "action": row["action"],
        "from": row["from_state"],
        "to": row["to_state"],
        "department_id": row["department_id"],
        "payload": row["payload"],
        "photos": row["photos"],
    }


def hashed_fields(event: Any) -> dict[str, Any]:
    """What the hash covers of a stored timeline line."""
    return hashed_values({key: getattr(event, key) for key in _HASHED_COLUMNS})


class TimelineColumns:
    """The columns every flow's timeline table has, declared once (a flow's model adds its
    `id`, the `case_id` of the record it runs on and the `department_id` of the unit holding
    it, whose foreign keys differ). `register()` checks a model has them all."""

    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    actor_name: Mapped[str] = mapped_column(String(60))
    actor_role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(24), index=True)
    from_state: Mapped[str | None] = mapped_column(String(20), default=None)
    to_state: Mapped[str] = mapped_column(String(20))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    photos: Mapped[list[Any]] = mapped_column(JSON, default=list)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


@dataclass(frozen=True)
class Timeline:
    """One flow's timeline table (an ORM model with the timeline columns)."""

    name: str
    model: Any
    table: Table
    insert: Insert


TIMELINES: dict[str, Timeline] = {}


def register(name: str, model: Any) -> Timeline:
    table = cast(Table, model.__table__)
    missing = {*_HASHED_COLUMNS, "prev_hash", "hash"} - set(table.columns.keys())
    if missing:
        raise TypeError(f"timeline {name}: the table lacks {sorted(missing)}")
    timeline = Timeline(name, model, table, insert(table))
    TIMELINES[name] = timeline
    return timeline


_CHAIN_KEY = "cityloop_last_event"


@event.listens_for(Session, "after_soft_rollback")
def _forget_chain(session: Session, previous_transaction: Any) -> None:
    # A rolled-back append (a savepoint, a failed request) must not be chained to.
    session.info.pop(_CHAIN_KEY, None)


@event.listens_for(Session, "after_commit")
def _forget_chain_after_commit(session: Session) -> None:
    # Once committed, other transactions may append: the next one reads the chain again.
    session.info.pop(_CHAIN_KEY, None)


def append(
    session: Session,
    timeline: Timeline,
    record: Any,
    actor: Actor,
    action: str,
    from_state: str | None,
    to_state: str,
    now: datetime,
    payload: dict[str, Any],
    photos: list[Any],
) -> str:
    """Append one line to a record's timeline; returns its hash."""
    # The chain's last link: remembered from this session's own append (the record's row is
    # held by this transaction from its first action on, so no one else appends meanwhile),
    # else read. A new record (from_state None) has no events to chain to yet.
    chains: dict[str, dict[int, tuple[int, str]]] = session.info.setdefault(_CHAIN_KEY, {})
    chain = chains.get(timeline.name)
    if chain is None:
        chain = chains[timeline.name] = {}
    last: Any = None
    if from_state is not None:
        model = timeline.model
        last = (
            chain.get(record.id)
            or session.execute(
                select(model.seq, model.hash)
                .where(model.case_id == record.id)
                .order_by(model.seq.desc())
                .limit(1)
            ).first()
        )
    seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS)
    row: dict[str, Any] = {
        "case_id": record.id,
        "seq": seq,
        "at": now,
        "actor_id": actor.user_id,
        "actor_name": actor.name,
        "actor_role": actor.role,
        "action": action,
        "from_state": from_state,
        "to_state": to_state,
        "department_id": record.department_id,
        "payload": payload,
        "photos": photos,
        "prev_hash": prev_hash,
    }
    row["hash"] = digest = event_digest(prev_hash, hashed_values(row))
    # Written at once as a plain row: timeline rows are never updated, so they need none of
    # the unit of work's bookkeeping (a third of a report's cost when they went through it).
    session.execute(timeline.insert, row)
    chain[record.id] = (seq, digest)
    return digest


def events_of(session: Session, timeline: Timeline, record_id: int) -> list[Any]:
    model = timeline.model
    return list(
        session.scalars(select(model).where(model.case_id == record_id).order_by(model.seq))
    )


@dataclass(frozen=True)
class AuditFinding:
    case_id: int
    seq: int
    event_id: int
    problem: str
    flow: str = "case"


def verify(
    session: Session, timeline: Timeline, batch: int = 5000
) -> tuple[int, list[AuditFinding]]:
    """Recompute every chain of one timeline; returns (events checked, findings)."""
    findings: list[AuditFinding] = []
    checked = 0
    last_record: int | None = None
    expected_prev = GENESIS
    expected_seq = 1
    model = timeline.model
    name = timeline.name
    query = select(model).order_by(model.case_id, model.seq).execution_options(yield_per=batch)
    for row in session.scalars(query):
        if row.case_id != last_record:
            last_record, expected_prev, expected_seq = row.case_id, GENESIS, 1
        checked += 1
        if row.seq != expected_seq:
            findings.append(
                AuditFinding(row.case_id, row.seq, row.id, "missing event before this one", name)
            )
        if row.prev_hash != expected_prev:
            findings.append(
                AuditFinding(
                    row.case_id, row.seq, row.id, "chain broken: previous hash differs", name
                )
            )
        if event_digest(row.prev_hash, hashed_fields(row)) != row.hash:
            findings.append(
                AuditFinding(
                    row.case_id,
                    row.seq,
                    row.id,
                    "row changed: hash does not match its content",
                    name,
                )
            )
        expected_prev = row.hash
        expected_seq = row.seq + 1
    return checked, findings


def verify_all(session: Session, batch: int = 5000) -> tuple[int, list[AuditFinding]]:
    """Every registered flow's timeline (`cityloop verify-audit`)."""
    checked = 0
    findings: list[AuditFinding] = []
    for timeline in TIMELINES.values():
        n, found = verify(session, timeline, batch)
        checked += n
        findings.extend(found)
    return checked, findings
