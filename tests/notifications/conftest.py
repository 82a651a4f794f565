"""Fixtures for the channels: the demo city in a database of the test's own (the worker's
delivery job commits), a case dispatched to 思明区城管办 in it, and real servers on 127.0.0.1
for each protocol the channels speak (HTTP receivers from tests/outbox, SMTP by aiosmtpd)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cityloop.cases.service import Actor, transition
from cityloop.db import begin_write, make_engine, make_session_factory
from cityloop.intake.service import Report, receive
from cityloop.org.models import Department, User
from cityloop.places.service import PlaceIndex
from cityloop.taxonomy.service import working_calendar
from tests.cases.helpers import YINGCUI, point_in
from tests.conftest import TZ
from tests.outbox.receiver import Receiver, running_receiver

NOW = datetime(2026, 8, 27, 16, 5, tzinfo=TZ)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture
def factory(city_db) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(city_db.url)
    yield make_session_factory(engine)
    engine.dispose()


def user(session: Session, username: str) -> User:
    found = session.scalar(select(User).where(User.username == username))
    assert found is not None, username
    return found


def department(session: Session, code: str) -> Department:
    found = session.scalar(select(Department).where(Department.code == code))
    assert found is not None, code
    return found


def dispatch_a_case(
    factory: sessionmaker[Session],
    *,
    phone: str | None = None,
    urgency: str = "B",
    class_code: str = "21004",
) -> tuple[int, str]:
    """A citizen's report in 盈翠社区, filed and dispatched to 思明区城管办; committed."""
    with factory() as session:
        begin_write(session)
        places = PlaceIndex.load(session)
        calendar = working_calendar(session, "Asia/Shanghai")
        lon, lat = point_in(places, YINGCUI)
        case, _ = receive(
            session,
            Report(
                source="public",
                description="小区门口污水外溢",
                class_code=class_code,
                lon=lon,
                lat=lat,
                urgency=urgency,
                reporter_phone=phone,
            ),
            actor=Actor(None, "公众", "public"),
            places=places,
            calendar=calendar,
            now=NOW,
        )
        operator = Actor.of(user(session, "operator"))
        dispatcher = Actor.of(user(session, "dispatcher"))
        siming = department(session, "D-350203").id
        transition(session, case.id, "file", operator, now=NOW, calendar=calendar)
        transition(
            session,
            case.id,
            "dispatch",
            dispatcher,
            {"department_id": siming},
            now=NOW,
            calendar=calendar,
        )
        session.commit()
        return case.id, case.ticket


@dataclass
class Mailbox:
    host: str = "127.0.0.1"
    port: int = 0
    messages: list[Any] = field(default_factory=list)


@pytest.fixture
def smtp_server() -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) that keeps what it is sent."""
    from email import message_from_bytes
    from email.policy import default

    from aiosmtpd.controller import Controller

    from tests.faults.harness import free_port

    box = Mailbox(port=free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            message = message_from_bytes(envelope.content, policy=default)
            box.messages.append((list(envelope.rcpt_tos), message))
            return "250 OK"

    controller = Controller(Handler(), hostname=box.host, port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()
