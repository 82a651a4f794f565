"""The MQTT bridge against the real broker (R-IN-8): publish a reading, see the case. Malformed
messages are counted and never stop the bridge; redeliveries change nothing; two alarms at
once make one case; the bridge comes back after the broker does."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from tests.cases.helpers import YINGCUI
from tests.iot.conftest import (
    mqtt_settings,
    now_iso,
    publisher_for,
    start_bridge,
    unique,
    wait_for,
)

from cityloop.cases.models import Case, CaseEvent
from cityloop.iot import service
from cityloop.iot.bridge import Bridge
from cityloop.iot.models import IotCounter, Sensor, SensorReading
from cityloop.kit.clock import SettableClock
from cityloop.places.demo_xiamen import sample_point
from cityloop.places.service import PlaceIndex


def register(
    factory: sessionmaker[Session], places: PlaceIndex, kind: str = "water_level", **extra
) -> str:
    code = unique("WL" if kind == "water_level" else "MC")
    lon, lat = sample_point(places, YINGCUI)
    with factory() as session:
        service.register_sensor(
            session,
            places,
            code=code,
            kind=kind,
            name=f"测试{code}",
            lon=lon,
            lat=lat,
            now=datetime.now(UTC) - timedelta(minutes=1),
            **extra,
        )
        session.commit()
    return code


def reading(value: float, unit: str = "m", ts: str | None = None, **extra) -> str:
    return json.dumps({"value": value, "unit": unit, "ts": ts or now_iso(), **extra})


def sensor_row(factory: sessionmaker[Session], code: str) -> Sensor:
    with factory() as session:
        row = session.scalar(select(Sensor).where(Sensor.code == code))
        assert row is not None
        return row


def open_case(factory: sessionmaker[Session], code: str) -> Case | None:
    with factory() as session:
        sensor = session.scalar(select(Sensor).where(Sensor.code == code))
        if sensor is None or sensor.open_case_id is None:
            return None
        return session.get(Case, sensor.open_case_id)


def events(factory: sessionmaker[Session], case_id: int) -> list[str]:
    with factory() as session:
        return list(
            session.scalars(
                select(CaseEvent.action).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq)
            )
        )


def counter(factory: sessionmaker[Session], name: str) -> int:
    with factory() as session:
        row = session.get(IotCounter, name)
        return row.count if row is not None else 0


def test_a_reading_published_to_the_broker_becomes_a_case(
    running_bridge, bridge_factory, city_places
):
    """Publish over the real broker, then see the case: filed, from the sensor, at its place."""
    gauge = register(bridge_factory, city_places, threshold=0.15)
    running_bridge.publish(gauge, reading(0.03))
    wait_for(lambda: sensor_row(bridge_factory, gauge).last_reading_at)
    assert open_case(bridge_factory, gauge) is None

    running_bridge.publish(gauge, reading(0.27))
    case = wait_for(lambda: open_case(bridge_factory, gauge))
    assert (case.state, case.source, case.class_code) == ("filed", "sensor", "21001")
    assert case.community == YINGCUI and "0.27 m" in case.description

    running_bridge.publish(gauge, reading(0.31))
    running_bridge.publish(gauge, reading(0.02))
    wait_for(lambda: len(events(bridge_factory, case.id)) == 3)
    assert events(bridge_factory, case.id) == ["report", "sensor_reading", "sensor_recovered"]
    sensor = sensor_row(bridge_factory, gauge)
    assert not sensor.in_alarm and sensor.last_value == 0.02


def test_malformed_messages_are_counted_and_the_bridge_carries_on(
    running_bridge, bridge_factory, city_places
):
    gauge = register(bridge_factory, city_places)
    before = {name: counter(bridge_factory, name) for name in ("malformed", "unknown_sensor")}
    prefix = running_bridge.settings.topic_prefix
    running_bridge.publish(gauge, b"\x00\x01 not json")
    running_bridge.publish(gauge, json.dumps({"unit": "m", "ts": now_iso()}))  # no value
    running_bridge.publish(gauge, reading(1.0, unit="deg"))  # a gauge measures metres
    running_bridge.publish(gauge, reading(0.5), topic=f"{prefix}/bad code!/readings")
    running_bridge.publish(unique("NOBODY"), reading(0.5))
    running_bridge.publish(gauge, reading(0.04))  # and a good one after all that

    wait_for(lambda: sensor_row(bridge_factory, gauge).last_value == 0.04)
    # The bridge tallies a message after its transaction commits: wait for the tally too.
    wait_for(lambda: running_bridge.bridge.outcomes.get("normal"))
    assert running_bridge.thread.is_alive()
    assert running_bridge.bridge.outcomes == {"malformed": 4, "unknown_sensor": 1, "normal": 1}
    assert counter(bridge_factory, "malformed") - before["malformed"] == 4
    assert counter(bridge_factory, "unknown_sensor") - before["unknown_sensor"] == 1
    with bridge_factory() as session:
        row = session.get(IotCounter, "unknown_sensor")
        assert row is not None and "NOBODY" in (row.last_detail or "")


def test_a_redelivered_message_changes_nothing(running_bridge, bridge_factory, city_places):
    gauge = register(bridge_factory, city_places)
    message = reading(0.4)
    running_bridge.publish(gauge, message)
    running_bridge.publish(gauge, message)  # QoS 1 may deliver twice
    wait_for(lambda: running_bridge.bridge.outcomes.get("duplicate"))
    case = open_case(bridge_factory, gauge)
    assert case is not None and events(bridge_factory, case.id) == ["report"]
    with bridge_factory() as session:
        sensor_id = session.scalar(select(Sensor.id).where(Sensor.code == gauge))
        rows = session.scalar(
            select(func.count())
            .select_from(SensorReading)
            .where(SensorReading.sensor_id == sensor_id)
        )
    assert rows == 1


def test_two_alarms_at_once_make_one_case(bridge_factory, city_places):
    """One open case per sensor, also when two alarms are handled at the same moment."""
    cover = register(bridge_factory, city_places, kind="manhole_cover")
    bridge = Bridge(bridge_factory, city_places, settings=mqtt_settings("127.0.0.1", 1883))
    topic = f"{bridge.settings.topic_prefix}/{cover}/readings"
    start = datetime.now(UTC) - timedelta(seconds=30)
    payloads = [
        reading(40.0, "deg", (start + timedelta(seconds=i)).isoformat(), signal="tilt").encode()
        for i in range(4)
    ]
    barrier = threading.Barrier(len(payloads))
    outcomes: list[str] = []

    def alarm(payload: bytes) -> None:
        barrier.wait()
        outcomes.append(bridge.handle(topic, payload))

    threads = [threading.Thread(target=alarm, args=(p,)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # Whoever runs first opens the case; the others append to it, or, when an older reading
    # comes after a newer one, are kept as late readings that change nothing.
    assert outcomes.count("alarm") == 1
    assert set(outcomes) <= {"alarm", "repeat", "late"}
    with bridge_factory() as session:
        sensor = session.scalar(select(Sensor).where(Sensor.code == cover))
        cases = session.scalars(
            select(Case).where(Case.source == "sensor", Case.description.contains(sensor.name))
        ).all()
    assert len(cases) == 1 and sensor.open_case_id == cases[0].id
    assert events(bridge_factory, cases[0].id) == (
        ["report"] + ["sensor_reading"] * outcomes.count("repeat")
    )


def test_the_bridge_flags_sensors_that_fell_silent(bridge_factory, city_places):
    gauge = register(bridge_factory, city_places, silent_after_minutes=15)
    clock = SettableClock(datetime.now(UTC))
    settings = mqtt_settings("127.0.0.1", 1883)  # handled directly: no connection
    bridge = Bridge(bridge_factory, city_places, settings=settings, clock=clock)
    bridge.handle(f"{bridge.settings.topic_prefix}/{gauge}/readings", reading(0.02).encode())
    assert gauge not in bridge.sweep_silence()
    clock.advance(minutes=20)
    assert gauge in bridge.sweep_silence()
    assert sensor_row(bridge_factory, gauge).silent_since is not None
    bridge.handle(f"{bridge.settings.topic_prefix}/{gauge}/readings", reading(0.02).encode())
    assert sensor_row(bridge_factory, gauge).silent_since is None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _mosquitto(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        ["mosquitto", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for(lambda: _listening(port), timeout=5)
    return process


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


@pytest.mark.skipif(shutil.which("mosquitto") is None, reason="needs the mosquitto binary")
def test_the_bridge_comes_back_after_the_broker_does(bridge_factory, city_places, backend):
    """A broker of this test's own (the shared one is not ours to stop): stop it under the
    running bridge, start it again, and the next reading still becomes a case."""
    if backend != "sqlite":
        pytest.skip("the transport does not depend on the database: run once")
    port = _free_port()
    broker = _mosquitto(port)
    stop = threading.Event()
    try:
        settings = mqtt_settings("127.0.0.1", port)
        bridge, stop, _thread = start_bridge(bridge_factory, city_places, settings)
        broker.terminate()
        broker.wait(5)
        wait_for(lambda: not bridge.ready.is_set(), timeout=5)
        broker = _mosquitto(port)
        assert bridge.ready.wait(15), "the bridge did not resubscribe"
        gauge = register(bridge_factory, city_places)
        publisher = publisher_for("127.0.0.1", port)
        try:
            info = publisher.publish(
                f"{settings.topic_prefix}/{gauge}/readings", reading(0.5), qos=1
            )
            info.wait_for_publish(5)
            assert wait_for(lambda: open_case(bridge_factory, gauge)).state == "filed"
        finally:
            publisher.disconnect()
            publisher.loop_stop()
    finally:
        stop.set()
        broker.terminate()
        broker.wait(5)


def test_the_command_runs_the_bridge(bridge_engine, bridge_factory, city_places, broker, backend):
    """`cityloop mqtt-bridge` as an operator starts it: settings from CITYLOOP_MQTT_*; stops
    cleanly on SIGTERM."""
    if backend != "sqlite":
        pytest.skip("the command is the same on both databases: run once")
    gauge = register(bridge_factory, city_places)
    settings = mqtt_settings(*broker)
    env = {
        **os.environ,
        "CITYLOOP_MQTT_CLIENT_ID": settings.client_id,
        "CITYLOOP_MQTT_PERSISTENT_SESSION": "false",
        "CITYLOOP_MQTT_TOPIC_PREFIX": settings.topic_prefix,
    }
    url = bridge_engine.url.render_as_string(hide_password=False)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cityloop.cli",
            "mqtt-bridge",
            "--db",
            url,
            "--host",
            broker[0],
            "--port",
            str(broker[1]),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    publisher = publisher_for(*broker)
    try:
        deadline = time.monotonic() + 20
        # Until the bridge has subscribed, publish again: readings sent earlier are not kept.
        while open_case(bridge_factory, gauge) is None and time.monotonic() < deadline:
            publisher.publish(f"{settings.topic_prefix}/{gauge}/readings", reading(0.6), qos=1)
            time.sleep(0.5)
        assert open_case(bridge_factory, gauge) is not None
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=15)
    assert process.returncode == 0, output.decode()
    assert b"subscribed to" in output


def test_bridges_in_a_share_group_split_the_readings(bridge_factory, city_places, broker):
    """Scale-out: two bridges in one shared subscription; every reading is applied once."""
    group = unique("grp")
    first = mqtt_settings(*broker, share_group=group)
    second = first.model_copy(update={"client_id": first.client_id + "-2"})
    gauges = [register(bridge_factory, city_places) for _ in range(6)]
    running = [start_bridge(bridge_factory, city_places, s) for s in (first, second)]
    publisher = publisher_for(*broker)
    try:
        start = datetime.now(UTC) - timedelta(minutes=5)
        for i in range(24):
            ts = (start + timedelta(seconds=i)).isoformat()
            topic = f"{first.topic_prefix}/{gauges[i % 6]}/readings"
            publisher.publish(topic, reading(0.02, ts=ts), qos=1).wait_for_publish(5)
        wait_for(lambda: sum(sum(b.outcomes.values()) for b, _s, _t in running) >= 24)
        time.sleep(0.2)  # nothing more may arrive: each reading went to one bridge only
        handled = [sum(b.outcomes.values()) for b, _s, _t in running]
        assert sum(handled) == 24
        with bridge_factory() as session:
            ids = select(Sensor.id).where(Sensor.code.in_(gauges))
            rows = session.scalar(
                select(func.count())
                .select_from(SensorReading)
                .where(SensorReading.sensor_id.in_(ids))
            )
        assert rows == 24
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        for _bridge, stop, thread in running:
            stop.set()
            thread.join(10)
