"""REST edge of IoT intake: camera detections (device key), sensor readings over HTTP (device
key), the camera and sensor registries (admin), the lists the big screen reads, device keys,
and the bridge's counters."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, Header, Query, Request, Response, UploadFile

from cityloop.cases.models import Case
from cityloop.deps import CaseWritingDep, NowDep, PlacesDep, SessionDep, UserDep
from cityloop.errors import Forbidden
from cityloop.iot import service
from cityloop.iot.models import Camera, Detection, DetectionKind, DeviceKey, Sensor
from cityloop.iot.schemas import (
    CameraIn,
    CameraOut,
    CameraPatch,
    CaseRef,
    DetectionKindOut,
    DetectionKindPatch,
    DetectionOut,
    DeviceKeyCreated,
    DeviceKeyIn,
    DeviceKeyOut,
    ReadingIn,
    ReadingOut,
    ReadingResultOut,
    SensorDetailOut,
    SensorIn,
    SensorOut,
    SensorPatch,
    StatsOut,
)
from cityloop.org.models import User

router = APIRouter(prefix="/api/v1", tags=["iot 视频识别与物联感知"])

ApiKeyHeader = Annotated[
    str | None,
    Header(
        alias="X-Api-Key", description="the device's (or integration's) API key", max_length=200
    ),
]


def _admin(user: User) -> None:
    if user.role != "admin":
        raise Forbidden("only an administrator manages cameras, sensors and device keys")


# The centre watches the cameras; a department or an inspector reads its own cases instead.
CENTRE_ROLES = frozenset({"admin", "operator", "shiftlead", "dispatcher", "leader"})


def _centre(user: User) -> None:
    if user.role not in CENTRE_ROLES:
        raise Forbidden("the detections list is for the command centre")


def _case_ref(case: Case | None) -> CaseRef | None:
    return CaseRef(id=case.id, ticket=case.ticket, state=case.state) if case is not None else None


# -- detections --------------------------------------------------------------------------------
def _detection_out(
    detection: Detection, camera: Camera, kind: DetectionKind | None, case: Case, replayed: bool
) -> DetectionOut:
    return DetectionOut(
        id=detection.id,
        camera=camera.code,
        kind=detection.kind,
        kind_label=kind.label if kind is not None else detection.kind,
        confidence=detection.confidence,
        detected_at=detection.detected_at,
        received_at=detection.received_at,
        outcome=detection.outcome,
        snapshot=detection.media_id,
        case=CaseRef(id=case.id, ticket=case.ticket, state=case.state),
        replayed=replayed,
    )


@router.post(
    "/detections",
    response_model=DetectionOut,
    status_code=201,
    summary="A camera's AI detection 视频AI识别上报 (multipart; API key in X-Api-Key)",
    responses={200: {"description": "a replay of a detection already received"}},
)
def post_detection(
    request: Request,
    response: Response,
    writing: CaseWritingDep,
    camera: Annotated[str, Form(min_length=1, max_length=40, description="camera code")],
    kind: Annotated[
        str, Form(min_length=1, max_length=32, description="kind code or label, e.g. 占道经营")
    ],
    confidence: Annotated[float, Form(ge=0, le=1)],
    detected_at: Annotated[
        datetime, Form(description="ISO-8601; without an offset it is read in the city's time")
    ],
    snapshot: Annotated[UploadFile, File(description="JPEG, PNG or WebP snapshot")],
    x_api_key: ApiKeyHeader = None,
) -> DetectionOut:
    session, now = writing.session, writing.now
    key = service.authenticate_device(session, x_api_key, "camera", now)
    settings = request.app.state.settings
    data = snapshot.file.read(settings.media_limits.max_photo_bytes + 1)
    result = service.receive_detection(
        session,
        service.DetectionIn(camera, kind, confidence, detected_at, data, snapshot.filename),
        key=key,
        places=writing.places,
        calendar=writing.calendar,
        now=now,
        media_dir=settings.media_dir,
        media_limits=settings.media_limits,
    )
    if result.replayed:
        response.status_code = 200
    return _detection_out(
        result.detection,
        service.get_camera(session, camera),
        session.get(DetectionKind, result.detection.kind),
        result.case,
        result.replayed,
    )


@router.get(
    "/detections", response_model=list[DetectionOut], summary="Latest detections 最新识别记录"
)
def get_detections(
    session: SessionDep,
    user: UserDep,
    camera: str | None = None,
    kind: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DetectionOut]:
    _centre(user)
    kinds = {k.code: k for k in service.list_detection_kinds(session)}
    return [
        _detection_out(d, c, kinds.get(d.kind), k, False)
        for d, c, k in service.list_detections(session, camera=camera, kind=kind, limit=limit)
    ]


@router.get(
    "/detection-kinds",
    response_model=list[DetectionKindOut],
    summary="What cameras recognise, and its class 识别类型",
)
def get_detection_kinds(session: SessionDep, user: UserDep) -> list[DetectionKindOut]:
    return [
        DetectionKindOut.model_validate(k, from_attributes=True)
        for k in service.list_detection_kinds(session)
    ]


@router.patch(
    "/detection-kinds/{code}",
    response_model=DetectionKindOut,
    summary="Re-map a kind or tune its confidence bar 修改识别类型",
)
def patch_detection_kind(
    code: str, body: DetectionKindPatch, session: SessionDep, user: UserDep
) -> DetectionKindOut:
    _admin(user)
    kind = service.update_detection_kind(session, code, body.model_dump(exclude_unset=True))
    return DetectionKindOut.model_validate(kind, from_attributes=True)


# -- cameras -----------------------------------------------------------------------------------
def _camera_out(view: service.CameraView) -> CameraOut:
    out = CameraOut.model_validate(view.camera, from_attributes=True)
    out.open_cases, out.detections_24h = view.open_cases, view.detections_24h
    return out


@router.get("/cameras", response_model=list[CameraOut], summary="Cameras on the map 视频点位")
def get_cameras(
    session: SessionDep,
    user: UserDep,
    now: NowDep,
    district: str | None = None,
    include_inactive: bool = False,
) -> list[CameraOut]:
    views = service.list_cameras(
        session, now=now, district=district, include_inactive=include_inactive
    )
    return [_camera_out(v) for v in views]


@router.post(
    "/cameras", response_model=CameraOut, status_code=201, summary="Register a camera 登记摄像头"
)
def post_camera(
    body: CameraIn, session: SessionDep, user: UserDep, places: PlacesDep, now: NowDep
) -> CameraOut:
    _admin(user)
    camera = service.register_camera(session, places, now=now, **body.model_dump())
    return _camera_out(service.CameraView(camera, 0, 0))


@router.patch("/cameras/{code}", response_model=CameraOut, summary="Edit a camera 修改摄像头")
def patch_camera(
    code: str, body: CameraPatch, session: SessionDep, user: UserDep, places: PlacesDep
) -> CameraOut:
    _admin(user)
    camera = service.update_camera(
        session, code, body.model_dump(exclude_unset=True), places=places
    )
    return _camera_out(service.CameraView(camera, 0, 0))


# -- sensors -----------------------------------------------------------------------------------
_DERIVED = frozenset({"kind_label", "state", "state_label", "open_case"})


def _sensor_out(view: service.SensorView) -> SensorOut:
    sensor: Sensor = view.sensor
    state = service.sensor_state(sensor)
    return SensorOut(
        **{name: getattr(sensor, name) for name in SensorOut.model_fields if name not in _DERIVED},
        kind_label=service.SENSOR_KIND_INFO[sensor.kind].label,
        state=state,
        state_label=service.SENSOR_STATES[state],
        open_case=_case_ref(view.case),
    )


@router.get("/sensors", response_model=list[SensorOut], summary="Sensors on the map 感知设备")
def get_sensors(
    session: SessionDep,
    user: UserDep,
    kind: str | None = None,
    state: Annotated[str | None, Query(description="normal, alarm or silent")] = None,
    district: str | None = None,
    include_inactive: bool = False,
) -> list[SensorOut]:
    views = service.list_sensors(
        session, kind=kind, state=state, district=district, include_inactive=include_inactive
    )
    return [_sensor_out(v) for v in views]


@router.get(
    "/sensors/{code}",
    response_model=SensorDetailOut,
    summary="A sensor and its latest readings 设备详情",
)
def get_sensor(
    code: str,
    session: SessionDep,
    user: UserDep,
    readings: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> SensorDetailOut:
    view, recent = service.sensor_detail(session, code, readings=readings)
    return SensorDetailOut(
        **_sensor_out(view).model_dump(),
        readings=[ReadingOut.model_validate(r, from_attributes=True) for r in recent],
    )


@router.post(
    "/sensors", response_model=SensorOut, status_code=201, summary="Register a sensor 登记设备"
)
def post_sensor(
    body: SensorIn, session: SessionDep, user: UserDep, places: PlacesDep, now: NowDep
) -> SensorOut:
    _admin(user)
    sensor = service.register_sensor(session, places, now=now, **body.model_dump())
    return _sensor_out(service.SensorView(sensor, None))


@router.patch("/sensors/{code}", response_model=SensorOut, summary="Edit a sensor 修改设备")
def patch_sensor(
    code: str, body: SensorPatch, session: SessionDep, user: UserDep, places: PlacesDep
) -> SensorOut:
    _admin(user)
    service.update_sensor(
        session, code, body.model_dump(exclude_unset=True), places=places
    )
    view, _ = service.sensor_detail(session, code, readings=1)
    return _sensor_out(view)


@router.post(
    "/sensors/{code}/readings",
    response_model=ReadingResultOut,
    status_code=201,
    summary="A reading over HTTP 设备读数 (same contract as MQTT; API key in X-Api-Key)",
    responses={200: {"description": "a reading already received (same sensor and ts)"}},
)
def post_reading(
    code: str,
    body: ReadingIn,
    request: Request,
    response: Response,
    writing: CaseWritingDep,
    x_api_key: ApiKeyHeader = None,
) -> ReadingResultOut:
    session, now = writing.session, writing.now
    key = service.authenticate_device(session, x_api_key, "sensor", now)
    service.check_key_device(key, code)
    reading = service.parse_reading(
        body.model_dump(), timezone=request.app.state.settings.timezone, now=now
    )
    result = service.record_reading(
        session, code, reading, places=writing.places, calendar=writing.calendar, now=now
    )
    if result.outcome == "duplicate":
        response.status_code = 200
    return ReadingResultOut(
        sensor=result.sensor.code,
        outcome=result.outcome,
        state=service.sensor_state(result.sensor),
        case=_case_ref(result.case),
        case_created=result.case_created,
    )


# -- device keys and counters ------------------------------------------------------------------
def _key_out(row: DeviceKey) -> DeviceKeyOut:
    return DeviceKeyOut.model_validate(row, from_attributes=True)


@router.post(
    "/device-keys",
    response_model=DeviceKeyCreated,
    status_code=201,
    summary="Issue a device API key 设备密钥 (the key is shown once)",
)
def post_device_key(
    body: DeviceKeyIn, session: SessionDep, user: UserDep, now: NowDep
) -> DeviceKeyCreated:
    _admin(user)
    row, key = service.issue_device_key(session, now=now, **body.model_dump())
    return DeviceKeyCreated(**_key_out(row).model_dump(), key=key)


@router.get("/device-keys", response_model=list[DeviceKeyOut], summary="Device keys 设备密钥")
def get_device_keys(session: SessionDep, user: UserDep) -> list[DeviceKeyOut]:
    _admin(user)
    return [_key_out(row) for row in service.list_device_keys(session)]


@router.delete(
    "/device-keys/{key_id}", response_model=DeviceKeyOut, summary="Revoke a device key 吊销密钥"
)
def delete_device_key(key_id: int, session: SessionDep, user: UserDep) -> DeviceKeyOut:
    _admin(user)
    return _key_out(service.revoke_device_key(session, key_id))


@router.get(
    "/iot/stats",
    response_model=StatsOut,
    summary="Sensors by state, traffic, refused messages 物联接入统计",
)
def get_stats(session: SessionDep, user: UserDep, now: NowDep) -> StatsOut:
    return StatsOut(**service.stats(session, now=now))
