"""Fixtures for IoT intake: a desk that registers devices and posts as they do (through the
API), a committed database and a running bridge for the MQTT tests, and the real broker.

The broker comes from CITYLOOP_TEST_MQTT_HOST / _PORT (default 127.0.0.1:1883). When it
cannot be reached the broker tests are skipped on a laptop, and fail in CI (CI=true), as the
PostgreSQL half of the suite does.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from tests.conftest import _engine_for, jpeg_bytes

from cityloop.db import Base, make_session_factory
from cityloop.iot.bridge import Bridge
from cityloop.iot.service import seed_detection_kinds
from cityloop.iot.settings import MqttSettings
from cityloop.kit.clock import SettableClock
from cityloop.places import demo_xiamen
from cityloop.places.service import PlaceIndex
from cityloop.taxonomy.service import seed_defaults

MQTT_HOST = os.environ.get("CITYLOOP_TEST_MQTT_HOST", "127.0.0.1")
MQTT_PORT = int(os.environ.get("CITYLOOP_TEST_MQTT_PORT", "1883"))
YECUO = "350211002004"  # 叶厝社区, 侨英街道, 集美区 (seed 002's market)
RUN = uuid.uuid4().hex[:8]  # keeps codes and topics of parallel runs apart


def unique(prefix: str) -> str:
    return f"{prefix}-{RUN}-{uuid.uuid4().hex[:6]}"


class Devices:
    """Registers cameras, sensors and keys as the administrator does, and posts as devices do."""

    def __init__(
        self,
        client: TestClient,
        auth: Callable[[str], dict[str, str]],
        places: PlaceIndex,
        clock: SettableClock,
    ) -> None:
        self.client = client
        self.auth = auth
        self.places = places
        self.clock = clock

    def point(self, community: str) -> tuple[float, float]:
        return demo_xiamen.sample_point(self.places, community)

    def camera(self, community: str = YECUO, name: str = "叶厝菜市场东门", **extra: Any) -> str:
        code = extra.pop("code", unique("CAM"))
        lon, lat = self.point(community)
        response = self.client.post(
            "/api/v1/cameras",
            json={"code": code, "name": name, "lon": lon, "lat": lat, **extra},
            headers=self.auth("admin"),
        )
        assert response.status_code == 201, response.text
        return code

    def sensor(self, kind: str = "water_level", community: str = YECUO, **extra: Any) -> str:
        code = extra.pop("code", unique("S"))
        body: dict[str, Any] = {"code": code, "kind": kind, "name": f"测试{code}", **extra}
        if "component_id" not in extra:
            body["lon"], body["lat"] = self.point(community)
        response = self.client.post("/api/v1/sensors", json=body, headers=self.auth("admin"))
        assert response.status_code == 201, response.text
        return code

    def key(self, kind: str = "camera", device_code: str | None = None) -> str:
        response = self.client.post(
            "/api/v1/device-keys",
            json={"name": f"测试{kind}平台", "kind": kind, "device_code": device_code},
            headers=self.auth("admin"),
        )
        assert response.status_code == 201, response.text
        return str(response.json()["key"])

    def detect(
        self,
        key: str | None,
        camera: str,
        kind: str = "street_vending",
        confidence: float | str = 0.93,
        detected_at: str | None = None,
        snapshot: bytes | None = None,
        **fields: Any,
    ) -> Any:
        if detected_at is None:
            detected_at = (self.clock.now() - timedelta(seconds=2)).isoformat()
        data = {
            "camera": camera,
            "kind": kind,
            "confidence": str(confidence),
            "detected_at": detected_at,
            **fields,
        }
        photo = jpeg_bytes("brown") if snapshot is None else snapshot
        files = {"snapshot": ("snap.jpg", photo, "image/jpeg")}
        headers = {"X-Api-Key": key} if key else {}
        return self.client.post("/api/v1/detections", data=data, files=files, headers=headers)

    def read(self, key: str | None, sensor: str, **payload: Any) -> Any:
        headers = {"X-Api-Key": key} if key else {}
        return self.client.post(f"/api/v1/sensors/{sensor}/readings", json=payload, headers=headers)

    def case(self, case_id: int, user: str = "admin") -> dict[str, Any]:
        response = self.client.get(f"/api/v1/cases/{case_id}", headers=self.auth(user))
        assert response.status_code == 200, response.text
        return dict(response.json())


@pytest.fixture
def devices(
    client: TestClient,
    auth: Callable[[str], dict[str, str]],
    city_session: Session,
    city_places: PlaceIndex,
    clock: SettableClock,
) -> Devices:
    seed_detection_kinds(city_session)  # idempotent: the demo city may hold them already
    city_session.flush()
    return Devices(client, auth, city_places, clock)


# -- the broker and the bridge -----------------------------------------------------------------
@pytest.fixture(scope="session")
def broker() -> tuple[str, int]:
    try:
        socket.create_connection((MQTT_HOST, MQTT_PORT), timeout=2).close()
    except OSError as exc:
        if os.environ.get("CI"):
            raise RuntimeError(
                f"the MQTT broker is required in CI but unreachable at {MQTT_HOST}:{MQTT_PORT}"
            ) from exc
        pytest.skip(f"MQTT broker unreachable at {MQTT_HOST}:{MQTT_PORT}: {exc}")
    return MQTT_HOST, MQTT_PORT


@pytest.fixture(scope="session")
def bridge_engine(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A database whose writes are committed, as the bridge's are: the taxonomy, the demo
    places and the detection kinds. Tests use their own device codes in it."""
    engine = _engine_for(backend, "cityloop_test_iot", tmp_path_factory.mktemp("iot"))
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        seed_defaults(session)
        demo_xiamen.build(session)
        seed_detection_kinds(session)
        session.commit()
    yield engine
    engine.dispose()


