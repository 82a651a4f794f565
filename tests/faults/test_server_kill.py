"""`kill -9` of `cityloop serve` (2 worker processes) in the middle of a load of reports
(R-IN-1, R-IN-3, R-CL-5). After a restart, and every report whose answer was lost sent again
under the same Idempotency-Key: every acknowledged report is there exactly once under the
ticket it was answered with, nothing half-written, every timeline's chain verifies. Then two
users act on one case at the same moment through the restarted server: one wins, the other
gets 409, and the timeline has one event for it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from cityloop.org.models import User
from cityloop.org.service import issue_token
from cityloop.places.demo_xiamen import sample_point
from tests.cases.helpers import YINGCUI
from tests.faults.harness import (
    SECRET,
    Load,
    Server,
    check_reports,
    engine_for,
    http_json,
    stored_keys,
    wait_until,
)


def kill_mid_load(city_db, *, threads: int, acknowledged_before_kill: int, kills: int = 1) -> dict:
    server = Server(city_db.url, city_db.data_dir).start()
    load = Load(server.port, city_db.points, threads=threads).start()
    committed_unanswered = 0
    try:
        for round_ in range(kills):
            target = acknowledged_before_kill * (round_ + 1)
            wait_until(lambda t=target: load.acknowledged() >= t, 60, "reports before the kill")
            server.kill9()
            if round_ == kills - 1:
                load.stop()
            else:
                server.start()
                load.port = server.port
        unanswered = {a.key for a in load.attempts.values() if not a.settled}
        # Answers lost after the commit: the report is saved, the client does not know it.
        committed_unanswered = len(unanswered & stored_keys(city_db.url, load))
        server.start()
        load.resend_unanswered(server.port)
        numbers = check_reports(city_db.url, load)
        numbers["committed_but_unanswered"] = committed_unanswered
        numbers["kills"] = kills
        _two_users_act_on_one_case(server, city_db)
    finally:
        load.stop()
        server.stop()
    return numbers


@pytest.mark.slow  # two starts of a two-process server: about 25 s a database
def test_kill_the_server_mid_load(city_db, backend):
    numbers = kill_mid_load(city_db, threads=8, acknowledged_before_kill=40)
    print(f"\n{backend}: {numbers}")
    assert numbers["answers_cut_off"] >= 1, "the kill cut no answer off: nothing was tested"
    assert numbers["duplicates_found"] == 0 and numbers["half_written"] == 0
    assert numbers["answered_500"] == 0


@pytest.mark.slow
def test_kill_the_server_again_and_again(city_db, backend):
    """Five kills in one longer load, 16 clients."""
    numbers = kill_mid_load(city_db, threads=16, acknowledged_before_kill=150, kills=5)
    print(f"\n{backend}: {numbers}")
    assert numbers["answers_cut_off"] >= 5
    assert numbers["duplicates_found"] == 0 and numbers["half_written"] == 0
    assert numbers["answered_500"] == 0


def _token(city_db, username: str) -> dict[str, str]:
    engine = engine_for(city_db.url)
    try:
        with Session(engine) as session:
            user = session.scalar(select(User).where(User.username == username))
            assert user is not None
            token = issue_token(user, SECRET, 30, datetime.now(UTC))
    finally:
        engine.dispose()
    return {"Authorization": f"Bearer {token}"}


def _two_users_act_on_one_case(server: Server, city_db) -> None:
    """The operator files and the shift leader rejects the same report at the same moment,
    each in one of the server's two processes' reach: exactly one of them wins."""
    engine = engine_for(city_db.url)
    try:
        with Session(engine) as session:
            lon, lat = sample_point(session, YINGCUI)
    finally:
        engine.dispose()
    # A class the load does not use, so that the report is not attached to one of its cases.
    report = {"source": "public", "class_code": "06001", "description": "私搭乱建", "lon": lon}
    status, body = http_json(server.port, "POST", "/api/v1/reports", {**report, "lat": lat})
    assert status == 201 and body["state"] == "reported", body
    case_id = body["id"]
    headers = {user: _token(city_db, user) for user in ("operator", "shiftlead")}
    barrier = threading.Barrier(2)
    answers: list[tuple[int, str]] = []

    def act(user: str, action: str, payload: dict) -> None:
        barrier.wait()
        path = f"/api/v1/cases/{case_id}/actions/{action}"
        status, _body = http_json(server.port, "POST", path, payload, headers[user])
        answers.append((status, action))

    threads = [
        threading.Thread(target=act, args=("operator", "file", {})),
        threading.Thread(target=act, args=("shiftlead", "reject", {"reason": "重复上报"})),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(status for status, _ in answers) == [200, 409], answers
    winner = next(action for status, action in answers if status == 200)
    engine = engine_for(city_db.url)
    try:
        with engine.connect() as conn:
            actions = conn.scalars(
                text("SELECT action FROM case_events WHERE case_id = :c ORDER BY seq"),
                {"c": case_id},
            ).all()
    finally:
        engine.dispose()
    assert actions == ["report", winner]
