"""Composition of the event stream: who listens to the flows. Called once at start-up by
every process that runs a flow (the API app, `cityloop worker`, the CLI, the demo build);
calling it again changes nothing. The flows (`cases`, `intake`, `supervision`) import none of
these listeners."""

from __future__ import annotations

from cityloop.events import subscribe


def register_listeners() -> None:
    from cityloop.notifications.subscriber import on_event as notify
    from cityloop.partners.hooks import on_event as push_to_partner

    # Order is the order outbox rows are written in one transaction.
    subscribe("partners.status_push", push_to_partner)
    subscribe("notifications", notify)
