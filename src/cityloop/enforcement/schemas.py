"""The enforcement API's shapes (the contract of issue 14; see README.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ArticleOut(BaseModel):
    number: int
    label: str  # 第六十四条
    text: str
    is_summary: bool


class LawOut(BaseModel):
    code: str
    name: str
    issuer: str
    articles: list[ArticleOut]


class ArticleRef(BaseModel):
    law: str
    number: int
    label: str


class ViolationOut(BaseModel):
    code: str
    name: str
    violation_basis: ArticleRef
    penalty_basis: ArticleRef
    class_codes: list[str]
    standard: str | None


class PartyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["person", "organisation"]
    name: str = Field(min_length=1, max_length=120)
    id_number: str | None = None
    credit_code: str | None = None
    address: str | None = None


class PartyOut(BaseModel):
    id: int
    kind: str
    name: str
    id_number: str | None  # masked
    credit_code: str | None
    address: str


class CaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    violation_code: str
    party_id: int
    facts: str = Field(min_length=1, max_length=4000)
    lon: float
    lat: float
    case_id: int | None = None
    address: str | None = None
    squad_id: int | None = None
    source: Literal["patrol", "transfer", "inspection", "case"] | None = None


class ActionIn(BaseModel):
    """An action's payload; fields beyond `version` depend on the action."""

    model_config = ConfigDict(extra="allow")
    version: int | None = Field(default=None, description="The version you saw; stale → 409.")


class ActionOut(BaseModel):
    action: str
    label: str
    label_en: str
    required: list[str]


class Deadline(BaseModel):
    code: str
    label: str
    due_at: datetime
    overdue: bool


class EventOut(BaseModel):
    seq: int
    at: datetime
    actor_name: str
    actor_role: str
    action: str
    from_state: str | None
    to_state: str
    payload: dict[str, Any]
    photos: list[Any]
    hash: str


class CaseOut(BaseModel):
    id: int
    state: str
    state_label: str
    version: int
    procedure: str
    source: str
    violation_code: str
    violation_name: str
    party: PartyOut
    facts: str
    lon: float
    lat: float
    address: str | None
    squad: str
    case_id: int | None
    filed_at: datetime | None
    decided_at: datetime | None
    delivered_at: datetime | None
    fine_yuan: float
    penalty: str | None
    paid_yuan: float
    surcharge_yuan: float
    outstanding_yuan: float
    result: str | None
    result_note: str | None
    deadlines: list[Deadline]
    discretion: dict[str, Any] | None
    reviews: dict[str, Any]
    discussion: dict[str, Any] | None
    documents: list[dict[str, Any]]
    timeline: list[EventOut]


class PublicPenalty(BaseModel):
    id: int
    party: str
    party_kind: str
    violation: str
    penalty_basis: str
    penalty: str
    fine_yuan: float
    decided_at: datetime
    delivered_at: datetime


class PublicPenaltyPage(BaseModel):
    items: list[PublicPenalty]
    total: int
    page: int
    page_size: int
