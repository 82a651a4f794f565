"""Tables of notifications: rules, templates, the inbox, preferences, contact addresses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from cityloop.db import Base, UtcDateTime

RECIPIENT_KINDS = ("department", "role", "grid", "reporter")


class NotificationRule(Base):
    """Who is told of an event: the event (an action of a flow or a clock kind), a recipient
    (the department holding the record, every user of a role, the inspectors of the record's
    grid, the reporter), the channels, the template, and the filters."""

    __tablename__ = "notification_rules"
    __table_args__ = (
        CheckConstraint(
            "recipient IN ('department', 'role', 'grid', 'reporter')", name="recipient"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flow: Mapped[str] = mapped_column(String(20), default="case")
    event: Mapped[str] = mapped_column(String(40), index=True)
    recipient: Mapped[str] = mapped_column(String(12))
    role: Mapped[str | None] = mapped_column(String(20), default=None)
    channels: Mapped[list[Any]] = mapped_column(JSON, default=list)
    template: Mapped[str] = mapped_column(String(40))
    # Empty: every urgency; else only these (A/B/C).
    urgencies: Mapped[str] = mapped_column(String(3), default="")
    # SMS waits out the night (22:00–08:00) unless the case is urgency A.
    quiet_hours: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class NotificationTemplate(Base):
    """The words of a message, Chinese with {placeholders}; a code not in this table uses
    its default (`defaults.TEMPLATES`)."""

    __tablename__ = "notification_templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    title: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text)
    # The gateway's registered template ids (SMS templates and WeChat templates are
    # approved by the provider in advance; the text above is what the inbox shows).
    sms_template_id: Mapped[str | None] = mapped_column(String(60), default=None)
    wechat_template_id: Mapped[str | None] = mapped_column(String(80), default=None)


class Notification(Base):
    """One line of a user's inbox, written in the event's transaction."""

    __tablename__ = "notifications"
    __table_args__ = (
        # The inbox and the live stream: a user's lines after an id, unread ones first.
        Index("ix_notifications_user_id", "user_id", "id"),
        Index("ix_notifications_user_unread", "user_id", "read_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    flow: Mapped[str] = mapped_column(String(20), default="case")
    record_id: Mapped[int] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(40))
    ticket: Mapped[str | None] = mapped_column(String(20), default=None)
    title: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str] = mapped_column(String(200))
    urgency: Mapped[str | None] = mapped_column(String(1), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)


class NotificationPreference(Base):
    """A user's choice to not be told of an event on a channel (rows are the exceptions:
    what the rules send and no row mutes, the user gets)."""

    __tablename__ = "notification_preferences"
    __table_args__ = (UniqueConstraint("user_id", "event", "channel"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    event: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(12))
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)


class NotificationAddress(Base):
    """Where a person is reached on a channel besides their phone: a staff member's e-mail
    or WeChat openid, or a citizen's WeChat openid bound to the phone they report with.
    Read by the worker only, when it sends."""

    __tablename__ = "notification_addresses"
    __table_args__ = (
        UniqueConstraint("channel", "user_id"),
        UniqueConstraint("channel", "phone"),
        CheckConstraint("user_id IS NOT NULL OR phone IS NOT NULL", name="owner"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(12))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    phone: Mapped[str | None] = mapped_column(String(30), default=None)
    address: Mapped[str] = mapped_column(String(200))
