"""`kill -9` of `cityloop mqtt-bridge` in the middle of a stream of alarm readings on the
real Mosquitto broker (R-IN-8). The bridge's persistent session keeps the readings that
arrive while it is down, and the ones it had taken but not yet acknowledged come again; after
the restart every reading is recorded once, and each sensor has exactly one open case whose
timeline holds one report and one line per repeated alarm."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cityloop.cases.models import Case, CaseEvent
from cityloop.iot.models import IotCounter, Sensor, SensorReading
from cityloop.iot.service import register_sensor
from cityloop.places.service import PlaceIndex
from tests.faults.harness import Proc, audit, engine_for, process_env, wait_until

MQTT_HOST = os.environ.get("CITYLOOP_TEST_MQTT_HOST", "127.0.0.1")
MQTT_PORT = int(os.environ.get("CITYLOOP_TEST_MQTT_PORT", "1883"))


@pytest.fixture
def broker() -> tuple[str, int]:
    try:
        socket.create_connection((MQTT_HOST, MQTT_PORT), timeout=2).close()
    except OSError as exc:
        if os.environ.get("CI"):
            raise RuntimeError(f"the MQTT broker is required in CI: {exc}") from exc
        pytest.skip(f"MQTT broker unreachable at {MQTT_HOST}:{MQTT_PORT}: {exc}")
    return MQTT_HOST, MQTT_PORT


def register_gauges(city_db, count: int, run: str) -> list[str]:
    engine = engine_for(city_db.url)
    codes = [f"WL-{run}-{i:02d}" for i in range(count)]
    try:
        with Session(engine) as session:
            places = PlaceIndex.load(session)
            for code, (lon, lat) in zip(codes, city_db.points[::7], strict=False):
                register_sensor(
                    session,
                    places,
                    code=code,
                    kind="water_level",
                    name=f"积水监测{code}",
                    lon=lon,
                    lat=lat,
                    threshold=0.15,
                    now=datetime.now(UTC) - timedelta(hours=1),
                )
            session.commit()
    finally:
        engine.dispose()
    return codes


def stored_readings(city_db) -> int:
    engine = engine_for(city_db.url)
    try:
        with Session(engine) as session:
            return int(session.scalar(select(func.count()).select_from(SensorReading)) or 0)
    finally:
        engine.dispose()


def _client(client_id: str, *, clean: bool = True) -> mqtt.Client:
    return mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=clean,
        protocol=mqtt.MQTTv311,
    )


def bridge_killed_mid_stream(city_db, broker, *, gauges: int, readings: int) -> dict:
    run = uuid.uuid4().hex[:8]
    codes = register_gauges(city_db, gauges, run)
    client_id = f"cityloop-fault-{run}"
    prefix = f"cityloop-fault/{run}/sensors"
    env = process_env(
        city_db.url,
        city_db.data_dir,
        CITYLOOP_MQTT_HOST=broker[0],
        CITYLOOP_MQTT_PORT=str(broker[1]),
        CITYLOOP_MQTT_CLIENT_ID=client_id,
        CITYLOOP_MQTT_PERSISTENT_SESSION="true",
        CITYLOOP_MQTT_TOPIC_PREFIX=prefix,
    )
    bridge = Proc(["mqtt-bridge"], env, city_db.data_dir / "bridge.log").start()
    publisher = _client(f"cityloop-fault-pub-{run}")
    publisher.connect(*broker)
    publisher.loop_start()
    total = gauges * readings
    start = datetime.now(UTC) - timedelta(minutes=10)

    def stream() -> None:
        # The water rises: every reading over the threshold, one a second per gauge.
        for r in range(readings):
            for code in codes:
                ts = (start + timedelta(seconds=r)).isoformat()
                payload = f'{{"value": {0.2 + r * 0.01:.2f}, "unit": "m", "ts": "{ts}"}}'
                info = publisher.publish(f"{prefix}/{code}/readings", payload, qos=1)
                info.wait_for_publish(10)
            time.sleep(0.05)

    streamer = threading.Thread(target=stream, daemon=True)
    try:
        bridge.wait_for_output("subscribed to", 60)
        streamer.start()
        wait_until(lambda: stored_readings(city_db) >= total // 3, 60, "a third of the readings")
        bridge.kill9()
        at_kill = stored_readings(city_db)
        streamer.join(60)
        bridge.start()
        wait_until(lambda: stored_readings(city_db) >= total, 90, "every reading recorded")
        time.sleep(0.5)  # a redelivery still on its way must change nothing either
    finally:
        bridge.stop()
        publisher.disconnect()
        publisher.loop_stop()
        # The broker would keep the persistent session (and queue for it) forever.
        cleaner = _client(client_id, clean=True)
        cleaner.connect(*broker)
        cleaner.disconnect()

    engine = engine_for(city_db.url)
    try:
        with Session(engine) as session:
            sensors = session.scalars(select(Sensor).where(Sensor.code.in_(codes))).all()
            cases = session.scalars(select(Case).where(Case.source == "sensor")).all()
            outcomes = Counter(
                (sensor_id, outcome)
                for sensor_id, outcome in session.execute(
                    select(SensorReading.sensor_id, SensorReading.outcome)
                )
            )
            per_sensor = Counter(session.scalars(select(SensorReading.sensor_id)).all())
            timelines = {
                case.id: session.scalars(
                    select(CaseEvent.action).where(CaseEvent.case_id == case.id)
                ).all()
                for case in cases
            }
            duplicates = session.get(IotCounter, "duplicate")
    finally:
        engine.dispose()
    assert len(sensors) == gauges and len(cases) == gauges
    assert {s.open_case_id for s in sensors} == {c.id for c in cases}
    for sensor in sensors:
        assert per_sensor[sensor.id] == readings, (sensor.code, per_sensor[sensor.id])
        assert outcomes[(sensor.id, "alarm")] == 1
        repeats = outcomes[(sensor.id, "repeat")]
        actions = timelines[sensor.open_case_id]
        assert Counter(actions) == Counter({"report": 1, "sensor_reading": repeats}), actions
    checked, findings = audit(city_db.url)
    assert findings == []
    return {
        "gauges": gauges,
        "readings_published": total,
        "recorded_at_kill": at_kill,
        "recorded": sum(per_sensor.values()),
        "redelivered_and_dropped": duplicates.count if duplicates is not None else 0,
        "open_cases": len(cases),
        "events_checked": checked,
    }


def test_the_bridge_killed_mid_stream_loses_and_doubles_nothing(city_db, backend, broker):
    if backend != "sqlite":
        pytest.skip("the slow variant below runs on both databases; once is enough here")
    numbers = bridge_killed_mid_stream(city_db, broker, gauges=6, readings=12)
    print(f"\n{backend}: {numbers}")


@pytest.mark.slow
def test_the_bridge_killed_mid_stream_of_many_gauges(city_db, backend, broker):
    numbers = bridge_killed_mid_stream(city_db, broker, gauges=20, readings=40)
    print(f"\n{backend}: {numbers}")
