"""The JT/T 808 gateway over a real TCP socket (R-IN-2, R-AN-1): a terminal registers, gets an
auth code, authenticates, sends heartbeats and locations (one and a batch) and is answered as
the standard says; unknown terminals are refused with its result code; damaged frames are
answered or dropped, counted, and never end the gateway; a resent batch is stored once; a
silent terminal is marked stale."""

from __future__ import annotations

import struct
from datetime import timedelta

from sqlalchemy import func, select

from cityloop.fleet import jt808
from cityloop.fleet.models import FleetAlert, Position, Vehicle
from tests.fleet.conftest import CAR_PHONE, recent, wait_for

XIAMEN = (118.1105, 24.4862)  # 湖滨南路 near 嘉莲街道


def reply_of(message: jt808.Message) -> tuple[int, int, int]:
    return struct.unpack(">HHB", message.body)


def positions(gateway, vehicle_id: int) -> list[Position]:
    with gateway.factory() as session:
        return list(
            session.scalars(
                select(Position).where(Position.subject_id == vehicle_id).order_by(Position.at)
            )
        )


def test_a_2013_terminal_registers_authenticates_and_its_locations_are_stored(
    gateway, terminal
) -> None:
    t = terminal()
    answer = t.register()
    assert answer.header.msg_id == jt808.REGISTER_REPLY
    serial, result = struct.unpack_from(">HB", answer.body)
    assert (serial, result) == (t.serial, jt808.REG_OK)
    code = answer.body[3:].decode("gbk")
    assert len(code) >= 8

    wrong = t.request(jt808.AUTHENTICATE, jt808.auth_body("not-the-code", 2013))
    assert reply_of(wrong) == (t.serial, jt808.AUTHENTICATE, jt808.FAILURE)
    ok = t.request(jt808.AUTHENTICATE, jt808.auth_body(code, 2013))
    assert ok.header.msg_id == jt808.PLATFORM_REPLY
    assert reply_of(ok) == (t.serial, jt808.AUTHENTICATE, jt808.OK)

    beat = t.request(jt808.HEARTBEAT, b"")
    assert reply_of(beat) == (t.serial, jt808.HEARTBEAT, jt808.OK)

    at = recent(60)
    stored = t.request(jt808.LOCATION, jt808.location_body(*XIAMEN, at, speed_kmh=8.5, heading=90))
    assert reply_of(stored) == (t.serial, jt808.LOCATION, jt808.OK)
    rows = positions(gateway, gateway.vehicles["sweeper"])
    assert [(r.lon, r.lat, r.at, r.speed_kmh, r.heading, r.source) for r in rows] == [
        (XIAMEN[0], XIAMEN[1], at, 8.5, 90, "jt808")
    ]
    with gateway.factory() as session:
        vehicle = session.get(Vehicle, gateway.vehicles["sweeper"])
        assert vehicle is not None
        assert (vehicle.lon, vehicle.lat, vehicle.at, vehicle.state) == (*XIAMEN, at, "online")


def test_a_2019_terminal_sends_a_batch_and_a_resent_batch_is_stored_once(gateway, terminal) -> None:
    t = terminal(CAR_PHONE, version=1)
    t.login()
    start = recent(600)
    items = [
        jt808.location_body(
            XIAMEN[0] + i * 0.0005, XIAMEN[1], start + timedelta(seconds=30 * i), speed_kmh=20
        )
        for i in range(5)
    ]
    batch = jt808.batch_body(items, kind=1)
    answer = t.request(jt808.BATCH_LOCATION, batch)
    assert answer.header.version == 1 and answer.header.phone == CAR_PHONE
    assert reply_of(answer) == (t.serial, jt808.BATCH_LOCATION, jt808.OK)
    again = t.request(jt808.BATCH_LOCATION, batch)
    assert reply_of(again)[2] == jt808.OK
    rows = positions(gateway, gateway.vehicles["car"])
    assert len(rows) == 5
    assert rows[-1].at == start + timedelta(seconds=120)


