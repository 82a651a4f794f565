"""The MQTT bridge (`cityloop mqtt-bridge`): subscribes to ``{prefix}/+/readings`` on the
broker and applies each reading to its sensor in one transaction of its own.

- A message that breaks the contract (bad topic, not JSON, a missing or wrong field, a unit
  that does not fit the sensor) is logged and counted under ``malformed``; a reading for a
  sensor nobody registered under ``unknown_sensor``; a redelivered one under ``duplicate``;
  anything unexpected under ``error``. No message stops the bridge.
- paho's network thread reconnects on its own when the broker goes away (1 s, doubling up to
  30 s). With a persistent session (the default) the broker keeps QoS 1 readings for the
  bridge while it is away; readings are acknowledged only after their transaction, and a
  redelivered one is recognised by (sensor, ts).
- While the database is away, a reading waits and is tried again (1 s, doubling up to 30 s);
  a reading the bridge stops on before the database is back is not acknowledged, so the
  broker delivers it again on the next connection. Nothing is counted as lost meanwhile.
- Every ``silence_check_seconds`` the bridge marks sensors that fell silent.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from cityloop.cases.service import Locator
from cityloop.db import begin_write
from cityloop.errors import Conflict, DomainError, NotFound, ValidationFailed
from cityloop.iot.service import (
    count,
    flag_silent_sensors,
    parse_reading,
    record_reading,
    sensor_code_from_topic,
)
from cityloop.iot.settings import MqttSettings
from cityloop.kit.calendar import WorkingCalendar
from cityloop.kit.clock import Clock
from cityloop.taxonomy.service import working_calendar

log = logging.getLogger("cityloop.iot.bridge")
CALENDAR_SECONDS = 60.0
UNAVAILABLE = "unavailable"  # the database is away: the reading is not acknowledged


def database_away(exc: BaseException) -> bool:
    """A lost or refused database connection, as opposed to a reading that fails."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


