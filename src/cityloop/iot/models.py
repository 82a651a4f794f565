"""Tables of IoT intake: detection kinds, cameras and their detections, sensors and their
readings, device API keys, and the counters of messages the bridge refused."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cityloop.db import Base, UtcDateTime

SENSOR_KINDS = ("water_level", "manhole_cover")
DETECTION_OUTCOMES = ("filed", "verify", "joined")
READING_OUTCOMES = ("normal", "alarm", "repeat", "recovered", "late")
DEVICE_KEY_KINDS = ("camera", "sensor")


class DetectionKind(Base):
    """One violation a camera's AI can recognise, and the taxonomy class it is filed under.

    Editable data: a city re-maps a kind or tunes its confidence bar without a release."""

    __tablename__ = "detection_kinds"
    __table_args__ = (
        CheckConstraint("file_confidence >= 0 AND file_confidence <= 1", name="file_confidence"),
        CheckConstraint("repeat_window_minutes > 0", name="repeat_window"),
    )

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    label: Mapped[str] = mapped_column(String(20), unique=True)
    label_en: Mapped[str] = mapped_column(String(60))
    class_code: Mapped[str] = mapped_column(ForeignKey("problem_classes.code"))
    # At or above: filed at once; below: reported, for an inspector to verify.
    file_confidence: Mapped[float] = mapped_column(Float, default=0.8)
    # A detection of the same camera and kind within this many minutes of the last one on an
    # open case joins that case.
    repeat_window_minutes: Mapped[int] = mapped_column(Integer, default=120)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Camera(Base):
    __tablename__ = "cameras"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    address: Mapped[str | None] = mapped_column(String(200), default=None)
    unit_grid: Mapped[str | None] = mapped_column(String(15), default=None)
    community: Mapped[str | None] = mapped_column(String(12), default=None)
    street: Mapped[str | None] = mapped_column(String(9), default=None)
    district: Mapped[str] = mapped_column(String(6), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_detection_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)


class Detection(Base):
    """Every detection received, and what became of it. (camera, kind, time) is the event's
    natural key: a replayed post finds its row instead of making a second case."""

    __tablename__ = "detections"
    __table_args__ = (
        UniqueConstraint("camera_id", "kind", "detected_at"),
        CheckConstraint("confidence >= 0 AND confidence <= 1", name="confidence"),
        CheckConstraint("outcome IN ('filed', 'verify', 'joined')", name="outcome"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"))
    kind: Mapped[str] = mapped_column(ForeignKey("detection_kinds.code"))
    confidence: Mapped[float] = mapped_column(Float)
    detected_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    media_id: Mapped[str] = mapped_column(ForeignKey("media.id"))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(8))


class Sensor(Base):
    """A water-level gauge or a smart manhole cover, with its live state.

    ``open_case_id`` is the case its alarms append to while that case is open. Unique, and
    written only under the sensor's row lock with a version check, so two alarms arriving
    together cannot give the sensor two open cases."""

    __tablename__ = "sensors"
    __table_args__ = (
        CheckConstraint("kind IN ('water_level', 'manhole_cover')", name="kind"),
        CheckConstraint("silent_after_minutes > 0", name="silent_after"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str] = mapped_column(String(80))
    unit: Mapped[str] = mapped_column(String(8))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    address: Mapped[str | None] = mapped_column(String(200), default=None)
    unit_grid: Mapped[str | None] = mapped_column(String(15), default=None)
    community: Mapped[str | None] = mapped_column(String(12), default=None)
    street: Mapped[str | None] = mapped_column(String(9), default=None)
    district: Mapped[str] = mapped_column(String(6), index=True)
    class_code: Mapped[str] = mapped_column(ForeignKey("problem_classes.code"))
    component_id: Mapped[str | None] = mapped_column(
        ForeignKey("components.identifier"), default=None
    )
    threshold: Mapped[float | None] = mapped_column(Float, default=None)
    silent_after_minutes: Mapped[int] = mapped_column(Integer, default=30)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    in_alarm: Mapped[bool] = mapped_column(Boolean, default=False)
    alarm_since: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    silent_since: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    last_value: Mapped[float | None] = mapped_column(Float, default=None)
    last_signal: Mapped[str | None] = mapped_column(String(16), default=None)
    last_reading_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    open_case_id: Mapped[int | None] = mapped_column(
        ForeignKey("cases.id"), unique=True, default=None
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy reads it as is)


class SensorReading(Base):
    """One reading as received. (sensor, ts) is unique: a redelivered MQTT message is
    recognised and changes nothing."""

    __tablename__ = "sensor_readings"
    __table_args__ = (
        UniqueConstraint("sensor_id", "ts"),
        CheckConstraint(
            "outcome IN ('normal', 'alarm', 'repeat', 'recovered', 'late')", name="outcome"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sensor_id: Mapped[int] = mapped_column(ForeignKey("sensors.id"))
    ts: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(8))
    signal: Mapped[str | None] = mapped_column(String(16), default=None)
    outcome: Mapped[str] = mapped_column(String(10))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), default=None)


class DeviceKey(Base):
    """An API key for cameras (or sensors speaking HTTP): one per integration, or bound to
    one device. Only the SHA-256 of the key is kept; the key is shown once."""

    __tablename__ = "device_keys"
    __table_args__ = (CheckConstraint("kind IN ('camera', 'sensor')", name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(8))
    device_code: Mapped[str | None] = mapped_column(String(40), default=None)
    key_prefix: Mapped[str] = mapped_column(String(12))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)


class IotCounter(Base):
    """How many messages the bridge refused, by reason (malformed, unknown_sensor, …), with
    the last one's time and detail, so an operator sees a misbehaving device."""

    __tablename__ = "iot_counters"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    last_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    last_detail: Mapped[str | None] = mapped_column(String(300), default=None)