@pytest.fixture
def bridge_factory(bridge_engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(bridge_engine)


def mqtt_settings(host: str, port: int, **extra: Any) -> MqttSettings:
    run = uuid.uuid4().hex[:10]
    values: dict[str, Any] = {
        "host": host,
        "port": port,
        "client_id": f"cityloop-test-{run}",
        "persistent_session": False,
        "topic_prefix": f"cityloop-test/{run}/sensors",
        "silence_check_seconds": 3600.0,
        **extra,
    }
    return MqttSettings(**values)


@dataclass
class RunningBridge:
    bridge: Bridge
    settings: MqttSettings
    publisher: mqtt.Client
    thread: threading.Thread

    def publish(self, sensor: str, payload: str | bytes, *, topic: str | None = None) -> None:
        info = self.publisher.publish(
            topic or f"{self.settings.topic_prefix}/{sensor}/readings", payload, qos=1
        )
        info.wait_for_publish(timeout=5)
        assert info.is_published()


def start_bridge(
    factory: sessionmaker[Session], places: PlaceIndex, settings: MqttSettings
) -> tuple[Bridge, threading.Event, threading.Thread]:
    bridge = Bridge(factory, places, settings=settings)
    stop = threading.Event()
    thread = threading.Thread(target=bridge.run, args=(stop,), daemon=True)
    thread.start()
    assert bridge.ready.wait(10), "the bridge did not subscribe within 10 s"
    return bridge, stop, thread


def publisher_for(host: str, port: int) -> mqtt.Client:
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"cityloop-test-pub-{uuid.uuid4().hex[:10]}"
    )
    client.connect(host, port)
    client.loop_start()
    return client


@pytest.fixture
def running_bridge(
    broker: tuple[str, int], bridge_factory: sessionmaker[Session], city_places: PlaceIndex
) -> Iterator[RunningBridge]:
    settings = mqtt_settings(*broker)
    bridge, stop, thread = start_bridge(bridge_factory, city_places, settings)
    publisher = publisher_for(*broker)
    try:
        yield RunningBridge(bridge, settings, publisher, thread)
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        stop.set()
        thread.join(10)


def wait_for(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Poll until check() returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing after {timeout} s")
        time.sleep(0.05)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()
