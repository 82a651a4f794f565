"""The outbox delivers after commit, once, in order, with back-off, and leaves failures
visible (R-IN-5: status changes pushed to partner platforms; R-DX-1: a stable exchange).

Every test sends to a real HTTP server on 127.0.0.1 and runs on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityloop.db import begin_write, make_engine, make_session_factory
from cityloop.outbox.delivery import deliver_due
from cityloop.outbox.models import OutboxMessage
from cityloop.outbox.service import LEASE, backoff, claim_due, enqueue, retry
from tests.conftest import TZ

T0 = datetime(2026, 8, 27, 16, 5, tzinfo=TZ)


def _enqueue(url: str, target: str, *payloads: dict, key: str | None = None) -> list[int]:
    engine = make_engine(url)
    with Session(engine) as session:
        begin_write(session)
        rows = [
            enqueue(
                session, topic="case.status", target_url=target, payload=p, now=T0, ordering_key=key
            )
            for p in payloads
        ]
        session.commit()
        ids = [row.id for row in rows]
    engine.dispose()
    return ids


def _message(url: str, message_id: int) -> OutboxMessage:
    engine = make_engine(url)
    with Session(engine) as session:
        row = session.get(OutboxMessage, message_id)
        assert row is not None
        session.expunge(row)
    engine.dispose()
    return row


def test_a_committed_message_reaches_the_receiver_once(outbox_url, receiver):
    engine = make_engine(outbox_url)
    factory = make_session_factory(engine)
    with factory() as session:  # a transaction that is rolled back sends nothing
        begin_write(session)
        enqueue(session, topic="case.status", target_url=receiver.url, payload={"n": 0}, now=T0)
        session.rollback()
    assert deliver_due(factory, now=T0).sent == 0

    [message_id] = _enqueue(outbox_url, receiver.url, {"ticket": "260827ABCDEF", "state": "filed"})
    report = deliver_due(factory, now=T0)
    again = deliver_due(factory, now=T0 + timedelta(hours=1))

    assert (report.delivered, again.sent) == (1, 0)
    assert len(receiver.received) == 1
    got = receiver.received[0]
    assert got.body == {"ticket": "260827ABCDEF", "state": "filed"}
    assert got.headers["X-Cityloop-Delivery"] == str(message_id)
    assert got.headers["X-Cityloop-Topic"] == "case.status"
    row = _message(outbox_url, message_id)
    assert (row.status, row.attempts, row.delivered_at) == ("delivered", 1, T0)
    engine.dispose()


def test_a_failing_receiver_is_retried_with_back_off_then_given_up(outbox_url, receiver):
    receiver.fail_next(10, status=500)
    [message_id] = _enqueue(outbox_url, receiver.url, {"n": 1})
    engine = make_engine(outbox_url)
    factory = make_session_factory(engine)

    now = T0
    attempts_at = []
    for attempt in range(1, 5):
        assert deliver_due(factory, now=now, max_attempts=4).sent == 1
        attempts_at.append(now)
        row = _message(outbox_url, message_id)
        if attempt < 4:
            # Not due before the back-off has passed: nothing is sent a second early.
            assert row.next_attempt_at == now + backoff(attempt)
            assert deliver_due(factory, now=row.next_attempt_at - timedelta(seconds=1)).sent == 0
            now = row.next_attempt_at
    assert [b - a for a, b in itertools.pairwise(attempts_at)] == [
        timedelta(seconds=30),
        timedelta(seconds=60),
        timedelta(seconds=120),
    ]
    failed = _message(outbox_url, message_id)
    assert (failed.status, failed.attempts, failed.failed_at) == ("failed", 4, now)
    assert failed.last_status_code == 500 and "HTTP 500" in (failed.last_error or "")
    assert deliver_due(factory, now=now + timedelta(days=1)).sent == 0  # given up: stays put
    assert len(receiver.received) == 4

    # An administrator retries once the partner has fixed its side.
    receiver.answers.clear()
    with factory() as session:
        begin_write(session)
        retry(session, message_id, now + timedelta(days=1))
        session.commit()
    assert deliver_due(factory, now=now + timedelta(days=1)).delivered == 1
    assert _message(outbox_url, message_id).status == "delivered"
    assert len(receiver.received) == 5
    engine.dispose()


def test_an_undelivered_message_survives_a_restart_and_is_delivered_once(outbox_url, receiver):
    receiver.fail_next(1, status=503)
    [message_id] = _enqueue(outbox_url, receiver.url, {"n": 2})
    first = make_engine(outbox_url)
    assert deliver_due(make_session_factory(first), now=T0).retried == 1
    first.dispose()  # the worker stops

    restarted = make_engine(outbox_url)  # a new process: new engine, new sessions
    factory = make_session_factory(restarted)
    later = T0 + timedelta(minutes=5)
    assert deliver_due(factory, now=later).delivered == 1
    assert deliver_due(factory, now=later + timedelta(hours=2)).sent == 0
    assert receiver.deliveries == [str(message_id), str(message_id)]
    assert _message(outbox_url, message_id).status == "delivered"
    restarted.dispose()


def test_a_worker_that_dies_mid_send_leaves_the_message_to_the_next_one(outbox_url, receiver):
    [message_id] = _enqueue(outbox_url, receiver.url, {"n": 3})
    engine = make_engine(outbox_url)
    factory = make_session_factory(engine)
    with factory() as session:  # claimed and committed, then the worker dies before sending
        begin_write(session)
        assert [d.id for d in claim_due(session, T0)] == [message_id]
        session.commit()

    assert deliver_due(factory, now=T0 + timedelta(minutes=1)).sent == 0  # still leased
    assert deliver_due(factory, now=T0 + LEASE).delivered == 1
    assert receiver.deliveries == [str(message_id)]
    engine.dispose()


def test_pushes_about_one_case_leave_in_the_order_they_happened(outbox_url, receiver):
    receiver.fail_next(1)
    first, second = _enqueue(
        outbox_url, receiver.url, {"state": "filed"}, {"state": "dispatched"}, key="case:7"
    )
    [other] = _enqueue(outbox_url, receiver.url, {"state": "closed"}, key="case:8")
    engine = make_engine(outbox_url)
    factory = make_session_factory(engine)

    report = deliver_due(factory, now=T0)
    # The first push failed: the second waits behind it; another case's push is not held up.
    assert (report.retried, report.delivered) == (1, 1)
    assert receiver.deliveries == [str(first), str(other)]
    deliver_due(factory, now=T0 + backoff(1))
    assert receiver.deliveries == [str(first), str(other), str(first), str(second)]
    assert [r.body["state"] for r in receiver.received[2:]] == ["filed", "dispatched"]
    engine.dispose()


def test_two_workers_never_claim_the_same_message(outbox_url, backend, receiver):
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time: there is nothing to skip past")
    ids = _enqueue(outbox_url, receiver.url, *({"n": i} for i in range(4)))
    engine = make_engine(outbox_url)
    with Session(engine) as one, Session(engine) as two:
        mine = {d.id for d in claim_due(one, T0, limit=2)}  # rows locked, not committed yet
        theirs = {d.id for d in claim_due(two, T0, limit=10)}
        one.commit()
        two.commit()
    assert mine | theirs == set(ids) and not mine & theirs
    engine.dispose()


def test_retry_is_only_for_failed_messages(outbox_url, receiver):
    [message_id] = _enqueue(outbox_url, receiver.url, {"n": 4})
    engine = make_engine(outbox_url)
    with Session(engine) as session:
        from cityloop.errors import Conflict, NotFound

        with pytest.raises(Conflict):
            retry(session, message_id, T0)
        with pytest.raises(NotFound):
            retry(session, message_id + 1000, T0)
        assert session.scalar(select(OutboxMessage.status)) == "pending"
    engine.dispose()
