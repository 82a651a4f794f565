"""The hash chain over each case's timeline, and the check that finds a changed row (R-CL-5)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityloop.cases.models import CaseEvent

GENESIS = "0" * 64


def event_digest(prev_hash: str, fields: dict[str, Any]) -> str:
    body = json.dumps(
        fields, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def hashed_fields(event: CaseEvent) -> dict[str, Any]:
    """What the hash covers of a stored timeline line."""
    return hashed_values({key: getattr(event, key) for key in _HASHED_COLUMNS})


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


@dataclass(frozen=True)
class AuditFinding:
    case_id: int
    seq: int
    event_id: int
    problem: str


def verify_audit(session: Session, batch: int = 5000) -> tuple[int, list[AuditFinding]]:
    """Recompute every chain; returns (events checked, findings)."""
    findings: list[AuditFinding] = []
    checked = 0
    last_case: int | None = None
    expected_prev = GENESIS
    expected_seq = 1
    query = (
        select(CaseEvent)
        .order_by(CaseEvent.case_id, CaseEvent.seq)
        .execution_options(yield_per=batch)
    )
    for event in session.scalars(query):
        if event.case_id != last_case:
            last_case, expected_prev, expected_seq = event.case_id, GENESIS, 1
        checked += 1
        if event.seq != expected_seq:
            findings.append(
                AuditFinding(event.case_id, event.seq, event.id, "missing event before this one")
            )
        if event.prev_hash != expected_prev:
            findings.append(
                AuditFinding(
                    event.case_id, event.seq, event.id, "chain broken: previous hash differs"
                )
            )
        if event_digest(event.prev_hash, hashed_fields(event)) != event.hash:
            findings.append(
                AuditFinding(
                    event.case_id,
                    event.seq,
                    event.id,
                    "row changed: hash does not match its content",
                )
            )
        expected_prev = event.hash
        expected_seq = event.seq + 1
    return checked, findings
