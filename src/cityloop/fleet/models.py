"""Tables of the field force: vehicles and their terminals, people's duty, the one positions
table, duty events, alerts, roster shifts and road segments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cityloop.db import Base, UtcDateTime

# A 64-bit key on PostgreSQL (a city's year is ~10^10 fixes); SQLite's INTEGER PRIMARY KEY
# is already 64-bit and must stay plain INTEGER to be the rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")

VEHICLE_KINDS = ("sweeper", "sprinkler", "refuse", "enforcement", "patrol", "other")
DUTY_STATES = ("off", "on", "leave", "out_of_grid")
SUBJECTS = ("vehicle", "person")


class Vehicle(Base):
    """A vehicle and its JT/T 808 terminal; the latest fix is kept on the row so that the map
    reads one row per vehicle, never the positions table."""

    __tablename__ = "fleet_vehicles"
    __table_args__ = (
        CheckConstraint("kind IN " + str(VEHICLE_KINDS), name="kind"),
        CheckConstraint("state IN ('never', 'online', 'stale')", name="state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plate: Mapped[str] = mapped_column(String(16), unique=True)
    kind: Mapped[str] = mapped_column(String(12))
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id"), default=None, index=True
    )
    # 12 digits (2013 BCD[6]); a 2019 terminal's 20-digit number with its leading zeros dropped.
    terminal_phone: Mapped[str] = mapped_column(String(20), unique=True)
    auth_code: Mapped[str | None] = mapped_column(String(40), default=None)
    registered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    state: Mapped[str] = mapped_column(String(8), default="never")
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    lon: Mapped[float | None] = mapped_column(Float, default=None)
    lat: Mapped[float | None] = mapped_column(Float, default=None)
    at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    speed_kmh: Mapped[float | None] = mapped_column(Float, default=None)


class Person(Base):
    """A member of the field force's duty status and latest fix (one row per user)."""

    __tablename__ = "fleet_people"
    __table_args__ = (CheckConstraint("duty IN " + str(DUTY_STATES), name="duty"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    duty: Mapped[str] = mapped_column(String(12), default="off")
    duty_since: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    reason: Mapped[str | None] = mapped_column(String(200), default=None)
    lon: Mapped[float | None] = mapped_column(Float, default=None)
    lat: Mapped[float | None] = mapped_column(Float, default=None)
    at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    in_grid: Mapped[bool | None] = mapped_column(Boolean, default=None)


class Position(Base):
    """Every fix of every vehicle and person. Sized for a city's year: rows only appended,
    in time order; (subject, id, at) is unique — it answers "latest of one unit" and "track of
    one unit in a period" and makes a repeated batch store nothing — and on PostgreSQL a BRIN
    index on `at` serves the time-range scans (retention, figures over all units) for a few
    pages per billion rows."""

    __tablename__ = "fleet_positions"
    __table_args__ = (
        CheckConstraint("subject IN " + str(SUBJECTS), name="subject"),
        UniqueConstraint("subject", "subject_id", "at", name="uq_fleet_positions_track"),
        Index("ix_fleet_positions_at_brin", "at", postgresql_using="brin"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subject: Mapped[str] = mapped_column(String(8))
    subject_id: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    speed_kmh: Mapped[float | None] = mapped_column(Float, default=None)
    heading: Mapped[int | None] = mapped_column(SmallInteger, default=None)
    source: Mapped[str] = mapped_column(String(8))  # jt808, app, mqtt
    # Kept but not drawn: a jump no vehicle makes, a fix the terminal says is not positioned.
    flag: Mapped[str | None] = mapped_column(String(12), default=None)


class DutyEvent(Base):
    """上岗 / 下岗 / 请假 / 出格报备, as the person declared them."""

    __tablename__ = "fleet_duty_events"
    __table_args__ = (
        CheckConstraint("status IN " + str(DUTY_STATES), name="status"),
        Index("ix_fleet_duty_events_user_at", "user_id", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(String(200), default=None)
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class FleetAlert(Base):
    """An alert for the shift leader: a person out of their grids without 出格报备, a terminal
    gone silent. One open alert per subject and kind."""

    __tablename__ = "fleet_alerts"
    __table_args__ = (
        CheckConstraint("kind IN ('out_of_grid', 'stale')", name="kind"),
        Index("ix_fleet_alerts_subject", "subject", "subject_id", "kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))
    subject: Mapped[str] = mapped_column(String(8))
    subject_id: Mapped[int] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(String(300))
    lon: Mapped[float | None] = mapped_column(Float, default=None)
    lat: Mapped[float | None] = mapped_column(Float, default=None)
    raised_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    cleared_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)


class RosterShift(Base):
    """One person's shift on a team's roster (排班): across midnight allowed; leave and swaps
    are states of the shift, not deletions."""

    __tablename__ = "fleet_roster_shifts"
    __table_args__ = (
        CheckConstraint("team IN ('inspector', 'officer', 'hotline', 'sanitation')", name="team"),
        CheckConstraint("status IN ('planned', 'leave')", name="status"),
        CheckConstraint("ends_at > starts_at", name="order"),
        Index("ix_fleet_roster_shifts_team_start", "team", "starts_at"),
        Index("ix_fleet_roster_shifts_user_start", "user_id", "starts_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team: Mapped[str] = mapped_column(String(12))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(8), default="planned")
    swapped_from_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    note: Mapped[str | None] = mapped_column(String(200), default=None)


class RoadSegment(Base):
    """A road segment (a GeoJSON LineString, WGS-84) a sweeper is assigned to clean."""

    __tablename__ = "fleet_road_segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    district_code: Mapped[str | None] = mapped_column(String(12), default=None)
    vehicle_id: Mapped[int | None] = mapped_column(
        ForeignKey("fleet_vehicles.id"), default=None, index=True
    )
    coordinates: Mapped[list[Any]] = mapped_column(JSON)
    length_m: Mapped[float] = mapped_column(Float)
