"""What the partner API reads and writes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from cityloop.kit.patch import Patch


class PartnerReportIn(BaseModel):
    """A report forwarded by a partner platform (12345, 110, public safety)."""

    ticket_id: str = Field(
        min_length=1,
        max_length=100,
        description="the partner's own ticket id: a replay with the same id returns the same case",
    )
    class_code: str = Field(
        max_length=16, description="GB/T 47678.5 class code (5 digits) or a legacy alias"
    )
    description: str = Field(min_length=1, max_length=4000)
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    coord_system: str = Field(
        default="wgs84", pattern="^(wgs84|gcj02)$", description="wgs84 (GPS) or gcj02 (Amap)"
    )
    urgency: str | None = Field(default=None, pattern="^[ABC]$")
    address: str | None = Field(default=None, max_length=200)
    reporter_name: str | None = Field(default=None, max_length=40)
    reporter_phone: str | None = Field(default=None, max_length=30)
    photo_urls: list[str] = Field(
        default_factory=list,
        max_length=9,
        description="links to the partner's own photos (http or https), kept with its ticket",
    )


class PartnerReportOut(BaseModel):
    ticket_id: str
    ticket: str
    state: str
    state_label: str
    status: str
    merged_into: str | None = Field(
        default=None,
        description="when merged as a duplicate: the ticket of the case that carries it on",
    )
    created: bool


class PartnerIn(BaseModel):
    code: str = Field(min_length=2, max_length=40, description="e.g. 12345-xiamen")
    name: str = Field(min_length=1, max_length=80)
    source: str = Field(description="partner_12345, partner_110, public_safety or open311")
    webhook_url: str | None = Field(default=None, max_length=300)


class PartnerPatch(Patch):
    nullable = frozenset({"webhook_url"})

    name: str | None = Field(default=None, min_length=1, max_length=80)
    webhook_url: str | None = Field(default=None, max_length=300)
    active: bool | None = None


class PartnerOut(BaseModel):
    id: int
    code: str
    name: str
    source: str
    key_hint: str
    webhook_url: str | None
    active: bool
    created_at: datetime


class PartnerKeyOut(PartnerOut):
    api_key: str = Field(description="shown this once; only its SHA-256 digest is stored")
