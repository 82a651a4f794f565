"""IoT services: registries, device keys, camera detections, sensor readings, silence.

Services flush; the caller (an API request, one bridge message) owns the transaction. A case
is born only through `intake.receive()`; a repeat joins the open case through
`cases.add_note()`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from cityloop.assets.models import Component
from cityloop.cases.models import Case
from cityloop.cases.service import Locator, add_note, device_actor
from cityloop.cases.states import OPEN_STATES
from cityloop.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from cityloop.intake.service import Report, receive
from cityloop.iot.models import (
    DEVICE_KEY_KINDS,
    Camera,
    Detection,
    DetectionKind,
    DeviceKey,
    IotCounter,
    Sensor,
    SensorReading,
)
from cityloop.kit.calendar import WorkingCalendar
from cityloop.media.service import MediaLimits, store_photo
from cityloop.taxonomy.service import get_class

# -- reference data -----------------------------------------------------------------------------
# (code, label, English label, taxonomy class). The first nine are the kinds seed 002 names
# (占道经营, 垃圾满溢, 乱悬挂乱张贴, 非机动车乱停放, … split where the taxonomy splits them);
# the last three complete the twelve with kinds common in such systems. Editable afterwards.
DEFAULT_DETECTION_KINDS: tuple[tuple[str, str, str, str], ...] = (
    ("street_vending", "占道经营", "Street vending on the roadway", "09006"),
    ("outside_shop", "店外经营", "Trading outside the shop", "09005"),
    ("mobile_vendor", "游摊小贩", "Mobile hawker", "09001"),
    ("bin_overflow", "垃圾满溢", "Overflowing bin", "06042"),
    ("exposed_garbage", "暴露垃圾", "Exposed garbage", "06010"),
    ("piled_materials", "乱堆物料", "Piled materials", "06036"),
    ("illegal_posting", "乱张贴", "Illegal posting", "07001"),
    ("illegal_hanging", "乱悬挂", "Illegal hanging", "06019"),
    ("bike_parking", "非机动车乱停放", "Disorderly parked bikes", "09010"),
    ("car_parking", "机动车乱停放", "Illegally parked cars", "09009"),
    ("street_drying", "沿街晾挂", "Laundry hung along the street", "06007"),
    ("open_barbecue", "露天烧烤", "Open-air barbecue", "06029"),
)


@dataclass(frozen=True)
class SensorKindInfo:
    label: str
    label_en: str
    unit: str
    class_code: str  # the class of an alarm's case when the sensor names no component
    threshold: float | None


SENSOR_KIND_INFO: dict[str, SensorKindInfo] = {
    "water_level": SensorKindInfo("智能水尺", "Water-level gauge", "m", "21001", 0.15),
    "manhole_cover": SensorKindInfo("智能井盖", "Smart manhole cover", "deg", "01002", 15.0),
}
# signal -> (label, raises an alarm)
SIGNALS: dict[str, tuple[str, bool]] = {
    "missing": ("井盖丢失", True),
    "tilt": ("井盖倾斜位移", True),
    "open": ("井盖开启", True),
    "low_battery": ("电量低", False),
    "ok": ("正常", False),
}
# Units a reading may come in, converted to the sensor's unit.
UNIT_FACTORS: dict[str, dict[str, float]] = {
    "m": {"m": 1.0, "cm": 0.01, "mm": 0.001},
    "deg": {"deg": 1.0, "°": 1.0},
}
KNOWN_UNITS = tuple(unit for factors in UNIT_FACTORS.values() for unit in factors)
SENSOR_STATES = {"normal": "正常", "alarm": "报警", "silent": "离线"}
DEVICE_CODE = re.compile(r"^[A-Za-z0-9_\-]{1,40}$")
# A device clock a little ahead of ours is normal; far ahead means the time is wrong.
CLOCK_SKEW = timedelta(minutes=5)
_OPEN = tuple(OPEN_STATES)


# -- detection kinds ---------------------------------------------------------------------------
def seed_detection_kinds(session: Session) -> int:
    """Add the default kinds that are missing; returns how many were added."""
    existing = set(session.scalars(select(DetectionKind.code)))
    added = 0
    for code, label, label_en, class_code in DEFAULT_DETECTION_KINDS:
        if code in existing:
            continue
        get_class(session, class_code)
        session.add(DetectionKind(code=code, label=label, label_en=label_en, class_code=class_code))
        added += 1
    session.flush()
    return added


def list_detection_kinds(session: Session) -> list[DetectionKind]:
    return list(session.scalars(select(DetectionKind).order_by(DetectionKind.code)))


def get_detection_kind(
    session: Session, code_or_label: str, *, field: str = "kind"
) -> DetectionKind:
    """A kind by its code (``street_vending``) or its Chinese label (``占道经营``)."""
    kind = session.get(DetectionKind, code_or_label) or session.scalar(
        select(DetectionKind).where(DetectionKind.label == code_or_label)
    )
    if kind is None or not kind.active:
        known = ", ".join(
            f"{k.code} ({k.label})" for k in list_detection_kinds(session) if k.active
        )
        raise ValidationFailed(
            f"unknown detection kind {code_or_label!r}; one of: {known}", field=field
        )
    return kind


def update_detection_kind(session: Session, code: str, changes: Mapping[str, Any]) -> DetectionKind:
    kind = session.get(DetectionKind, code)
    if kind is None:
        raise NotFound(f"no detection kind {code}")
    if changes.get("class_code") is not None:
        kind.class_code = get_class(session, str(changes["class_code"])).code
    if changes.get("file_confidence") is not None:
        kind.file_confidence = _fraction(changes["file_confidence"], "file_confidence")
    if changes.get("repeat_window_minutes") is not None:
        window = changes["repeat_window_minutes"]
        if isinstance(window, bool) or not isinstance(window, int) or not 0 < window <= 7 * 1440:
            raise ValidationFailed(
                "repeat_window_minutes must be whole minutes, 1 to 10080",
                field="repeat_window_minutes",
            )
        kind.repeat_window_minutes = window
    if changes.get("active") is not None:
        kind.active = bool(changes["active"])
    session.flush()
    return kind


def _fraction(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValidationFailed(f"{field} must be a number from 0 to 1", field=field)
    return float(value)


# -- registries --------------------------------------------------------------------------------
def _check_code(code: str, field: str = "code") -> str:
    if not DEVICE_CODE.match(code):
        raise ValidationFailed(
            "a device code has 1 to 40 letters, digits, '-' or '_' (it is part of MQTT topics)",
            field=field,
        )
    return code


def _locate(places: Locator, lon: float, lat: float) -> Any:
    location = places.locate(lon, lat)
    if location is None:
        raise ValidationFailed(f"the point ({lon}, {lat}) is outside the city's area", field="lon")
    return location


def register_camera(
    session: Session,
    places: Locator,
    *,
    code: str,
    name: str,
    lon: float,
    lat: float,
    now: datetime,
    address: str | None = None,
) -> Camera:
    _check_code(code)
    if not name.strip() or len(name.strip()) > 80:
        raise ValidationFailed("name has 1 to 80 characters", field="name")
    address = _address(address)
    location = _locate(places, _coordinate(lon, "lon", 180), _coordinate(lat, "lat", 90))
    if session.scalar(select(Camera.id).where(Camera.code == code)) is not None:
        raise Conflict(f"camera {code} is already registered", field="code")
    camera = Camera(
        code=code,
        name=name.strip(),
        lon=lon,
        lat=lat,
        address=address,
        unit_grid=location.unit_grid,
        community=location.community,
        street=location.street,
        district=location.district,
        created_at=now,
    )
    session.add(camera)
    session.flush()
    return camera


def get_camera(session: Session, code: str, *, for_update: bool = False) -> Camera:
    query = select(Camera).where(Camera.code == code)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    camera = session.scalar(query)
    if camera is None:
        raise NotFound(f"camera {code} is not registered")
    return camera


def _name_and_address(device: Camera | Sensor, changes: Mapping[str, Any]) -> None:
    if changes.get("name") is not None:
        name = str(changes["name"]).strip()
        if not name or len(name) > 80:
            raise ValidationFailed("name has 1 to 80 characters", field="name")
        device.name = name
    if "address" in changes:
        device.address = _address(changes["address"])


def _address(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > 200):
        raise ValidationFailed("address has at most 200 characters", field="address")
    return (value or "").strip() or None


def _coordinate(value: Any, field: str, limit: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not -limit <= value <= limit
    ):
        raise ValidationFailed(
            f"{field} must be a number from {-limit:g} to {limit:g}", field=field
        )
    return float(value)


def _move(device: Camera | Sensor, changes: Mapping[str, Any], places: Locator | None) -> None:
    """A new position (lon and/or lat in `changes`) and the grid and regions it falls in."""
    if "lon" not in changes and "lat" not in changes:
        return
    lon = _coordinate(changes.get("lon", device.lon), "lon", 180)
    lat = _coordinate(changes.get("lat", device.lat), "lat", 90)
    if places is None:
        raise ValidationFailed("a new position needs the city's grid index", field="lon")
    location = _locate(places, lon, lat)
    device.lon, device.lat = lon, lat
    device.unit_grid = location.unit_grid
    device.community = location.community
    device.street = location.street
    device.district = location.district


def update_camera(
    session: Session,
    code: str,
    changes: Mapping[str, Any],
    *,
    places: Locator | None = None,
) -> Camera:
    """Rename, move (lon/lat, located again), re-address, disable or enable a camera."""
    camera = get_camera(session, code)
    _name_and_address(camera, changes)
    _move(camera, changes, places)
    if changes.get("active") is not None:
        camera.active = bool(changes["active"])
    session.flush()
    return camera


def register_sensor(
    session: Session,
    places: Locator,
    *,
    code: str,
    kind: str,
    name: str,
    now: datetime,
    lon: float | None = None,
    lat: float | None = None,
    address: str | None = None,
    component_id: str | None = None,
    class_code: str | None = None,
    threshold: float | None = None,
    silent_after_minutes: int = 30,
) -> Sensor:
    """Register a gauge or cover. A cover linked to a registered component takes its position
    and class, so its alarm's case goes to the component's owner."""
    _check_code(code)
    info = SENSOR_KIND_INFO.get(kind)
    if info is None:
        raise ValidationFailed(f"kind must be one of {', '.join(SENSOR_KIND_INFO)}", field="kind")
    if not name.strip() or len(name.strip()) > 80:
        raise ValidationFailed("name has 1 to 80 characters", field="name")
    address = _address(address)
    component = None
    if component_id is not None:
        component = session.get(Component, component_id)
        if component is None:
            raise ValidationFailed(
                f"component {component_id} is not registered", field="component_id"
            )
        lon = component.lon if lon is None else lon
        lat = component.lat if lat is None else lat
    if lon is None or lat is None:
        raise ValidationFailed("give lon and lat, or a component_id", field="lon")
    location = _locate(places, _coordinate(lon, "lon", 180), _coordinate(lat, "lat", 90))
    if class_code is not None:
        problem_class = get_class(session, class_code)
    elif component is not None:
        problem_class = get_class(session, component.class_code)
    else:
        problem_class = get_class(session, info.class_code)
    if threshold is not None and not math.isfinite(threshold):
        raise ValidationFailed("threshold must be a number", field="threshold")
    if not 0 < silent_after_minutes <= 7 * 1440:
        raise ValidationFailed(
            "silent_after_minutes must be 1 to 10080", field="silent_after_minutes"
        )
    if session.scalar(select(Sensor.id).where(Sensor.code == code)) is not None:
        raise Conflict(f"sensor {code} is already registered", field="code")
    sensor = Sensor(
        code=code,
        kind=kind,
        name=name.strip(),
        unit=info.unit,
        lon=lon,
        lat=lat,
        address=address,
        unit_grid=location.unit_grid,
        community=location.community,
        street=location.street,
        district=location.district,
        class_code=problem_class.code,
        component_id=component.identifier if component is not None else None,
        threshold=info.threshold if threshold is None else threshold,
        silent_after_minutes=silent_after_minutes,
        created_at=now,
    )
    session.add(sensor)
    session.flush()
    return sensor


def get_sensor(session: Session, code: str, *, for_update: bool = False) -> Sensor:
    query = select(Sensor).where(Sensor.code == code)
    if for_update:
        # On PostgreSQL the second of two simultaneous alarms waits here, then sees the case
        # the first one opened. SQLite writers are already serialised by BEGIN IMMEDIATE.
        query = query.with_for_update().execution_options(populate_existing=True)
    sensor = session.scalar(query)
    if sensor is None:
        raise NotFound(f"sensor {code} is not registered")
    return sensor


def update_sensor(
    session: Session,
    code: str,
    changes: Mapping[str, Any],
    *,
    places: Locator | None = None,
) -> Sensor:
    """Rename, move (lon/lat, located again), re-address, set the alarm threshold or the
    silence limit, disable or enable a sensor."""
    sensor = get_sensor(session, code, for_update=True)
    _name_and_address(sensor, changes)
    _move(sensor, changes, places)
    if "threshold" in changes:
        value = changes["threshold"]
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ValidationFailed("threshold must be a number", field="threshold")
        sensor.threshold = None if value is None else float(value)
    if changes.get("silent_after_minutes") is not None:
        minutes = changes["silent_after_minutes"]
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 0 < minutes <= 10080:
            raise ValidationFailed(
                "silent_after_minutes must be 1 to 10080", field="silent_after_minutes"
            )
        sensor.silent_after_minutes = minutes
    if changes.get("active") is not None:
        sensor.active = bool(changes["active"])
    _flush(session)
    return sensor


def sensor_state(sensor: Sensor) -> str:
    if sensor.silent_since is not None:
        return "silent"
    return "alarm" if sensor.in_alarm else "normal"


# -- device keys -------------------------------------------------------------------------------
def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def issue_device_key(
    session: Session,
    *,
    name: str,
    kind: str,
    now: datetime,
    device_code: str | None = None,
    key: str | None = None,
) -> tuple[DeviceKey, str]:
    """A new key (random unless given, as the demo's documented keys are); returns (row, key),
    the key to be shown this once. Only its SHA-256 is stored."""
    if kind not in DEVICE_KEY_KINDS:
        raise ValidationFailed(f"kind must be one of {', '.join(DEVICE_KEY_KINDS)}", field="kind")
    if not name.strip():
        raise ValidationFailed("name must not be empty", field="name")
    if device_code is not None:
        model = Camera if kind == "camera" else Sensor
        if session.scalar(select(model.id).where(model.code == device_code)) is None:
            raise ValidationFailed(f"no {kind} {device_code} is registered", field="device_code")
    key = key or f"cl{kind[0]}_{secrets.token_urlsafe(32)}"
    if len(key) < 12 or len(key) > 200:
        raise ValidationFailed("a device key has 12 to 200 characters", field="key")
    if session.scalar(select(DeviceKey.id).where(DeviceKey.key_hash == _digest(key))) is not None:
        raise Conflict("this key is already in use", field="key")
    row = DeviceKey(
        name=name.strip(),
        kind=kind,
        device_code=device_code,
        key_prefix=key[:12],
        key_hash=_digest(key),
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row, key


def list_device_keys(session: Session) -> list[DeviceKey]:
    return list(session.scalars(select(DeviceKey).order_by(DeviceKey.id)))


def revoke_device_key(session: Session, key_id: int) -> DeviceKey:
    row = session.get(DeviceKey, key_id)
    if row is None:
        raise NotFound(f"no device key {key_id}")
    row.active = False
    session.flush()
    return row


def authenticate_device(
    session: Session, key: str | None, kind: str, now: datetime, *, field: str = "X-Api-Key"
) -> DeviceKey:
    """The active key row for this key, which must be a key for this kind of device."""
    if not key:
        raise Unauthorized(f"send the device's API key in {field}", field=field)
    row = None
    if len(key) <= 200:
        row = session.scalar(select(DeviceKey).where(DeviceKey.key_hash == _digest(key)))
    if row is None or not row.active:
        raise Unauthorized("unknown or revoked device key", field=field)
    if row.kind != kind:
        raise Forbidden(f"this key belongs to {row.kind}s, not {kind}s", field=field)
    row.last_used_at = now
    return row


def check_key_device(key: DeviceKey, code: str) -> None:
    if key.device_code is not None and key.device_code != code:
        raise Forbidden(f"this key is bound to {key.kind} {key.device_code}, not {code}")


# -- camera detections -------------------------------------------------------------------------
@dataclass(frozen=True)
class DetectionIn:
    camera: str
    kind: str
    confidence: float
    detected_at: datetime
    snapshot: bytes
    filename: str | None = None


@dataclass(frozen=True)
class DetectionResult:
    detection: Detection
    case: Case
    replayed: bool


def receive_detection(
    session: Session,
    data: DetectionIn,
    *,
    key: DeviceKey,
    places: Locator,
    calendar: WorkingCalendar,
    now: datetime,
    media_dir: Path,
    media_limits: MediaLimits,
) -> DetectionResult:
    """File a camera's detection: a new case (filed when confident, else reported for
    verification), or a note on the open case of the same camera and kind within the kind's
    window. A replay of the same (camera, kind, time) returns what the first one made."""
    check_key_device(key, data.camera)
    try:
        camera = get_camera(session, data.camera, for_update=True)
    except NotFound as exc:
        raise ValidationFailed(exc.message, field="camera") from exc
    if not camera.active:
        raise ValidationFailed(f"camera {camera.code} is deactivated", field="camera")
    kind = get_detection_kind(session, data.kind)
    confidence = _fraction(data.confidence, "confidence")
    detected_at = _aware(data.detected_at, calendar.timezone, "detected_at")
    if detected_at > now + CLOCK_SKEW:
        raise ValidationFailed(
            "detected_at is in the future: check the camera's clock", field="detected_at"
        )
    previous = session.scalar(
        select(Detection).where(
            Detection.camera_id == camera.id,
            Detection.kind == kind.code,
            Detection.detected_at == detected_at,
        )
    )
    if previous is not None:
        case = session.get(Case, previous.case_id)
        assert case is not None
        return DetectionResult(previous, case, True)
    # The photo is checked before anything is written: a bad snapshot leaves no case.
    media = store_photo(
        session,
        data.snapshot,
        data.filename,
        directory=media_dir,
        now=now,
        limits=media_limits,
        field="snapshot",
    )
    actor = device_actor(camera.name[:60])
    payload = {
        "camera": camera.code,
        "kind": kind.code,
        "kind_label": kind.label,
        "confidence": confidence,
        "detected_at": detected_at.isoformat(),
    }
    case = _open_camera_case(session, camera, kind, detected_at)
    if case is not None:
        add_note(session, case, actor, "camera_repeat", now, payload, [media.id])
        outcome = "joined"
    else:
        confident = confidence >= kind.file_confidence
        local = detected_at.astimezone(ZoneInfo(calendar.timezone))
        case, _created = receive(
            session,
            Report(
                source="video",
                class_code=kind.class_code,
                description=(
                    f"视频AI识别：{kind.label}（置信度 {confidence:.2f}），{camera.name}，"
                    f"{local:%Y-%m-%d %H:%M:%S}"
                ),
                lon=camera.lon,
                lat=camera.lat,
                address=camera.address or camera.name,
                photos=[media.id],
                initial_state="filed" if confident else None,
            ),
            actor=actor,
            places=places,
            calendar=calendar,
            now=now,
            idempotency_key=f"{camera.code}:{kind.code}:{detected_at.astimezone(UTC).isoformat()}",
        )
        outcome = "filed" if confident else "verify"
    detection = Detection(
        camera_id=camera.id,
        kind=kind.code,
        confidence=confidence,
        detected_at=detected_at,
        received_at=now,
        media_id=media.id,
        case_id=case.id,
        outcome=outcome,
    )
    session.add(detection)
    if camera.last_detection_at is None or detected_at > camera.last_detection_at:
        camera.last_detection_at = detected_at
    _flush(session)
    return DetectionResult(detection, case, False)


def _open_camera_case(
    session: Session, camera: Camera, kind: DetectionKind, detected_at: datetime
) -> Case | None:
    """The open case of this camera and kind whose last detection is within the window."""
    last = func.max(Detection.detected_at)
    row = session.execute(
        select(Detection.case_id, last)
        .join(Case, Case.id == Detection.case_id)
        .where(
            Detection.camera_id == camera.id,
            Detection.kind == kind.code,
            Case.state.in_(_OPEN),
        )
        .group_by(Detection.case_id)
        .order_by(last.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    case_id, last_at = row
    if last_at.tzinfo is None:  # SQLite hands back the aggregate without the type's offset
        last_at = last_at.replace(tzinfo=UTC)
    if abs(detected_at - last_at) > timedelta(minutes=kind.repeat_window_minutes):
        return None
    return session.get(Case, case_id)


def list_detections(
    session: Session, *, camera: str | None = None, kind: str | None = None, limit: int = 100
) -> list[tuple[Detection, Camera, Case]]:
    query = (
        select(Detection, Camera, Case)
        .join(Camera, Camera.id == Detection.camera_id)
        .join(Case, Case.id == Detection.case_id)
    )
    if camera is not None:
        query = query.where(Camera.code == camera)
    if kind is not None:
        query = query.where(Detection.kind == kind)
    rows = session.execute(
        query.order_by(Detection.detected_at.desc(), Detection.id.desc()).limit(limit)
    ).all()
    return [(d, c, k) for d, c, k in rows]


# -- sensor readings ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ReadingIn:
    value: float
    unit: str
    ts: datetime
    signal: str | None = None


@dataclass(frozen=True)
class ReadingResult:
    sensor: Sensor
    outcome: str  # normal | alarm | repeat | recovered | late | duplicate
    case: Case | None = None
    case_created: bool = False


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def parse_reading(
    payload: bytes | str | Mapping[str, Any],
    *,
    timezone: str,
    now: datetime,
    max_bytes: int = 16384,
) -> ReadingIn:
    """Check a reading against the contract ``{"value": number, "unit": str, "ts": ISO-8601,
    "signal"?: str}``; a ValidationFailed names the bad field. A time without an offset is
    read in the city's time zone."""
    if isinstance(payload, bytes | str):
        if len(payload) > max_bytes:
            raise ValidationFailed(
                f"payload of {len(payload)} bytes is over {max_bytes}", field="payload"
            )
        try:
            text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
            data = json.loads(text, parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ValidationFailed(f"payload is not JSON: {exc}", field="payload") from exc
    else:
        data = payload
    if not isinstance(data, Mapping):
        raise ValidationFailed("payload must be a JSON object", field="payload")
    value = data.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationFailed("value must be a number", field="value")
    unit = data.get("unit")
    if not isinstance(unit, str) or unit not in KNOWN_UNITS:
        raise ValidationFailed(f"unit must be one of {', '.join(KNOWN_UNITS)}", field="unit")
    raw_ts = data.get("ts")
    if not isinstance(raw_ts, str):
        raise ValidationFailed("ts must be an ISO-8601 time", field="ts")
    try:
        ts = datetime.fromisoformat(raw_ts)
    except ValueError as exc:
        raise ValidationFailed(f"ts {raw_ts[:40]!r} is not an ISO-8601 time", field="ts") from exc
    ts = _aware(ts, timezone, "ts")
    if ts > now + CLOCK_SKEW:
        raise ValidationFailed("ts is in the future: check the sensor's clock", field="ts")
    signal = data.get("signal")
    if signal is not None and (not isinstance(signal, str) or signal not in SIGNALS):
        raise ValidationFailed(f"signal must be one of {', '.join(SIGNALS)}", field="signal")
    return ReadingIn(float(value), unit, ts, signal)


def _aware(moment: datetime, timezone: str, field: str) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise ValidationFailed(f"{field} is out of range", field=field) from exc


def sensor_code_from_topic(topic: str, prefix: str) -> str:
    """``{prefix}/{sensor_code}/readings`` → sensor_code."""
    head = prefix.rstrip("/") + "/"
    if not topic.startswith(head) or not topic.endswith("/readings"):
        raise ValidationFailed(
            f"topic {topic[:120]!r} is not {head}{{code}}/readings", field="topic"
        )
    code = topic[len(head) : -len("/readings")]
    if not DEVICE_CODE.match(code):
        raise ValidationFailed(f"topic {topic[:120]!r} holds no valid sensor code", field="topic")
    return code


def _is_alarm(sensor: Sensor, reading: ReadingIn) -> bool:
    if reading.signal is not None and SIGNALS[reading.signal][1]:
        return True
    return sensor.threshold is not None and reading.value > sensor.threshold


def _alarm_text(sensor: Sensor, reading: ReadingIn, timezone: str) -> str:
    info = SENSOR_KIND_INFO[sensor.kind]
    local = reading.ts.astimezone(ZoneInfo(timezone))
    if reading.signal is not None and SIGNALS[reading.signal][1]:
        what = SIGNALS[reading.signal][0]
    elif sensor.kind == "water_level":
        what = f"水位 {reading.value:.2f} m，超过警戒值 {sensor.threshold:.2f} m"
    else:
        what = f"读数 {reading.value:g} {sensor.unit}，超过阈值 {sensor.threshold:g} {sensor.unit}"
    return f"{info.label}报警：{sensor.name}，{what}（{local:%Y-%m-%d %H:%M:%S}）"


def _open_sensor_case(session: Session, sensor: Sensor) -> Case | None:
    if sensor.open_case_id is None:
        return None
    case = session.get(Case, sensor.open_case_id)
    if case is None or case.state not in OPEN_STATES:
        return None
    return case


def record_reading(
    session: Session,
    code: str,
    reading: ReadingIn,
    *,
    places: Locator,
    calendar: WorkingCalendar,
    now: datetime,
) -> ReadingResult:
    """Apply one reading to its sensor. Over the threshold (or an alarm signal) with no open
    case: a case is filed; with one: the reading is appended to it; back to normal: the
    recovery is noted. A reading already received (same sensor and ts) changes nothing; one
    older than the last changes no state."""
    sensor = get_sensor(session, code, for_update=True)
    if not sensor.active:
        raise NotFound(f"sensor {code} is deactivated")
    factors = UNIT_FACTORS.get(sensor.unit, {sensor.unit: 1.0})
    if reading.unit not in factors:
        raise ValidationFailed(
            f"unit {reading.unit!r} does not fit sensor {code} (one of {', '.join(factors)})",
            field="unit",
        )
    reading = ReadingIn(
        reading.value * factors[reading.unit],
        sensor.unit,
        _aware(reading.ts, calendar.timezone, "ts"),
        reading.signal,
    )
    duplicate = session.scalar(
        select(SensorReading.id).where(
            SensorReading.sensor_id == sensor.id, SensorReading.ts == reading.ts
        )
    )
    if duplicate is not None:
        return ReadingResult(sensor, "duplicate")
    row = SensorReading(
        sensor_id=sensor.id,
        ts=reading.ts,
        received_at=now,
        value=reading.value,
        unit=reading.unit,
        signal=reading.signal,
        outcome="late",
    )
    session.add(row)
    if sensor.last_reading_at is not None and reading.ts < sensor.last_reading_at:
        _flush(session)
        return ReadingResult(sensor, "late")

    sensor.last_value = reading.value
    sensor.last_signal = reading.signal
    sensor.last_reading_at = reading.ts
    sensor.silent_since = None
    actor = device_actor(sensor.name[:60])
    note = {
        "sensor": sensor.code,
        "value": reading.value,
        "unit": reading.unit,
        "signal": reading.signal,
        "threshold": sensor.threshold,
        "ts": reading.ts.isoformat(),
    }
    case = _open_sensor_case(session, sensor)
    created = False
    if _is_alarm(sensor, reading):
        outcome = "repeat" if sensor.in_alarm and case is not None else "alarm"
        if case is None:
            case, created = receive(
                session,
                Report(
                    source="sensor",
                    class_code=sensor.class_code,
                    description=_alarm_text(sensor, reading, calendar.timezone),
                    lon=sensor.lon,
                    lat=sensor.lat,
                    address=sensor.address or sensor.name,
                    component_id=sensor.component_id,
                    initial_state="filed",
                ),
                actor=actor,
                places=places,
                calendar=calendar,
                now=now,
                idempotency_key=f"{sensor.code}:{reading.ts.isoformat()}",
            )
            sensor.open_case_id = case.id
        else:
            add_note(session, case, actor, "sensor_reading", now, note)
        if not sensor.in_alarm:
            sensor.in_alarm = True
            sensor.alarm_since = reading.ts
    elif sensor.in_alarm:
        outcome = "recovered"
        sensor.in_alarm = False
        sensor.alarm_since = None
        if case is not None:
            add_note(session, case, actor, "sensor_recovered", now, note)
    else:
        outcome = "normal"
    row.outcome = outcome
    row.case_id = case.id if case is not None and outcome != "normal" else None
    _flush(session)
    return ReadingResult(sensor, outcome, case, created)


def _flush(session: Session) -> None:
    try:
        session.flush()
    except (StaleDataError, IntegrityError) as exc:
        raise Conflict("another message for this device was saved first; try again") from exc


def flag_silent_sensors(session: Session, *, now: datetime) -> list[str]:
    """Mark active sensors that have sent nothing for longer than their silence limit;
    returns the codes newly marked. A reading clears the mark. Safe beside the bridge: each
    mark is a conditional update that loses to a reading saved meanwhile."""
    rows = session.execute(
        select(
            Sensor.id,
            Sensor.code,
            Sensor.last_reading_at,
            Sensor.created_at,
            Sensor.silent_after_minutes,
        ).where(Sensor.active, Sensor.silent_since.is_(None))
    ).all()
    flagged: list[str] = []
    for sensor_id, code, last, created, minutes in rows:
        cutoff = now - timedelta(minutes=minutes)
        if (last or created) >= cutoff:
            continue
        result = session.execute(
            update(Sensor)
            .where(
                Sensor.id == sensor_id,
                Sensor.silent_since.is_(None),
                or_(
                    and_(Sensor.last_reading_at.is_(None), Sensor.created_at < cutoff),
                    Sensor.last_reading_at < cutoff,
                ),
            )
            .values(silent_since=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0):
            flagged.append(code)
    if flagged:
        session.expire_all()
    return flagged


# -- reading the registries (big screen, admin) --------------------------------------------------
@dataclass(frozen=True)
class SensorView:
    sensor: Sensor
    case: Case | None


def list_sensors(
    session: Session,
    *,
    kind: str | None = None,
    state: str | None = None,
    district: str | None = None,
    include_inactive: bool = False,
) -> list[SensorView]:
    query = select(Sensor, Case).outerjoin(
        Case, and_(Case.id == Sensor.open_case_id, Case.state.in_(_OPEN))
    )
    if not include_inactive:
        query = query.where(Sensor.active)
    if kind is not None:
        query = query.where(Sensor.kind == kind)
    if district is not None:
        query = query.where(Sensor.district == district)
    if state == "silent":
        query = query.where(Sensor.silent_since.is_not(None))
    elif state == "alarm":
        query = query.where(Sensor.silent_since.is_(None), Sensor.in_alarm)
    elif state == "normal":
        query = query.where(Sensor.silent_since.is_(None), Sensor.in_alarm.is_(False))
    elif state is not None:
        raise ValidationFailed(f"state must be one of {', '.join(SENSOR_STATES)}", field="state")
    rows = session.execute(query.order_by(Sensor.code)).all()
    return [SensorView(sensor, case) for sensor, case in rows]


def sensor_detail(
    session: Session, code: str, *, readings: int = 50
) -> tuple[SensorView, list[SensorReading]]:
    sensor = get_sensor(session, code)
    case = _open_sensor_case(session, sensor)
    recent = list(
        session.scalars(
            select(SensorReading)
            .where(SensorReading.sensor_id == sensor.id)
            .order_by(SensorReading.ts.desc())
            .limit(readings)
        )
    )
    return SensorView(sensor, case), recent


@dataclass(frozen=True)
class CameraView:
    camera: Camera
    open_cases: int
    detections_24h: int


def list_cameras(
    session: Session, *, now: datetime, district: str | None = None, include_inactive: bool = False
) -> list[CameraView]:
    open_cases = (
        select(Detection.camera_id, func.count(func.distinct(Detection.case_id)).label("n"))
        .join(Case, Case.id == Detection.case_id)
        .where(Case.state.in_(_OPEN))
        .group_by(Detection.camera_id)
        .subquery()
    )
    recent = (
        select(Detection.camera_id, func.count().label("n"))
        .where(Detection.detected_at >= now - timedelta(hours=24))
        .group_by(Detection.camera_id)
        .subquery()
    )
    query = (
        select(Camera, open_cases.c.n, recent.c.n)
        .outerjoin(open_cases, open_cases.c.camera_id == Camera.id)
        .outerjoin(recent, recent.c.camera_id == Camera.id)
    )
    if not include_inactive:
        query = query.where(Camera.active)
    if district is not None:
        query = query.where(Camera.district == district)
    rows = session.execute(query.order_by(Camera.code)).all()
    return [CameraView(camera, n_open or 0, n_recent or 0) for camera, n_open, n_recent in rows]


# -- counters -----------------------------------------------------------------------------------
COUNTERS = {
    "malformed": "格式错误",
    "unknown_sensor": "未登记传感器",
    "duplicate": "重复消息",
    "error": "处理出错",
}


def count(session: Session, name: str, now: datetime, detail: str | None = None) -> None:
    """Add one to a counter (made on first use)."""
    values = {"count": IotCounter.count + 1, "last_at": now, "last_detail": (detail or "")[:300]}
    result = session.execute(
        update(IotCounter)
        .where(IotCounter.name == name)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0):
        return
    try:
        with session.begin_nested():
            session.add(
                IotCounter(name=name, count=1, last_at=now, last_detail=values["last_detail"])
            )
    except IntegrityError:  # another bridge made it meanwhile
        session.execute(
            update(IotCounter)
            .where(IotCounter.name == name)
            .values(**values)
            .execution_options(synchronize_session=False)
        )


def counters(session: Session) -> list[IotCounter]:
    return list(session.scalars(select(IotCounter).order_by(IotCounter.name)))


def stats(session: Session, *, now: datetime) -> dict[str, Any]:
    """What the big screen and an operator want at a glance."""
    states = {name: 0 for name in SENSOR_STATES}
    for view in list_sensors(session):
        states[sensor_state(view.sensor)] += 1
    since = now - timedelta(hours=24)
    readings = dict(
        session.execute(
            select(SensorReading.outcome, func.count())
            .where(SensorReading.received_at >= since)
            .group_by(SensorReading.outcome)
        ).all()
    )
    detections = dict(
        session.execute(
            select(Detection.outcome, func.count())
            .where(Detection.received_at >= since)
            .group_by(Detection.outcome)
        ).all()
    )
    return {
        "sensors": states,
        "readings_24h": readings,
        "detections_24h": detections,
        "refused": {
            c.name: {"count": c.count, "last_at": c.last_at, "last_detail": c.last_detail}
            for c in counters(session)
        },
    }
