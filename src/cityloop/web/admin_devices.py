"""Administration of the devices that report by themselves: cameras (R-IN-7), sensors with
their alarm thresholds (R-IN-8), and the device API keys they authenticate with (shown once,
revoked). Every write goes through `iot.service`, the same functions the JSON API calls; a new
position is located in the grids again by the service."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from cityloop.errors import DomainError, NotFound
from cityloop.iot import service as iot
from cityloop.iot.models import DEVICE_KEY_KINDS, Camera, Sensor
from cityloop.web.admin import error_of, guard
from cityloop.web.admin_org import read_number, read_whole
from cityloop.web.i18n import translate
from cityloop.web.page import FormDep, Page, StaffPageDep, text

router = APIRouter()


def _places(page: Page) -> Any:
    return page.request.app.state.places()


def _position(
    values: dict[str, str], errors: dict[str, str], lang: str, *, required: bool
) -> dict[str, float]:
    """lon and lat as typed: both numbers, or (when not required) both empty."""
    if not required and not values["lon"] and not values["lat"]:
        return {}
    lon = read_number(values["lon"], "lon", errors, lang)
    lat = read_number(values["lat"], "lat", errors, lang)
    return {"lon": lon, "lat": lat} if lon is not None and lat is not None else {}


# -- cameras -----------------------------------------------------------------------------------
CAMERA_FIELDS = ("code", "name", "lon", "lat", "address")


def _cameras_page(
    page: Page,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return page.render(
        "admin_cameras.html",
        status_code,
        rows=iot.list_cameras(page.db, now=page.now, include_inactive=True),
        values=values or {},
        errors=errors or {},
    )


@router.get("/admin/cameras")
def camera_list(page: StaffPageDep) -> Response:
    return guard(page) or _cameras_page(page)


@router.post("/admin/cameras")
def camera_create(page: StaffPageDep, form: FormDep) -> Response:
    refused = guard(page, form)
    if refused:
        return refused
    values = {name: text(form, name) for name in CAMERA_FIELDS}
    errors: dict[str, str] = {}
    position = _position(values, errors, page.lang, required=True)
    if errors:
        return _cameras_page(page, values, errors, 422)
    try:
        camera = iot.register_camera(
            page.db,
            _places(page),
            code=values["code"],
            name=values["name"],
            lon=position["lon"],
            lat=position["lat"],
            address=values["address"] or None,
            now=page.now,
        )
    except DomainError as exc:
        page.db.rollback()
        return _cameras_page(page, values, error_of(exc, values), exc.status_code)
    return page.redirect(f"/admin/cameras/{camera.code}?saved=1")


def _camera_page(
    page: Page,
    camera: Camera,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    saved: bool = False,
) -> Response:
    current = {
        "name": camera.name,
        "lon": str(camera.lon),
        "lat": str(camera.lat),
        "address": camera.address or "",
        "active": "yes" if camera.active else "no",
    }
    return page.render(
        "admin_camera.html",
        status_code,
        row=camera,
        values={**current, **(values or {})},
        errors=errors or {},
        saved=saved,
        keys=[k for k in iot.list_device_keys(page.db) if k.device_code == camera.code],
    )


def _camera(page: Page, code: str) -> Camera | None:
    try:
        return iot.get_camera(page.db, code)
    except NotFound:
        return None


@router.get("/admin/cameras/{code}")
def camera_form(code: str, page: StaffPageDep, saved: str = "") -> Response:
    refused = guard(page)
    if refused:
        return refused
    camera = _camera(page, code)
    if camera is None:
        return page.error(404, f"camera {code} is not registered")
    return _camera_page(page, camera, saved=bool(saved))


@router.post("/admin/cameras/{code}")
def camera_save(code: str, page: StaffPageDep, form: FormDep) -> Response:
    refused = guard(page, form)
    if refused:
        return refused
    camera = _camera(page, code)
    if camera is None:
        return page.error(404, f"camera {code} is not registered")
    values = {name: text(form, name) for name in ("name", "lon", "lat", "address")}
    values["active"] = "yes" if text(form, "active") == "yes" else "no"
    errors: dict[str, str] = {}
    position = _position(values, errors, page.lang, required=True)
    if errors:
        return _camera_page(page, camera, values, errors, 422)
    changes = {
        "name": values["name"],
        "address": values["address"] or None,
        "active": values["active"] == "yes",
        **position,
    }
    try:
        iot.update_camera(page.db, code, changes, places=_places(page))
    except DomainError as exc:
        page.db.rollback()
        camera = _camera(page, code)
        assert camera is not None
        return _camera_page(page, camera, values, error_of(exc, values), exc.status_code)
    return page.redirect(f"/admin/cameras/{code}?saved=1")


# -- sensors -----------------------------------------------------------------------------------
SENSOR_FIELDS = (
    "code",
    "kind",
    "name",
    "lon",
    "lat",
    "address",
    "component_id",
    "class_code",
    "threshold",
    "silent_after_minutes",
)


def _kind_options(lang: str) -> list[tuple[str, str]]:
    return [
        (kind, info.label_en if lang == "en" else info.label)
        for kind, info in iot.SENSOR_KIND_INFO.items()
    ]


def _state_label(sensor: Sensor, lang: str) -> str:
    return translate(f"sensor_state_{iot.sensor_state(sensor)}", lang)


def _sensors_page(
    page: Page,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    views = iot.list_sensors(page.db, include_inactive=True)
    return page.render(
        "admin_sensors.html",
        status_code,
        rows=[(v.sensor, v.case, _state_label(v.sensor, page.lang)) for v in views],
        kinds=dict(_kind_options(page.lang)),
        kind_options=_kind_options(page.lang),
        values=values or {"kind": "water_level", "silent_after_minutes": "30"},
        errors=errors or {},
    )


@router.get("/admin/sensors")
def sensor_list(page: StaffPageDep) -> Response:
    return guard(page) or _sensors_page(page)


@router.post("/admin/sensors")
def sensor_create(page: StaffPageDep, form: FormDep) -> Response:
    """Register a gauge or a manhole cover; without a position it takes its component's."""
    refused = guard(page, form)
    if refused:
        return refused
    values = {name: text(form, name) for name in SENSOR_FIELDS}
    errors: dict[str, str] = {}
    position = _position(values, errors, page.lang, required=not values["component_id"])
    threshold = read_number(values["threshold"], "threshold", errors, page.lang, required=False)
    silent = read_whole(
        values["silent_after_minutes"] or "30", "silent_after_minutes", errors, page.lang
    )
    if errors or silent is None:
        return _sensors_page(page, values, errors, 422)
    try:
        sensor = iot.register_sensor(
            page.db,
            _places(page),
            code=values["code"],
            kind=values["kind"],
            name=values["name"],
            now=page.now,
            lon=position.get("lon"),
            lat=position.get("lat"),
            address=values["address"] or None,
            component_id=values["component_id"] or None,
            class_code=values["class_code"] or None,
            threshold=threshold,
            silent_after_minutes=silent,
        )
    except DomainError as exc:
        page.db.rollback()
        return _sensors_page(page, values, error_of(exc, values), exc.status_code)
    return page.redirect(f"/admin/sensors/{sensor.code}?saved=1")


