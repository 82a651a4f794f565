"""Fixtures for the field force: a committed demo city with two vehicles, a JT/T 808 gateway
running on a real TCP port in a thread of its own, and a terminal that speaks the bytes."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from cityloop.db import make_engine, make_session_factory
from cityloop.fleet import jt808, service
from cityloop.fleet.gateway import Gateway
from tests.conftest import CityDb

SWEEPER_PHONE = "013912340001"  # 2013 terminal
CAR_PHONE = "00000000013912340002"  # 2019 terminal (BCD[10])


@dataclass
class Running:
    gateway: Gateway
    port: int
    factory: sessionmaker[Session]
    loop: asyncio.AbstractEventLoop
    vehicles: dict[str, int]

    def sweep_stale(self) -> list[int]:
        return asyncio.run_coroutine_threadsafe(self.gateway.sweep_stale(), self.loop).result(10)


@pytest.fixture
def gateway(city_db: CityDb) -> Iterator[Running]:
    engine = make_engine(city_db.url)
    factory = make_session_factory(engine)
    with factory() as session:
        ids = {
            "sweeper": service.register_vehicle(
                session, plate="闽D·T0001", kind="sweeper", terminal_phone=SWEEPER_PHONE
            ).id,
            "car": service.register_vehicle(
                session, plate="闽D·T0002", kind="enforcement", terminal_phone=CAR_PHONE
            ).id,
        }
        session.commit()
    gw = Gateway(factory, batch_wait=0.05, stale_every=3600)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    port: list[int] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        port.append(loop.run_until_complete(gw.start("127.0.0.1", 0)))
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    yield Running(gw, port[0], factory, loop, ids)
    asyncio.run_coroutine_threadsafe(gw.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()
    engine.dispose()


class Terminal:
    """A vehicle terminal over a real socket: builds frames byte for byte, reads answers."""

    def __init__(self, port: int, phone: str, version: int | None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.phone, self.version, self.serial = phone, version, 0
        self.buffer = bytearray()

    @property
    def edition(self) -> int:
        return 2013 if self.version is None else 2019

    def frame(self, msg_id: int, body: bytes) -> bytes:
        self.serial += 1
        return jt808.encode(
            msg_id, body, phone=self.phone, serial=self.serial, version=self.version
        )

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, msg_id: int, body: bytes) -> jt808.Message:
        self.send(self.frame(msg_id, body))
        return self.read()

    def read(self) -> jt808.Message:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            frames = jt808.split_frames(self.buffer)
            if frames:
                # Keep any further frame for the next read.
                for extra in reversed(frames[1:]):
                    self.buffer[:0] = b"\x7e" + extra + b"\x7e"
                return jt808.decode(frames[0])
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("gateway closed the connection")
            self.buffer.extend(chunk)
        raise TimeoutError("no answer")

    def register(self, plate: str = "闽D·T0001") -> jt808.Message:
        reg = jt808.Registration(35, 200, "CL", "CL-808", "T0001", 1, plate)
        return self.request(jt808.REGISTER, jt808.registration_body(reg, self.edition))

    def login(self) -> None:
        answer = self.register()
        code = answer.body[3:].decode("gbk")
        reply = self.request(jt808.AUTHENTICATE, jt808.auth_body(code, self.edition))
        assert reply.body[-1] == jt808.OK

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def terminal(gateway: Running) -> Iterator[Callable[..., Terminal]]:
    made: list[Terminal] = []

    def make(phone: str = SWEEPER_PHONE, version: int | None = None) -> Terminal:
        t = Terminal(gateway.port, phone, version)
        made.append(t)
        return t

    yield make
    for t in made:
        t.close()


def recent(seconds: int = 0) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=seconds)


def wait_for(check: Callable[[], Any], timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")
