"""API shapes of cases, their actions, deadlines and timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ActionRequest(BaseModel):
    """The payload of an action; fields beyond `version` depend on the action."""

    model_config = ConfigDict(extra="allow")
    version: int | None = Field(
        default=None, description="The case version you saw; a stale one gets 409."
    )


class ActionInfo(BaseModel):
    action: str
    label: str
    label_en: str
    required: list[str]


class Clock(BaseModel):
    stage: str
    label: str
    started_at: datetime
    due_at: datetime
    limit_working_minutes: float
    elapsed_working_minutes: float
    light: str
    overdue: bool


class TimelineEntry(BaseModel):
    seq: int
    at: datetime
    actor: str
    role: str
    action: str
    from_state: str | None
    to_state: str
    department_id: int | None
    payload: dict[str, Any]
    photos: list[Any]
    hash: str


class CaseSummary(BaseModel):
    id: int
    ticket: str
    state: str
    state_label: str
    version: int
    source: str
    class_code: str
    class_name: str
    urgency: str
    district: str
    street: str | None
    community: str | None
    department_id: int | None
    department: str | None
    created_at: datetime
    due_at: datetime | None
    stage_due_at: datetime | None
    light: str | None


class CaseDetail(CaseSummary):
    kind: str
    class_confirmed: bool
    description: str
    address: str | None
    lon: float
    lat: float
    h3_cell: str
    unit_grid: str | None
    resp_grid: str | None
    district_name: str | None
    street_name: str | None
    community_name: str | None
    leader_assigned: bool
    component_id: str | None
    merged_into_id: int | None
    reporter_name: str | None
    reporter_phone: str | None
    filed_at: datetime | None
    received_at: datetime | None
    closed_at: datetime | None
    postpone_request: dict[str, Any] | None
    result_method: str | None
    rework_count: int
    satisfied: bool | None
    enforcement_case_id: int | None = None
    filing_standard: str
    closure_standard: str
    manual: str
    deadlines: list[Clock]
    timeline: list[TimelineEntry]


class CasePage(BaseModel):
    items: list[CaseSummary]
    total: int
    page: int
    page_size: int


class PublicStep(BaseModel):
    at: datetime
    step: str
    state: str


class PublicTicket(BaseModel):
    """What anyone with the ticket may see: no names, no phone numbers."""

    ticket: str
    state: str
    state_label: str
    class_name: str
    district_name: str | None
    street_name: str | None
    created_at: datetime
    closed_at: datetime | None
    merged_into_ticket: str | None = None
    # Why the report was rejected, as the centre wrote it (no names, no numbers of others).
    rejection_reason: str | None = None
    steps: list[PublicStep]