def test_an_unknown_terminal_is_refused_with_the_standards_code(gateway, terminal) -> None:
    t = terminal("013999999999")
    answer = t.register()
    assert answer.body == struct.pack(">HB", t.serial, jt808.REG_NO_TERMINAL)
    # Without authentication nothing else is accepted.
    loc = t.request(jt808.LOCATION, jt808.location_body(*XIAMEN, recent()))
    assert reply_of(loc) == (t.serial, jt808.LOCATION, jt808.FAILURE)
    assert gateway.gateway.counters["refused"] == 1
    with gateway.factory() as session:
        assert session.scalar(select(func.count()).select_from(Position)) == 0


def test_damaged_frames_are_counted_and_the_gateway_goes_on(gateway, terminal) -> None:
    t = terminal()
    t.login()
    good = t.frame(jt808.LOCATION, jt808.location_body(*XIAMEN, recent(5)))
    raw = jt808.unescape(good[1:-1])
    bad_check = b"\x7e" + jt808.escape(raw[:-1] + bytes([raw[-1] ^ 0x55])) + b"\x7e"
    t.send(bad_check)
    answer = t.read()
    assert reply_of(answer) == (t.serial, jt808.LOCATION, jt808.MESSAGE_WRONG)
    t.send(b"\x7e\x02\x00\x7d\x07\x00\x7e")  # bad escape: dropped
    t.send(b"\x7e\x02\x00\x00\x7e")  # truncated: dropped
    t.send(b"\x00garbage without flags")
    beat = t.request(jt808.HEARTBEAT, b"")  # the connection and the gateway live on
    assert reply_of(beat) == (t.serial, jt808.HEARTBEAT, jt808.OK)
    assert gateway.gateway.counters["malformed"] == 3
    assert gateway.gateway.counters["bad_check"] == 1
    # A second terminal is served meanwhile.
    other = terminal(CAR_PHONE, version=1)
    other.login()


def test_impossible_fixes_are_refused_or_flagged_never_drawn(gateway, terminal) -> None:
    t = terminal()
    t.login()
    now = recent(120)
    bodies = [
        jt808.location_body(*XIAMEN, now),
        jt808.location_body(
            XIAMEN[0] + 0.5, XIAMEN[1], now + timedelta(seconds=10)
        ),  # 50 km in 10 s
        jt808.location_body(*XIAMEN, now + timedelta(days=2)),  # the future
        jt808.location_body(*XIAMEN, now + timedelta(seconds=20), speed_kmh=400),
    ]
    answer = t.request(jt808.BATCH_LOCATION, jt808.batch_body(bodies))
    assert reply_of(answer)[2] == jt808.OK
    rows = positions(gateway, gateway.vehicles["sweeper"])
    assert [r.flag for r in rows] == [None, "jump", "speed"]
    with gateway.factory() as session:
        vehicle = session.get(Vehicle, gateway.vehicles["sweeper"])
        assert vehicle is not None and (vehicle.lon, vehicle.at) == (XIAMEN[0], now)


def test_a_silent_terminal_is_marked_stale_with_one_alert(gateway, terminal) -> None:
    t = terminal()
    t.login()
    t.request(jt808.LOCATION, jt808.location_body(*XIAMEN, recent(30)))
    assert gateway.sweep_stale() == []  # heard from a moment ago
    assert _state(gateway) == "online"
    gateway.gateway.stale_after = timedelta(seconds=0)
    wait_for(lambda: gateway.sweep_stale() == [gateway.vehicles["sweeper"]])
    assert _state(gateway) == "stale"
    gateway.sweep_stale()  # a second sweep raises no second alert
    with gateway.factory() as session:
        alerts = session.scalars(select(FleetAlert).where(FleetAlert.kind == "stale")).all()
        assert [(a.subject_id, a.cleared_at) for a in alerts] == [
            (gateway.vehicles["sweeper"], None)
        ]
    # The terminal speaks again: online, the alert cleared.
    gateway.gateway.stale_after = timedelta(hours=1)
    t.request(jt808.HEARTBEAT, b"")
    gateway.sweep_stale()
    assert _state(gateway) == "online"
    with gateway.factory() as session:
        assert session.scalar(select(FleetAlert.cleared_at)) is not None


def _state(gateway) -> str:
    with gateway.factory() as session:
        vehicle = session.get(Vehicle, gateway.vehicles["sweeper"])
        assert vehicle is not None
        return vehicle.state
