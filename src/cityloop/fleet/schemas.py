"""Request and response bodies of the field-force API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class VehicleIn(BaseModel):
    plate: str = Field(min_length=2, max_length=16, description="号牌, e.g. 闽D·A1234")
    kind: Literal["sweeper", "sprinkler", "refuse", "enforcement", "patrol", "other"]
    terminal_phone: str = Field(
        min_length=1, max_length=20, description="the terminal's number (12-digit BCD in 2013)"
    )
    department_id: int | None = None


class VehicleOut(BaseModel):
    id: int
    plate: str
    kind: str
    department_id: int | None
    terminal_phone: str
    state: str = Field(description="never (no message yet), online, stale")
    lon: float | None
    lat: float | None
    at: datetime | None = Field(description="time of the latest good fix")
    speed_kmh: float | None
    last_seen_at: datetime | None


class PointOut(BaseModel):
    at: datetime
    lon: float
    lat: float
    speed_kmh: float | None
    heading: int | None


class TrackCaseOut(BaseModel):
    id: int
    ticket: str
    lon: float
    lat: float
    at: datetime


class TrackOut(BaseModel):
    subject: str
    id: int
    name: str
    points: list[PointOut]
    distance_km: float
    cases: list[TrackCaseOut]


class CoverageSegment(BaseModel):
    id: int
    code: str
    name: str
    share: float


class CoverageOut(BaseModel):
    vehicle_id: int
    plate: str
    segments: int
    covered: list[CoverageSegment]
    missed: list[CoverageSegment]
    rate: float | None


class DutyIn(BaseModel):
    status: Literal["on", "off", "leave", "out_of_grid"]
    reason: str | None = Field(default=None, max_length=200)


class DutyOut(BaseModel):
    status: str
    since: datetime | None
    reason: str | None


class FixIn(BaseModel):
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    at: datetime
    speed_kmh: float | None = Field(default=None, ge=0, le=1000)
    accuracy_m: float | None = Field(default=None, ge=0, le=100000)


class FixesIn(BaseModel):
    positions: list[FixIn] = Field(min_length=1, max_length=1000)


class StoredOut(BaseModel):
    stored: int
    duplicates: int = Field(description="already stored (a resent batch)")
    refused: int = Field(description="impossible coordinates, future or far-past times")
    flagged: int = Field(description="kept but not drawn: jumps and impossible speeds")


class PersonPositionOut(BaseModel):
    user_id: int
    name: str
    role: str
    duty: str
    lon: float | None
    lat: float | None
    at: datetime | None
    in_grid: bool | None
    stale: bool


class PatrolOut(BaseModel):
    user_id: int
    name: str
    distance_km: float
    duty_minutes: float
    fixes: int
    grids_assigned: int
    grids_visited: int
    grid_share: float | None


class AlertOut(BaseModel):
    id: int
    kind: str
    subject: str
    subject_id: int
    message: str
    lon: float | None
    lat: float | None
    raised_at: datetime


class ShiftIn(BaseModel):
    team: Literal["inspector", "officer", "hotline", "sanitation"]
    user_id: int
    starts_at: datetime
    ends_at: datetime
    note: str | None = Field(default=None, max_length=200)


class ShiftSwapIn(BaseModel):
    user_id: int


class ShiftLeaveIn(BaseModel):
    reason: str = Field(min_length=1, max_length=200)


class ShiftOut(BaseModel):
    id: int
    team: str
    user_id: int
    name: str
    starts_at: datetime
    ends_at: datetime
    status: str
    swapped_from_id: int | None
    note: str | None


class SegmentOut(BaseModel):
    id: int
    code: str
    name: str
    district_code: str | None
    vehicle_id: int | None
    length_m: float
