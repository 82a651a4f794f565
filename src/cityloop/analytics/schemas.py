"""API shapes of analytics (the console and the big screen draw these)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from cityloop.evaluation.schemas import PeriodOut


class HeatCell(BaseModel):
    cell: str = Field(description="h3 cell id at the chosen resolution")
    count: int
    lat: float
    lon: float


class HotSpot(HeatCell):
    rank: int
    street: str | None
    street_name: str | None
    community: str | None
    community_name: str | None
    boundary: list[list[float]] | None = Field(
        default=None, description="[lon, lat] ring of the cell, when boundaries=true"
    )


class HeatmapOut(BaseModel):
    period: PeriodOut
    as_of: datetime
    resolution: int
    total: int
    cells: list[HeatCell]
    hot_spots: list[HotSpot]


class IncidenceOut(BaseModel):
    period: PeriodOut
    as_of: datetime
    total: int
    by_hour_weekday: dict[str, Any] = Field(
        description="counts[weekday][hour], weekday 0 = 周一, local time"
    )
    by_hour: list[int]
    by_weekday: list[int]
    peak: dict[str, Any] | None
    classes: list[dict[str, Any]]
    streets: list[dict[str, Any]]
    communities: list[dict[str, Any]]
    sources: list[dict[str, Any]]


class StageOut(BaseModel):
    stage: str
    label: str
    limit_working_minutes: int | None
    visits: int = Field(description="stage visits that ended in the period")
    avg_working_minutes: float | None
    max_working_minutes: float | None
    total_working_minutes: float
    late: int = Field(description="visits that ended after their limit")
    late_share: float | None
    overdue_marks: int = Field(description="clock_overdue notes of the sweep in the period")
    waiting_now: int
    waiting_overdue_now: int
    oldest_waiting_since: datetime | None


class StagesOut(BaseModel):
    period: PeriodOut
    as_of: datetime
    stages: list[StageOut]
    bottleneck: str | None = Field(description="the stage that took the most working time")
    most_waiting: str | None


class TrendsOut(BaseModel):
    period: PeriodOut
    as_of: datetime
    bucket: str
    series: list[dict[str, str]]
    points: list[dict[str, Any]]