class Bridge:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        places: Locator,
        *,
        settings: MqttSettings,
        timezone: str = "Asia/Shanghai",
        clock: Clock | None = None,
    ) -> None:
        self.factory = session_factory
        self.places = places
        self.settings = settings
        self.timezone = timezone
        self.clock = clock or Clock()
        # Set while connected and subscribed; tests and health checks wait on it.
        self.ready = threading.Event()
        self.outcomes: dict[str, int] = {}
        self._calendar: tuple[float, WorkingCalendar] | None = None
        self.stopping = threading.Event()

    # -- one message ---------------------------------------------------------------------------
    def handle(self, topic: str, payload: bytes) -> str:
        """Apply one message; returns its outcome (normal, alarm, repeat, recovered, late,
        duplicate, malformed, unknown_sensor, error, or unavailable when the bridge stopped
        while the database was away). Never raises."""
        outcome = self._handle(topic, payload)
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        return outcome

    def _handle(self, topic: str, payload: bytes) -> str:
        now = self.clock.now()
        try:
            code = sensor_code_from_topic(topic, self.settings.topic_prefix)
            reading = parse_reading(
                payload,
                timezone=self.timezone,
                now=now,
                max_bytes=self.settings.max_payload_bytes,
            )
        except ValidationFailed as exc:
            return self._refuse("malformed", topic, exc)
        attempt, pause = 0, 1.0
        while True:
            attempt += 1
            session = self.factory()
            try:
                begin_write(session)
                calendar = self._working_calendar(session)
                result = record_reading(
                    session, code, reading, places=self.places, calendar=calendar, now=now
                )
                if result.outcome == "duplicate":
                    count(session, "duplicate", now, f"{topic} ts={reading.ts.isoformat()}")
                session.commit()
            except NotFound as exc:
                session.rollback()
                return self._refuse("unknown_sensor", topic, exc)
            except ValidationFailed as exc:
                session.rollback()
                return self._refuse("malformed", topic, exc)
            except (Conflict, StaleDataError, IntegrityError) as exc:
                # Another message for the same sensor won a race; the retry sees its result.
                session.rollback()
                if attempt == 1:
                    continue
                return self._refuse("error", topic, exc)
            except Exception as exc:
                session.rollback()
                if database_away(exc):
                    log.warning("database unavailable (%s); reading on %s waits", exc, topic)
                    if self.stopping.wait(pause):
                        return UNAVAILABLE
                    pause = min(pause * 2, 30.0)
                    attempt = 0
                    continue
                log.exception("reading on %s failed", topic)
                return self._refuse("error", topic, exc)
            finally:
                session.close()
            if result.outcome in ("alarm", "recovered"):
                ticket = result.case.ticket if result.case is not None else "-"
                log.warning("sensor %s: %s (case %s)", code, result.outcome, ticket)
            else:
                log.debug("sensor %s: %s", code, result.outcome)
            return result.outcome

    def _working_calendar(self, session: Session) -> WorkingCalendar:
        # Loading it costs a fifth of a reading's time, and holidays change rarely: a minute
        # old is fresh enough for the deadlines of the cases alarms open.
        cached = self._calendar
        if cached is None or time.monotonic() - cached[0] > CALENDAR_SECONDS:
            cached = (time.monotonic(), working_calendar(session, self.timezone))
            self._calendar = cached
        return cached[1]

    def _refuse(self, reason: str, topic: str, exc: Exception) -> str:
        if isinstance(exc, DomainError):
            detail = f"{topic}: {exc.field or 'payload'}: {exc.message}"
        else:
            detail = f"{topic}: {type(exc).__name__}: {exc}"
        log.warning("refused (%s) %s", reason, detail)
        session = self.factory()
        try:
            begin_write(session)
            count(session, reason, self.clock.now(), detail)
            session.commit()
        except Exception:
            session.rollback()
            log.exception("could not count a refused message")
        finally:
            session.close()
        return reason

    # -- silence -------------------------------------------------------------------------------
    def sweep_silence(self) -> list[str]:
        """Mark sensors that fell silent; returns their codes."""
        session = self.factory()
        try:
            begin_write(session)
            flagged = flag_silent_sensors(session, now=self.clock.now())
            session.commit()
        except Exception:
            session.rollback()
            log.exception("silence check failed")
            return []
        finally:
            session.close()
        for code in flagged:
            log.warning("sensor %s fell silent", code)
        return flagged

    # -- the connection ------------------------------------------------------------------------
    def client(self) -> mqtt.Client:
        s = self.settings
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            clean_session=not s.persistent_session,
            protocol=mqtt.MQTTv311,
            manual_ack=True,  # acknowledged once recorded (see _on_message)
        )
        if s.username:
            client.username_pw_set(s.username, s.password)
        if s.tls:
            client.tls_set(ca_certs=str(s.ca_file) if s.ca_file else None)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        log.info("connected to %s:%s", self.settings.host, self.settings.port)
        client.subscribe(self.settings.subscription, qos=self.settings.qos)

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: Any, _props: Any
    ) -> None:
        if any(r.is_failure for r in reasons):
            log.error("broker refused the subscription to %s", self.settings.subscription)
            return
        log.info("subscribed to %s", self.settings.subscription)
        self.ready.set()

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        self.ready.clear()
        log.warning("disconnected from the broker (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        if self.handle(message.topic, bytes(message.payload)) != UNAVAILABLE:
            client.ack(message.mid, message.qos)

    def run(self, stop: threading.Event) -> None:
        """Connect, subscribe and handle readings until ``stop`` is set; marks silent sensors
        every ``silence_check_seconds`` meanwhile."""
        client = self.client()
        client.connect_async(self.settings.host, self.settings.port, self.settings.keepalive)
        client.loop_start()
        try:
            next_check = time.monotonic()
            while not stop.is_set():
                if time.monotonic() >= next_check:
                    self.sweep_silence()
                    next_check = time.monotonic() + self.settings.silence_check_seconds
                stop.wait(min(1.0, self.settings.silence_check_seconds))
        finally:
            self.stopping.set()  # a reading waiting for the database gives up, unacknowledged
            client.disconnect()
            client.loop_stop()
            self.ready.clear()


def run_bridge(
    database_url: str, settings: MqttSettings, *, timezone: str, stop: threading.Event
) -> None:
    """What `cityloop mqtt-bridge` runs: one engine, the place index loaded once, the bridge."""
    from cityloop.db import make_engine, make_session_factory
    from cityloop.places.service import PlaceIndex

    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    with factory() as session:
        places = PlaceIndex.load(session)
    try:
        Bridge(factory, places, settings=settings, timezone=timezone).run(stop)
    finally:
        engine.dispose()
