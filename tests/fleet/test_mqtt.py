"""Radios report positions over MQTT on the documented topic (R-IN-2): through the real broker
a fix is stored for the person, a redelivery is stored once, a bad payload or an unknown radio
is counted and changes nothing."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import select

from cityloop.db import make_engine, make_session_factory
from cityloop.fleet.models import Person, Position
from cityloop.fleet.mqtt import PositionBridge
from cityloop.iot.settings import MqttSettings
from cityloop.org.models import User
from cityloop.places.service import PlaceIndex
from tests.conftest import CityDb
from tests.fleet.conftest import wait_for
from tests.iot.conftest import MQTT_HOST, MQTT_PORT


@pytest.fixture
def bridge(city_db: CityDb):
    engine = make_engine(city_db.url)
    factory = make_session_factory(engine)
    with factory() as session:
        places = PlaceIndex.load(session)
    settings = MqttSettings(
        host=MQTT_HOST,
        port=MQTT_PORT,
        client_id=f"fleet-test-{uuid.uuid4().hex[:8]}",
        persistent_session=False,
    )
    running = PositionBridge(factory, places, settings)
    stop = threading.Event()
    thread = threading.Thread(target=running.run, args=(stop,), daemon=True)
    thread.start()
    if not running.ready.wait(10):
        stop.set()
        pytest.skip(f"no MQTT broker at {MQTT_HOST}:{MQTT_PORT}")
    yield running, factory
    stop.set()
    thread.join(10)
    engine.dispose()


def publish(topic: str, payload: bytes) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect(MQTT_HOST, MQTT_PORT)
    client.loop_start()
    client.publish(topic, payload, qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def test_a_radio_position_is_stored_once_and_bad_messages_are_counted(bridge) -> None:
    running, factory = bridge
    at = (datetime.now(UTC) - timedelta(seconds=20)).replace(microsecond=0)
    fix = json.dumps({"lon": 118.0916, "lat": 24.4535, "ts": at.isoformat()}).encode()
    publish("cityloop/fleet/person/inspector/position", fix)
    publish("cityloop/fleet/person/inspector/position", fix)  # a redelivery
    publish("cityloop/fleet/person/inspector/position", b"{not json")
    publish("cityloop/fleet/person/nobody/position", fix)
    wait_for(lambda: sum(running.counters.values()) >= 4)
    assert running.counters["stored"] == 1 and running.counters["duplicate"] == 1
    assert running.counters["refused_payload"] == 1 and running.counters["refused_unknown"] == 1
    with factory() as session:
        uid = session.scalar(select(User.id).where(User.username == "inspector"))
        rows = session.scalars(select(Position).where(Position.subject_id == uid)).all()
        assert [(r.subject, r.source, r.at) for r in rows] == [("person", "mqtt", at)]
        person = session.get(Person, uid)
        assert person is not None and person.lon == 118.0916
