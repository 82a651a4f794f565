"""API shapes of evaluation: tables with their column headers, the rates, the model."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class ColumnOut(BaseModel):
    key: str
    label: str = Field(description="Chinese header")
    label_en: str
    format: str = Field(description="int, rate (a fraction: 0.9372 = 93.72 %), score or text")


class PeriodOut(BaseModel):
    key: str = Field(examples=["2026-09"])
    kind: str
    label: str = Field(examples=["2026年9月"])
    first_day: str
    last_day: str


class EvaluationTable(BaseModel):
    kind: str
    kind_label: str
    level: str | None = None
    period: PeriodOut
    previous: PeriodOut = Field(description="环比: the period before")
    last_year: PeriodOut = Field(description="同比: the same period a year earlier")
    as_of: datetime
    facts: str = Field(description="rollup, rollup+fresh or direct: where the rows came from")
    columns: list[ColumnOut]
    rows: list[dict[str, Any]]


class RateItem(BaseModel):
    key: str
    label: str
    label_en: str
    format: str
    value: float | None
    previous: float | None = None
    last_year: float | None = None
    change_previous: float | None = Field(
        default=None, description="rates: difference (fraction); counts: relative change"
    )
    change_last_year: float | None = None


class RatesOut(BaseModel):
    periods: dict[str, PeriodOut]
    as_of: datetime
    facts: str
    items: list[RateItem]


class ModelOut(BaseModel):
    model: dict[str, Any] = Field(description="the model in force (defaults + stored keys)")
    defaults: dict[str, Any]
