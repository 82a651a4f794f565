"""The hash chain over each case's timeline, and the check that finds a changed row (R-CL-5).

The chain is the workflow engine's (`workflow.timeline`), one mechanism for every flow; these
names stay here for the callers that check the case loop's timeline.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from cityloop.workflow.timeline import GENESIS as GENESIS
from cityloop.workflow.timeline import AuditFinding as AuditFinding
from cityloop.workflow.timeline import event_digest as event_digest
from cityloop.workflow.timeline import hashed_fields as hashed_fields
from cityloop.workflow.timeline import hashed_values as hashed_values
from cityloop.workflow.timeline import verify_all


def verify_audit(session: Session, batch: int = 5000) -> tuple[int, list[AuditFinding]]:
    """Recompute every chain of every flow (the case loop's and the enforcement cases');
    returns (events checked, findings)."""
    return verify_all(session, batch)
