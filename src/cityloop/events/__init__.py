"""The one event stream: every committed step of any flow (the case loop now, enforcement
later) is a `DomainEvent`, published inside the step's transaction to the subscribers
registered at start-up (`cityloop.listeners`). Subscribers only write rows (outbox, inbox) in
that transaction, so a rolled-back step tells no one and nothing leaves before commit.
The flows import no listener: they call `publish()`, and that is all they know."""

from cityloop.events.stream import (
    DomainEvent,
    Subscriber,
    clear,
    publish,
    subscribe,
    subscribers,
)

__all__ = ["DomainEvent", "Subscriber", "clear", "publish", "subscribe", "subscribers"]
