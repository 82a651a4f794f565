"""What the notification API reads and writes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class NotificationOut(BaseModel):
    id: int
    flow: str
    record_id: int
    event: str
    ticket: str | None
    title: str
    body: str
    link: str
    urgency: str | None
    created_at: datetime
    read_at: datetime | None


class InboxPage(BaseModel):
    items: list[NotificationOut]
    total: int
    unread: int
    page: int
    page_size: int


class MarkedAll(BaseModel):
    marked: int
    unread: int


class RuleIn(BaseModel):
    flow: str = "case"
    event: str = Field(description="an action of the flow, or clock_warning / clock_overdue")
    recipient: str = Field(description="department, role, grid or reporter")
    role: str | None = None
    channels: list[str] = Field(description="inbox, sms, email, wechat")
    template: str
    urgencies: str = Field("", description="some of A, B, C; empty: every urgency")
    quiet_hours: bool = True
    active: bool = True


class RuleOut(RuleIn):
    id: int | None


class TemplateIn(BaseModel):
    title: str
    body: str
    sms_template_id: str | None = None
    wechat_template_id: str | None = None


class TemplateOut(TemplateIn):
    code: str


class WebhookIn(BaseModel):
    webhook_url: str | None = None
    webhook_secret: str | None = None


class WebhookOut(BaseModel):
    department_id: int
    webhook_url: str | None
    has_secret: bool


class Muted(BaseModel):
    event: str
    channel: str


class PreferencesIn(BaseModel):
    muted: list[Muted] = Field(default_factory=list)


class PreferencesOut(BaseModel):
    muted: list[Muted]
    events: list[str]
    channels: list[str]
