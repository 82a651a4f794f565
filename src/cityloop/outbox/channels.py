"""The outbox's delivery plug-ins: one interface, one registry. The worker hands each
claimed message to the channel its row names. ``webhook`` (a JSON POST to the row's URL, the
partner status push) is built in; the notification channels (SMS, e-mail, WeChat, signed
department webhooks) register themselves at start-up (`cityloop.listeners`).

A channel works in two steps so that no transaction stays open while it talks to the
outside: ``prepare`` reads what it needs (an address, a signing key) in a short read
session, ``send`` then talks to the outside world with no session at all."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from cityloop.outbox.service import Delivery, SendResult


class Channel(Protocol):
    name: str

    def prepare(self, session: Session, delivery: Delivery) -> Any:
        """What ``send`` needs besides the message (None when nothing), or a SendResult to
        end the delivery without sending (no address: nothing to send)."""
        ...

    def send(self, delivery: Delivery, prepared: Any) -> SendResult: ...


_CHANNELS: dict[str, Channel] = {}


def register(channel: Channel) -> None:
    _CHANNELS[channel.name] = channel


def get(name: str) -> Channel | None:
    return _CHANNELS.get(name)


def names() -> list[str]:
    return sorted(_CHANNELS)
