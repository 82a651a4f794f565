"""Positions over MQTT, for radios and devices that do not speak JT/T 808
(`cityloop fleet-mqtt`). Topic: ``cityloop/fleet/person/{username}/position`` or
``cityloop/fleet/vehicle/{terminal_phone}/position``; payload JSON ``{"lon": 118.1,
"lat": 24.48, "ts": "2026-08-27T16:05:00+08:00", "speed_kmh": 8.5}`` (speed optional). QoS 1
messages are acknowledged once stored (a redelivery is stored once: one fix per unit and time);
a message that cannot be read is counted and acknowledged, never retried forever."""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cityloop.db import begin_write
from cityloop.fleet import service
from cityloop.fleet.jt808 import canonical_phone
from cityloop.fleet.models import Vehicle
from cityloop.iot.settings import MqttSettings
from cityloop.org.models import User

log = logging.getLogger(__name__)

TOPIC_PREFIX = "cityloop/fleet"
SUBSCRIPTION = f"{TOPIC_PREFIX}/+/+/position"


class PositionBridge:
    def __init__(self, factory: sessionmaker[Session], places: Any, settings: MqttSettings) -> None:
        self.factory, self.places, self.settings = factory, places, settings
        self.counters: Counter[str] = Counter()
        self.ready = threading.Event()

    def handle(self, topic: str, payload: bytes) -> str:
        parts = topic.split("/")
        if len(parts) != 5 or parts[2] not in ("person", "vehicle") or parts[4] != "position":
            return self._refuse("topic", topic)
        try:
            body = json.loads(payload)
            lon, lat = float(body["lon"]), float(body["lat"])
            at = datetime.fromisoformat(str(body["ts"]))
            speed = None if body.get("speed_kmh") is None else float(body["speed_kmh"])
        except (ValueError, KeyError, TypeError):
            return self._refuse("payload", topic)
        if at.tzinfo is None:
            return self._refuse("payload", topic)
        with self.factory() as session:
            begin_write(session)
            subject_id = self._subject(session, parts[2], parts[3])
            if subject_id is None:
                return self._refuse("unknown", topic)
            result = service.store_fixes(
                session,
                [service.Fix(parts[2], subject_id, at, lon, lat, "mqtt", speed)],
                datetime.now(UTC),
                self.places,
            )
            session.commit()
        outcome = "stored" if result.stored else "refused" if result.refused else "duplicate"
        self.counters[outcome] += 1
        return outcome

    @staticmethod
    def _subject(session: Session, kind: str, key: str) -> int | None:
        if kind == "person":
            return session.scalar(select(User.id).where(User.username == key, User.active))
        if not key.isdigit():
            return None
        return session.scalar(
            select(Vehicle.id).where(Vehicle.terminal_phone == canonical_phone(key))
        )

    def _refuse(self, reason: str, topic: str) -> str:
        self.counters[f"refused_{reason}"] += 1
        log.info("refused a position on %s: %s", topic, reason)
        return "refused"

    def run(self, stop: threading.Event) -> None:
        s = self.settings
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            clean_session=not s.persistent_session,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        if s.username:
            client.username_pw_set(s.username, s.password)
        if s.tls:
            client.tls_set(ca_certs=str(s.ca_file) if s.ca_file else None)

        def on_connect(c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            if not reason.is_failure:
                c.subscribe(SUBSCRIPTION, qos=s.qos)

        def on_subscribe(_c: mqtt.Client, _u: Any, _m: int, reasons: Any, _p: Any) -> None:
            if not any(r.is_failure for r in reasons):
                self.ready.set()

        def on_message(c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
            try:
                self.handle(message.topic, bytes(message.payload))
            except Exception:  # the database away: leave it unacknowledged for a redelivery
                self.counters["errors"] += 1
                log.exception("storing a position failed")
                return
            c.ack(message.mid, message.qos)

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        client.connect_async(s.host, s.port, s.keepalive)
        client.loop_start()
        try:
            stop.wait()
        finally:
            client.disconnect()
            client.loop_stop()
            self.ready.clear()