def _sensor_page(
    page: Page,
    sensor: Sensor,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    saved: bool = False,
) -> Response:
    view, readings = iot.sensor_detail(page.db, sensor.code, readings=10)
    current = {
        "name": sensor.name,
        "lon": str(sensor.lon),
        "lat": str(sensor.lat),
        "address": sensor.address or "",
        "threshold": "" if sensor.threshold is None else f"{sensor.threshold:g}",
        "silent_after_minutes": str(sensor.silent_after_minutes),
        "active": "yes" if sensor.active else "no",
    }
    return page.render(
        "admin_sensor.html",
        status_code,
        row=sensor,
        case=view.case,
        readings=readings,
        state=_state_label(sensor, page.lang),
        kind=dict(_kind_options(page.lang)).get(sensor.kind, sensor.kind),
        values={**current, **(values or {})},
        errors=errors or {},
        saved=saved,
        keys=[k for k in iot.list_device_keys(page.db) if k.device_code == sensor.code],
    )


def _sensor(page: Page, code: str) -> Sensor | None:
    try:
        return iot.get_sensor(page.db, code)
    except NotFound:
        return None


@router.get("/admin/sensors/{code}")
def sensor_form(code: str, page: StaffPageDep, saved: str = "") -> Response:
    refused = guard(page)
    if refused:
        return refused
    sensor = _sensor(page, code)
    if sensor is None:
        return page.error(404, f"sensor {code} is not registered")
    return _sensor_page(page, sensor, saved=bool(saved))


