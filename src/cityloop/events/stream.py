"""DomainEvent, subscribe() and publish(). Importing no domain package: every flow sits
above this module."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class DomainEvent:
    """One step of a flow. ``record`` is the flow's row as this transaction holds it (a
    `Case`), handed on so that subscribers need not read it again; it is not part of what
    the event says, and it is never serialised."""

    flow: str  # "case"; "enforcement" later
    record_id: int
    action: str  # a transition-table action, or a clock kind (clock_warning, clock_overdue)
    from_state: str | None
    to_state: str | None
    actor_name: str
    actor_role: str
    at: datetime
    actor_id: int | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    record: Any = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "flow": self.flow,
            "record_id": self.record_id,
            "action": self.action,
            "from_state": self.from_state,
            "to_state": self.to_state,
            "actor": {"id": self.actor_id, "name": self.actor_name, "role": self.actor_role},
            "payload": self.payload,
            "at": self.at.isoformat(),
        }


Subscriber = Callable[[Session, DomainEvent], None]

_SUBSCRIBERS: list[tuple[str, Subscriber]] = []


def subscribe(name: str, subscriber: Subscriber) -> None:
    """Register a subscriber once under ``name`` (registering the same name again replaces
    it, so composition code may run more than once per process)."""
    for index, (existing, _) in enumerate(_SUBSCRIBERS):
        if existing == name:
            _SUBSCRIBERS[index] = (name, subscriber)
            return
    _SUBSCRIBERS.append((name, subscriber))


def subscribers() -> list[str]:
    return [name for name, _ in _SUBSCRIBERS]


def clear() -> None:
    """Forget every subscriber (the benchmark's run without listeners)."""
    _SUBSCRIBERS.clear()


def publish(session: Session, event: DomainEvent) -> None:
    """Hand the event to every subscriber, in registration order, inside the caller's
    transaction. A subscriber's error undoes the step: a listener that cannot write its rows
    must not let the step commit without them."""
    for _name, subscriber in _SUBSCRIBERS:
        subscriber(session, event)
