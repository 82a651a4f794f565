"""The MQTT bridge while PostgreSQL is away (R-IN-8): a private cluster stops while alarm
readings keep arriving on the real Mosquitto broker. The bridge neither crashes nor drops
them: each reading waits (unacknowledged) until the database is back, and then every one is
recorded once, with one open case for the gauge."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cityloop.iot.models import Sensor, SensorReading
from tests.faults.harness import (
    PrivateCluster,
    Proc,
    build_city,
    engine_for,
    grid_points,
    postgres_bin,
    process_env,
    wait_until,
)
from tests.faults.test_bridge_kill import _client, broker, register_gauges  # noqa: F401

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(postgres_bin() is None, reason="needs PostgreSQL's server binaries"),
]


def _count(url: str) -> tuple[int, int]:
    engine = engine_for(url)
    try:
        with Session(engine) as session:
            readings = session.scalar(select(func.count()).select_from(SensorReading)) or 0
            open_cases = (
                session.scalar(
                    select(func.count()).select_from(Sensor).where(Sensor.open_case_id.is_not(None))
                )
                or 0
            )
            return int(readings), int(open_cases)
    finally:
        engine.dispose()


def test_readings_wait_for_the_database_and_none_is_lost(tmp_path, broker):  # noqa: F811
    cluster = PrivateCluster().init()
    cluster.start()
    bridge = None
    publisher = None
    try:
        url = cluster.create_database("city")
        build_city(url, tmp_path / "media")
        city = SimpleNamespace(url=url, points=grid_points(url), data_dir=tmp_path)
        run = uuid.uuid4().hex[:8]
        (code,) = register_gauges(city, 1, run)
        prefix = f"cityloop-away/{run}/sensors"
        env = process_env(
            url,
            tmp_path,
            CITYLOOP_MQTT_HOST=broker[0],
            CITYLOOP_MQTT_PORT=str(broker[1]),
            CITYLOOP_MQTT_CLIENT_ID=f"cityloop-away-{run}",
            CITYLOOP_MQTT_PERSISTENT_SESSION="true",
            CITYLOOP_MQTT_TOPIC_PREFIX=prefix,
        )
        bridge = Proc(["mqtt-bridge"], env, tmp_path / "bridge.log").start()
        bridge.wait_for_output("subscribed to", 60)
        publisher = _client(f"cityloop-away-pub-{run}")
        publisher.connect(*broker)
        publisher.loop_start()
        start = datetime.now(UTC) - timedelta(minutes=5)

        def publish(index: int) -> None:
            ts = (start + timedelta(seconds=index)).isoformat()
            payload = f'{{"value": {0.3 + index * 0.01:.2f}, "unit": "m", "ts": "{ts}"}}'
            publisher.publish(f"{prefix}/{code}/readings", payload, qos=1).wait_for_publish(10)

        publish(0)
        wait_until(lambda: _count(url)[0] >= 1, 30, "the first reading recorded")
        cluster.stop("immediate")
        for index in range(1, 6):  # the water keeps rising while the database is away
            publish(index)
        time.sleep(3)
        assert bridge.alive, bridge.output()
        assert "database unavailable" in bridge.output()
        cluster.start()
        wait_until(lambda: _count(url)[0] >= 6, 90, "every reading recorded")
        time.sleep(1)  # a late redelivery must change nothing
        assert _count(url) == (6, 1)
    finally:
        if publisher is not None:
            publisher.disconnect()
            publisher.loop_stop()
        if bridge is not None:
            bridge.stop()
        cluster.destroy()
