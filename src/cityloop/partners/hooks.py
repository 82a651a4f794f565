"""The partner status push as a subscriber of the event stream (`cityloop.events`),
registered at start-up by `cityloop.listeners`.

It must cost nothing for ordinary cases: one attribute test, no query, no import of the
partner services at load time.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from cityloop.cases.models import Case
    from cityloop.events import DomainEvent

# The sources a partner's key reports under (a subset of intake.service.SOURCES); a partner
# row can only be created with one of these, so every partner-born case carries one.
PARTNER_SOURCES = frozenset({"partner_12345", "partner_110", "public_safety", "open311"})


def case_changed(
    session: Session,
    case: Case,
    action: str,
    from_state: str | None,
    payload: dict[str, Any],
    now: datetime,
) -> None:
    """Queue a status push to the partner a case came from, if it has a webhook."""
    if case.source not in PARTNER_SOURCES:
        return
    from cityloop.partners.service import push_status

    push_status(session, case, action, from_state, payload, now)


def on_event(session: Session, event: DomainEvent) -> None:
    """The stream's subscriber: transitions of a partner-born case are pushed to it (a case
    born, and the clock's marks, are not status changes the partner is told of)."""
    case = event.record
    if event.flow != "case" or case is None or event.from_state is None:
        return
    if event.action.startswith("clock_"):
        return
    case_changed(session, case, event.action, event.from_state, event.payload, event.at)