@router.post("/admin/sensors/{code}")
def sensor_save(code: str, page: StaffPageDep, form: FormDep) -> Response:
    """Rename, move, set the alarm threshold (empty: alarms by signal only) or the silence
    limit, disable or enable."""
    refused = guard(page, form)
    if refused:
        return refused
    sensor = _sensor(page, code)
    if sensor is None:
        return page.error(404, f"sensor {code} is not registered")
    names = ("name", "lon", "lat", "address", "threshold", "silent_after_minutes")
    values = {name: text(form, name) for name in names}
    values["active"] = "yes" if text(form, "active") == "yes" else "no"
    errors: dict[str, str] = {}
    position = _position(values, errors, page.lang, required=True)
    threshold = read_number(values["threshold"], "threshold", errors, page.lang, required=False)
    silent = read_whole(values["silent_after_minutes"], "silent_after_minutes", errors, page.lang)
    if errors:
        return _sensor_page(page, sensor, values, errors, 422)
    changes = {
        "name": values["name"],
        "address": values["address"] or None,
        "threshold": threshold,
        "silent_after_minutes": silent,
        "active": values["active"] == "yes",
        **position,
    }
    try:
        iot.update_sensor(page.db, code, changes, places=_places(page))
    except DomainError as exc:
        page.db.rollback()
        sensor = _sensor(page, code)
        assert sensor is not None
        return _sensor_page(page, sensor, values, error_of(exc, values), exc.status_code)
    return page.redirect(f"/admin/sensors/{code}?saved=1")


# -- device keys -------------------------------------------------------------------------------
KEY_FIELDS = ("name", "kind", "device_code")


def _keys_page(
    page: Page,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    new_key: str = "",
    saved: str = "",
) -> Response:
    return page.render(
        "admin_device_keys.html",
        status_code,
        rows=iot.list_device_keys(page.db),
        kind_options=[(k, translate(f"device_kind_{k}", page.lang)) for k in DEVICE_KEY_KINDS],
        values=values or {"kind": "camera"},
        errors=errors or {},
        new_key=new_key,
        saved=saved,
    )


@router.get("/admin/device-keys")
def key_list(page: StaffPageDep, saved: str = "", kind: str = "", device: str = "") -> Response:
    refused = guard(page)
    if refused:
        return refused
    # Linked from a camera's or sensor's page: the form comes filled in for that device.
    values = {"kind": kind if kind in DEVICE_KEY_KINDS else "camera", "device_code": device[:40]}
    return _keys_page(page, values=values, saved=saved)


@router.post("/admin/device-keys")
def key_issue(page: StaffPageDep, form: FormDep) -> Response:
    """Issue a key; the page that answers shows it this once (only its SHA-256 is kept)."""
    refused = guard(page, form)
    if refused:
        return refused
    values = {name: text(form, name) for name in KEY_FIELDS}
    try:
        _row, key = iot.issue_device_key(
            page.db,
            name=values["name"],
            kind=values["kind"],
            device_code=values["device_code"] or None,
            now=page.now,
        )
    except DomainError as exc:
        page.db.rollback()
        return _keys_page(page, values, error_of(exc, values), exc.status_code)
    return _keys_page(page, new_key=key)


@router.post("/admin/device-keys/{key_id}/revoke")
def key_revoke(key_id: int, page: StaffPageDep, form: FormDep) -> Response:
    refused = guard(page, form)
    if refused:
        return refused
    try:
        iot.revoke_device_key(page.db, key_id)
    except NotFound as exc:
        page.db.rollback()
        return page.error(404, exc.message)
    return page.redirect(f"/admin/device-keys?saved={key_id}")
