"""Demo cameras, sensors and their traffic for the demo city (Xiamen).

Cameras watch markets and streets of 思明区, 湖里区 and 集美区 — among them 叶厝菜市场 in 集美,
whose camera reported street vending by itself at 17:58:05 on 27 August (seed 002). Water
gauges stand at twelve waterlogging-prone points (seed 004: "12 处易积水地段"); smart manhole
covers watch registered manhole components, so a cover's alarm goes to the component's owner.
Positions come from the demo geometry (the community's sample point), not from a survey.

With ``activity=True`` the demo also plays some traffic through the real services: readings
(normal, an ongoing flood, a recovered one, a silent gauge, a tilted and a missing cover) and
camera detections (filed, joined as a repeat, sent to verification). The keys below are for
the demo city only and are documented in docs/channels/.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityloop.assets.models import Component
from cityloop.iot import service
from cityloop.iot.models import Camera, Sensor
from cityloop.places.demo_xiamen import sample_point
from cityloop.places.service import PlaceIndex
from cityloop.taxonomy.service import working_calendar

DEMO_CAMERA_KEY = "demo-camera-key"
DEMO_SENSOR_KEY = "demo-sensor-key"

# (code, name, community, address, offset in 1e-4 degrees so that neighbours do not overlap)
DEMO_CAMERAS: tuple[tuple[str, str, str, str, tuple[int, int]], ...] = (
    ("JM-QY-0001", "叶厝菜市场东门", "350211002004", "集美区侨英街道叶厝菜市场东门", (0, 0)),
    ("JM-QY-0002", "叶厝菜市场南侧", "350211002004", "集美区侨英街道叶厝菜市场南侧", (6, -4)),
    ("JM-JM-0001", "石鼓路", "350211001001", "集美区集美街道石鼓路", (0, 0)),
    ("SM-KY-0001", "第八市场", "350203007013", "思明区开禾路第八市场", (0, 0)),
    ("SM-ZH-0001", "中山路步行街", "350203003001", "思明区中山路步行街", (0, 0)),
    ("SM-WC-0001", "厦禾路文灶路口", "350203008002", "思明区厦禾路文灶路口", (3, 3)),
    ("SM-JL-0001", "嘉禾路莲坂", "350203011008", "思明区嘉禾路莲坂", (0, 0)),
    ("SM-JL-0002", "明发商业广场", "350203011003", "思明区嘉莲街道明发商业广场", (0, 0)),
    ("HL-JT-0001", "江头菜市场", "350206004001", "湖里区江头街道江头菜市场", (0, 0)),
    ("HL-JT-0002", "吕岭路吕厝路口", "350206004002", "湖里区吕岭路吕厝路口", (0, 0)),
    ("HL-HL-0001", "湖里大道", "350206001001", "湖里区湖里大道", (0, 0)),
    ("HL-DQ-0001", "殿前菜市场", "350206002004", "湖里区殿前街道殿前菜市场", (0, 0)),
)

# The waterlogging points: (gauge code, name, community, address).
WATERLOGGING_POINTS: tuple[tuple[str, str, str, str], ...] = (
    ("WL-SM-01", "厦禾路文灶段", "350203008002", "思明区厦禾路文灶段"),
    ("WL-SM-02", "湖滨南路梧村段", "350203008001", "思明区湖滨南路梧村段"),
    ("WL-SM-03", "嘉禾路莲坂下穿通道", "350203011008", "思明区嘉禾路莲坂下穿通道"),
    ("WL-SM-04", "思明南路厦港段", "350203001001", "思明区思明南路厦港段"),
    ("WL-SM-05", "中山路镇海段", "350203003003", "思明区中山路镇海段"),
    ("WL-SM-06", "湖滨东路筼筜段", "350203009008", "思明区湖滨东路筼筜段"),
    ("WL-SM-07", "莲前西路龙山桥", "350203010007", "思明区莲前西路龙山桥"),
    ("WL-HL-01", "吕岭路吕岭段", "350206004003", "湖里区吕岭路吕岭段"),
    ("WL-HL-02", "湖里大道村里段", "350206001002", "湖里区湖里大道村里段"),
    ("WL-HL-03", "长乐路殿前段", "350206002005", "湖里区长乐路殿前段"),
    ("WL-HL-04", "五通路五通段", "350206005014", "湖里区五通路五通段"),
    ("WL-JM-01", "侨英路浒井段", "350211002001", "集美区侨英路浒井段"),
)
MANHOLE_CLASSES = ("01001", "01002", "01003")
MANHOLE_COVERS = 8

# (camera, kind, confidence, minutes before now)
DEMO_DETECTIONS: tuple[tuple[str, str, float, float], ...] = (
    ("JM-QY-0001", "street_vending", 0.93, 95),
    ("JM-QY-0001", "street_vending", 0.91, 89),  # the same stall six minutes on: joins
    ("SM-KY-0001", "outside_shop", 0.62, 70),  # not sure enough: to verification
    ("HL-JT-0001", "bin_overflow", 0.88, 55),
    ("SM-ZH-0001", "bike_parking", 0.85, 40),
    ("SM-WC-0001", "illegal_posting", 0.55, 25),
)


def _point(places: PlaceIndex, community: str, offset: tuple[int, int]) -> tuple[float, float]:
    lon, lat = sample_point(places, community)
    moved = (lon + offset[0] * 1e-4, lat + offset[1] * 1e-4)
    return moved if places.locate(*moved) is not None else (lon, lat)


def _snapshot(kind: str) -> bytes:
    """A generated street scene: a kerb and some coloured blocks for the violation."""
    from PIL import Image, ImageDraw

    colours = {
        "street_vending": "#c8553d",
        "outside_shop": "#8d6a9f",
        "bin_overflow": "#4f772d",
        "bike_parking": "#2d6a9f",
        "illegal_posting": "#e0c341",
    }
    image = Image.new("RGB", (320, 240), "#9a9a9a")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 170, 320, 240), fill="#6d6d6d")
    fill = colours.get(kind, "#444444")
    for x in range(30, 290, 55):
        draw.rectangle((x, 120 + x % 25, x + 40, 175), fill=fill)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def build(
    session: Session,
    *,
    now: datetime | None = None,
    places: PlaceIndex | None = None,
    media_dir: Path | None = None,
    activity: bool = True,
) -> dict[str, int]:
    """Register the demo cameras, gauges and covers (and with ``activity``, play readings and
    detections through the services). Flushes; the caller commits. Run it once, after the
    city, its taxonomy and its components are built."""
    now = now or datetime.now(UTC)
    places = places or PlaceIndex.load(session)
    summary: dict[str, int] = {"detection_kinds": service.seed_detection_kinds(session)}
    if session.scalar(select(Camera.id).limit(1)) is not None:
        raise ValueError("the demo cameras already exist in this database")
    registered = now - timedelta(days=30)
    for code, name, community, address, offset in DEMO_CAMERAS:
        lon, lat = _point(places, community, offset)
        service.register_camera(
            session,
            places,
            code=code,
            name=name,
            lon=lon,
            lat=lat,
            now=registered,
            address=address,
        )
    summary["cameras"] = len(DEMO_CAMERAS)
    for code, name, community, address in WATERLOGGING_POINTS:
        lon, lat = _point(places, community, (2, -2))
        service.register_sensor(
            session,
            places,
            code=code,
            kind="water_level",
            name=f"{name}智能水尺",
            lon=lon,
            lat=lat,
            address=address,
            now=registered,
        )
    covers: list[Component] = []
    for class_code in MANHOLE_CLASSES:  # a few covers of each kind of manhole
        covers += session.scalars(
            select(Component)
            .where(Component.class_code == class_code)
            .order_by(Component.identifier)
            .limit(MANHOLE_COVERS // len(MANHOLE_CLASSES) + 1)
        ).all()
    covers = covers[:MANHOLE_COVERS]
    for component in covers:
        service.register_sensor(
            session,
            places,
            code=f"MC-{component.identifier}",
            kind="manhole_cover",
            name=f"{component.name}{component.identifier[-6:]}",
            component_id=component.identifier,
            now=registered,
        )
    summary["sensors"] = len(WATERLOGGING_POINTS) + len(covers)
    service.issue_device_key(
        session, name="视频AI分析平台（演示）", kind="camera", now=registered, key=DEMO_CAMERA_KEY
    )
    service.issue_device_key(
        session, name="物联网平台（演示）", kind="sensor", now=registered, key=DEMO_SENSOR_KEY
    )
    if activity:
        summary.update(_activity(session, places, now, media_dir, [c.identifier for c in covers]))
    session.flush()
    return summary


def play(
    session: Session, *, now: datetime, places: PlaceIndex, media_dir: Path | None = None
) -> dict[str, int]:
    """Play the demo traffic on devices registered earlier by ``build(activity=False)``."""
    covers = [
        s.component_id
        for s in session.scalars(
            select(Sensor).where(Sensor.kind == "manhole_cover").order_by(Sensor.code)
        )
        if s.component_id
    ]
    return _activity(session, places, now, media_dir, covers)


def _activity(
    session: Session,
    places: PlaceIndex,
    now: datetime,
    media_dir: Path | None,
    covers: list[str],
) -> dict[str, int]:
    from cityloop.config import get_settings

    settings = get_settings()
    calendar = working_calendar(session, settings.timezone)
    readings = 0

    def read(code: str, minutes_ago: float, value: float, signal: str | None = None) -> Any:
        nonlocal readings
        at = now - timedelta(minutes=minutes_ago)
        sensor = session.scalar(select(Sensor).where(Sensor.code == code))
        assert sensor is not None
        reading = service.ReadingIn(value, sensor.unit, at, signal)
        readings += 1
        return service.record_reading(
            session, code, reading, places=places, calendar=calendar, now=at
        )

    flood, recovered, silent = "WL-SM-01", "WL-HL-01", "WL-HL-04"
    for index, (code, *_rest) in enumerate(WATERLOGGING_POINTS):
        if code == silent:
            read(code, 180, 0.02)
            continue
        if code == flood:
            for minutes, metres in ((40, 0.05), (25, 0.21), (10, 0.32), (2, 0.35)):
                read(code, minutes, metres)
            continue
        if code == recovered:
            for minutes, metres in ((90, 0.18), (50, 0.12), (12, 0.06)):
                read(code, minutes, metres)
        read(code, 2, round(0.01 * (index % 4), 2))
    for index, identifier in enumerate(covers):
        code = f"MC-{identifier}"
        if index == 0:
            read(code, 15, 38.0, "tilt")
        elif index == 1:
            read(code, 28, 0.0, "missing")
        else:
            read(code, 5, float(index % 3), "ok")
    flagged = service.flag_silent_sensors(session, now=now)

    key = service.authenticate_device(session, DEMO_CAMERA_KEY, "camera", now)
    directory = media_dir or settings.media_dir
    for camera, kind, confidence, minutes_ago in DEMO_DETECTIONS:
        at = now - timedelta(minutes=minutes_ago)
        service.receive_detection(
            session,
            service.DetectionIn(camera, kind, confidence, at, _snapshot(kind), f"{camera}.jpg"),
            key=key,
            places=places,
            calendar=calendar,
            now=at + timedelta(seconds=3),
            media_dir=directory,
            media_limits=settings.media_limits,
        )
    return {"readings": readings, "silent": len(flagged), "detections": len(DEMO_DETECTIONS)}
