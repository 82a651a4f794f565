"""Request and response bodies of the IoT API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from cityloop.kit.patch import Patch


class DetectionKindOut(BaseModel):
    code: str
    label: str
    label_en: str
    class_code: str
    file_confidence: float
    repeat_window_minutes: int
    active: bool


class DetectionKindPatch(Patch):
    class_code: str | None = Field(default=None, max_length=8)
    file_confidence: float | None = Field(default=None, ge=0, le=1)
    repeat_window_minutes: int | None = Field(default=None, ge=1, le=10080)
    active: bool | None = None


class CameraIn(BaseModel):
    code: str = Field(min_length=1, max_length=40, description="letters, digits, '-' or '_'")
    name: str = Field(min_length=1, max_length=80)
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    address: str | None = Field(default=None, max_length=200)


class CameraPatch(Patch):
    nullable = frozenset({"address"})

    name: str | None = Field(default=None, min_length=1, max_length=80)
    address: str | None = Field(default=None, max_length=200)
    lon: float | None = Field(default=None, ge=-180, le=180, description="move the camera")
    lat: float | None = Field(default=None, ge=-90, le=90, description="move the camera")
    active: bool | None = None


class CameraOut(BaseModel):
    code: str
    name: str
    lon: float
    lat: float
    address: str | None
    district: str
    street: str | None
    community: str | None
    unit_grid: str | None
    active: bool
    created_at: datetime
    last_detection_at: datetime | None
    open_cases: int = 0
    detections_24h: int = 0


class CaseRef(BaseModel):
    id: int
    ticket: str
    state: str


class SensorIn(BaseModel):
    code: str = Field(min_length=1, max_length=40, description="letters, digits, '-' or '_'")
    kind: str = Field(description="water_level or manhole_cover")
    name: str = Field(min_length=1, max_length=80)
    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)
    address: str | None = Field(default=None, max_length=200)
    component_id: str | None = Field(
        default=None, max_length=17, description="the registered component it watches"
    )
    class_code: str | None = Field(default=None, max_length=8)
    threshold: float | None = Field(
        default=None, description="alarm above this value (m for gauges, degrees of tilt)"
    )
    silent_after_minutes: int = Field(default=30, ge=1, le=10080)


class SensorPatch(Patch):
    nullable = frozenset({"address", "threshold"})

    name: str | None = Field(default=None, min_length=1, max_length=80)
    address: str | None = Field(default=None, max_length=200)
    lon: float | None = Field(default=None, ge=-180, le=180, description="move the sensor")
    lat: float | None = Field(default=None, ge=-90, le=90, description="move the sensor")
    threshold: float | None = None
    silent_after_minutes: int | None = Field(default=None, ge=1, le=10080)
    active: bool | None = None


class SensorOut(BaseModel):
    code: str
    kind: str
    kind_label: str
    name: str
    unit: str
    lon: float
    lat: float
    address: str | None
    district: str
    street: str | None
    community: str | None
    unit_grid: str | None
    class_code: str
    component_id: str | None
    threshold: float | None
    silent_after_minutes: int
    active: bool
    state: str = Field(description="normal, alarm or silent")
    state_label: str
    in_alarm: bool
    alarm_since: datetime | None
    silent_since: datetime | None
    last_value: float | None
    last_signal: str | None
    last_reading_at: datetime | None
    open_case: CaseRef | None


class ReadingOut(BaseModel):
    ts: datetime
    received_at: datetime
    value: float
    unit: str
    signal: str | None
    outcome: str
    case_id: int | None


class SensorDetailOut(SensorOut):
    readings: list[ReadingOut]


class ReadingIn(BaseModel):
    """The MQTT payload contract, for sensors and gateways that speak HTTP."""

    value: float = Field(strict=True, description="metres for gauges, degrees of tilt")
    unit: str = Field(description="m, cm or mm for gauges; deg for covers")
    ts: str = Field(description="ISO-8601; without an offset it is read in the city's time")
    signal: str | None = Field(default=None, description="missing, tilt, open, low_battery, ok")


class ReadingResultOut(BaseModel):
    sensor: str
    outcome: str = Field(description="normal, alarm, repeat, recovered, late or duplicate")
    state: str
    case: CaseRef | None
    case_created: bool


class DetectionOut(BaseModel):
    id: int
    camera: str
    kind: str
    kind_label: str
    confidence: float
    detected_at: datetime
    received_at: datetime
    outcome: str = Field(description="filed, verify (reported for verification) or joined")
    snapshot: str = Field(description="media id of the snapshot: GET /api/v1/media/{id}")
    case: CaseRef
    replayed: bool = False


class DeviceKeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=80, description="the integration or device")
    kind: str = Field(description="camera or sensor")
    device_code: str | None = Field(
        default=None, max_length=40, description="bind the key to this one device"
    )


class DeviceKeyOut(BaseModel):
    id: int
    name: str
    kind: str
    device_code: str | None
    key_prefix: str
    active: bool
    created_at: datetime
    last_used_at: datetime | None


class DeviceKeyCreated(DeviceKeyOut):
    key: str = Field(description="shown this once; only its SHA-256 is kept")


class StatsOut(BaseModel):
    sensors: dict[str, int]
    readings_24h: dict[str, int]
    detections_24h: dict[str, int]
    refused: dict[str, dict[str, Any]]
