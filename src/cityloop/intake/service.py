"""`receive()`: the one intake path. Services flush; the caller commits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from cityloop.cases.models import Case
from cityloop.cases.service import Actor, Locator, create_case, find_by_idempotency_key
from cityloop.errors import Forbidden, ValidationFailed
from cityloop.kit.calendar import WorkingCalendar

STAFF = frozenset({"operator", "shiftlead", "dispatcher", "admin"})
# Non-human reporters: a partner platform authenticated by its API key, a camera or sensor.
PARTNER = frozenset({"partner"})
DEVICE = frozenset({"device"})
ANYONE: frozenset[str] = frozenset()

# source -> (Chinese label, roles that may report from it; empty = anyone, no login needed)
SOURCES: dict[str, tuple[str, frozenset[str]]] = {
    "inspector": ("监督员上报", frozenset({"inspector", "admin"})),
    "public": ("公众举报", ANYONE),
    "wechat": ("微信公众号", ANYONE),
    "app": ("市民APP", ANYONE),
    "web": ("网站", ANYONE),
    "hotline_12319": ("12319热线", STAFF),
    "hotline_12345": ("12345热线", STAFF),
    "partner_12345": ("12345平台转办", STAFF | PARTNER),
    "partner_110": ("110转办", STAFF | PARTNER),
    "public_safety": ("公共安全平台转办", STAFF | PARTNER),
    "open311": ("Open311接口", ANYONE),
    "leader": ("领导交办", frozenset({"leader", "admin"})),
    "media": ("媒体曝光", STAFF),
    "newspaper": ("报纸", STAFF),
    "forum": ("网络论坛", STAFF),
    "visit": ("来访", STAFF),
    "video": ("视频监控", STAFF | DEVICE),
    "sensor": ("物联感知", STAFF | DEVICE),
    "drone": ("无人机巡查", STAFF),
}


def initial_state(source: str) -> str:
    """Inspectors' reports wait for filing; leaders' are filed at once; others are verified."""
    if source == "inspector":
        return "pending_filing"
    if source == "leader":
        return "filed"
    return "reported"


@dataclass
class Report:
    source: str
    class_code: str
    description: str
    lon: float
    lat: float
    urgency: str | None = None
    address: str | None = None
    reporter_name: str | None = None
    reporter_phone: str | None = None
    component_id: str | None = None
    photos: list[Any] = field(default_factory=list)


def receive(
    session: Session,
    report: Report,
    *,
    actor: Actor,
    places: Locator,
    calendar: WorkingCalendar,
    now: datetime,
    idempotency_key: str | None = None,
) -> tuple[Case, bool]:
    """Create the case for a report, or return the one a replay already made.

    Returns (case, created)."""
    if report.source not in SOURCES:
        raise ValidationFailed(
            f"unknown source {report.source!r}; one of: {', '.join(SOURCES)}", field="source"
        )
    allowed = SOURCES[report.source][1]
    if allowed and actor.role not in allowed:
        roles = ", ".join(sorted(allowed))
        raise Forbidden(f"reports from source {report.source} need one of the roles {roles}")
    key = f"{report.source}:{idempotency_key}" if idempotency_key else None
    if key is not None:
        existing = find_by_idempotency_key(session, key)
        if existing is not None:
            return existing, False
    if not report.description.strip():
        raise ValidationFailed("description must not be empty", field="description")
    case = create_case(
        session,
        places=places,
        calendar=calendar,
        now=now,
        actor=actor,
        source=report.source,
        class_code=report.class_code,
        description=report.description.strip(),
        lon=report.lon,
        lat=report.lat,
        initial_state=initial_state(report.source),
        urgency=report.urgency,
        address=report.address,
        reporter_name=report.reporter_name,
        reporter_phone=report.reporter_phone,
        component_id=report.component_id,
        leader_assigned=report.source == "leader",
        idempotency_key=key,
        photos=report.photos,
    )
    return case, True
