"""`kill -9` of `cityloop worker` (R-HD-4, R-IN-5).

The clock sweep: killed in the middle of a pass (while its transaction holds the due cases),
restarted, and left to sweep again and again: every due warning, overdue mark and automatic
urging is on its case's timeline exactly once.

The outbox: with the partner's receiver down, nothing is lost (the messages stay pending);
the worker is killed and restarted; once the receiver is up, each message arrives exactly
once, a case's pushes in the order they happened.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from cityloop.cases.models import Case, CaseEvent
from cityloop.cases.service import Actor
from cityloop.intake.service import Report, receive
from cityloop.org.models import User
from cityloop.outbox.models import OutboxMessage
from cityloop.outbox.service import enqueue
from cityloop.places.service import PlaceIndex
from cityloop.taxonomy.service import working_calendar
from tests.faults.harness import (
    Proc,
    audit,
    engine_for,
    free_port,
    process_env,
    wait_until,
)


def worker(city_db, interval: float = 0.0) -> Proc:
    return Proc(
        ["worker", "--interval", str(interval)],
        process_env(city_db.url, city_db.data_dir),
        city_db.data_dir / "worker.log",
    )


# -- the clock sweep --------------------------------------------------------------------------
@dataclass
class DueCases:
    overdue: list[int] = field(default_factory=list)  # a verify clock long past
    warning: list[int] = field(default_factory=list)  # 80-100 % of a long limit used
    urged: list[int] = field(default_factory=list)  # dispatched, handling deadline past


def make_due_cases(city_db, *, overdue: int, warning: int, dispatched: int) -> DueCases:
    """Reports made 30 days ago through intake (so every clock is long past), some of their
    clocks then stretched so that they are only near their end."""
    now = datetime.now(UTC)
    engine = engine_for(city_db.url)
    due = DueCases()
    try:
        with Session(engine) as session:
            places = PlaceIndex.load(session)
            admin = Actor.of(session.scalar(select(User).where(User.username == "admin")))
            calendar = working_calendar(session)
            points = iter(city_db.points[::3])  # unit grid centres 300 m apart: no duplicates
            plan = [("public", "06010", overdue + warning), ("inspector", "01037", dispatched)]
            made: list[Case] = []
            for source, class_code, count in plan:
                for i in range(count):
                    lon, lat = next(points)
                    case, _ = receive(
                        session,
                        Report(source, class_code, "超期测试 fault test", lon=lon, lat=lat),
                        actor=admin,
                        places=places,
                        calendar=calendar,
                        now=now - timedelta(days=30, seconds=i),
                    )
                    made.append(case)
            session.flush()
            for case in made:
                if case.state == "dispatched":
                    due.urged.append(case.id)
                elif len(due.overdue) < overdue:
                    due.overdue.append(case.id)
                else:
                    due.warning.append(case.id)
            assert len(due.urged) == dispatched, "the street-lamp reports were not dispatched"
            session.execute(
                update(Case)
                .where(Case.id.in_(due.warning))
                .values(
                    stage_started_at=now - timedelta(days=40), stage_due_at=now + timedelta(days=4)
                )
            )
            session.commit()
    finally:
        engine.dispose()
    return due


def wait_for_a_sweep_pass(city_db, sweeper: Proc, timeout: float = 60.0) -> None:
    """Return while the worker's sweep holds its transaction open (it is the only writer):
    on SQLite, the write lock its pass takes first; on PostgreSQL, the row locks (FOR UPDATE)
    it holds on cases. Polled on one connection, every millisecond or so."""
    deadline = time.monotonic() + timeout
    url = make_url(city_db.url)
    if url.get_backend_name() == "sqlite":
        conn = sqlite3.connect(url.database or "", timeout=0, isolation_level=None)
        try:
            while time.monotonic() < deadline and sweeper.alive:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError:
                    return  # locked: the pass is running
                conn.execute("ROLLBACK")
                time.sleep(0.001)
        finally:
            conn.close()
    else:
        engine = engine_for(city_db.url)
        try:
            with engine.connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                query = text(
                    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                    "WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() "
                    "AND l.relation = 'cases'::regclass AND l.mode = 'RowShareLock'"
                )
                while time.monotonic() < deadline and sweeper.alive:
                    if conn.scalar(query):
                        return
                    time.sleep(0.002)
        finally:
            engine.dispose()
    raise AssertionError(f"no sweep pass seen:\n{sweeper.output()[-2000:]}")


def clock_events(city_db) -> Counter[tuple[int, str]]:
    engine = engine_for(city_db.url)
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(CaseEvent.case_id, CaseEvent.action).where(
                    CaseEvent.action.in_(("clock_warning", "clock_overdue", "urge"))
                )
            ).all()
    finally:
        engine.dispose()
    return Counter((case_id, action) for case_id, action in rows)


def sweep_killed_mid_pass(city_db, *, overdue: int, warning: int, dispatched: int) -> dict:
    due = make_due_cases(city_db, overdue=overdue, warning=warning, dispatched=dispatched)
    expected = Counter(
        {(c, "clock_overdue"): 1 for c in due.overdue}
        | {(c, "clock_warning"): 1 for c in due.warning}
        | {(c, "clock_overdue"): 1 for c in due.urged}
        | {(c, "urge"): 1 for c in due.urged}
    )
    sweeper = worker(city_db).start()
    try:
        wait_for_a_sweep_pass(city_db, sweeper)
        sweeper.kill9()
        at_kill = sum(clock_events(city_db).values())
        sweeper.start()
        wait_until(lambda: clock_events(city_db) == expected, 60, "every due clock marked")
        passes = sweeper.output().count("swept ")
        wait_until(lambda: sweeper.output().count("swept ") >= passes + 3, 30, "more passes")
    finally:
        sweeper.stop()
    found = clock_events(city_db)
    assert found == expected, {k: v for k, v in (found - expected).items()}
    checked, findings = audit(city_db.url)
    assert findings == []
    return {
        "due_marks": sum(expected.values()),
        "marks_committed_at_kill": at_kill,
        "marks_after_restart": sum(found.values()),
        "events_checked": checked,
    }


def test_the_worker_killed_mid_sweep_marks_each_clock_once(city_db, backend):
    numbers = sweep_killed_mid_pass(city_db, overdue=40, warning=20, dispatched=20)
    print(f"\n{backend}: {numbers}")
    # Killed inside the pass's transaction: nothing of it was kept, all of it was redone.
    assert numbers["marks_committed_at_kill"] == 0


@pytest.mark.slow
def test_the_worker_killed_mid_sweep_over_two_batches(city_db, backend):
    """More due cases than one pass takes (500): killed while the first is being written."""
    numbers = sweep_killed_mid_pass(city_db, overdue=420, warning=80, dispatched=100)
    print(f"\n{backend}: {numbers}")


# -- the outbox -------------------------------------------------------------------------------
@dataclass
class Receiver:
    """A partner's webhook endpoint on a fixed port, which can be down (nothing listening)
    or up, and slow if asked."""

    port: int
    delay: float = 0.0
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhook"

    @contextmanager
    def up(self) -> Iterator[None]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                time.sleep(receiver.delay)
                receiver.received.append((self.headers["X-Cityloop-Delivery"], body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            yield
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)


def enqueue_pushes(city_db, target_url: str, cases: int, per_case: int) -> list[int]:
    """Status pushes as transitions write them: a few per case, ordered by the case."""
    engine = engine_for(city_db.url)
    now = datetime.now(UTC)
    try:
        with Session(engine) as session:
            messages = [
                enqueue(
                    session,
                    topic="case.status",
                    target_url=target_url,
                    payload={"case": case, "step": step},
                    now=now,
                    ordering_key=f"case:{case}",
                )
                for case in range(cases)
                for step in range(per_case)
            ]
            session.commit()
            return [m.id for m in messages]
    finally:
        engine.dispose()


def outbox_rows(city_db) -> list[OutboxMessage]:
    engine = engine_for(city_db.url)
    try:
        with Session(engine) as session:
            return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
    finally:
        engine.dispose()


def make_due_now(city_db) -> None:
    """Stands in for waiting out the back-off (30 s after a first failure) and the lease of a
    killed worker's claim (5 min): every pending message is due again."""
    engine = engine_for(city_db.url)
    try:
        with engine.begin() as conn:
            conn.execute(
                update(OutboxMessage)
                .where(OutboxMessage.status == "pending")
                .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
            )
    finally:
        engine.dispose()


def test_the_outbox_keeps_undelivered_pushes_across_a_worker_kill(city_db, backend):
    receiver = Receiver(free_port())
    ids = enqueue_pushes(city_db, receiver.url, cases=6, per_case=3)
    deliverer = worker(city_db, interval=0.2).start()
    try:
        # Down: each case's first push is tried, fails, and waits for its retry; the later
        # ones wait behind it.
        wait_until(
            lambda: sum(1 for r in outbox_rows(city_db) if r.last_error) == 6, 60, "failed attempts"
        )
        deliverer.kill9()
        rows = outbox_rows(city_db)
        assert [r.status for r in rows] == ["pending"] * len(ids)
        assert [r.attempts for r in rows] == [1, 0, 0] * 6
        make_due_now(city_db)
        with receiver.up():
            deliverer.start()
            wait_until(
                lambda: all(r.status == "delivered" for r in outbox_rows(city_db)),
                60,
                "every push delivered",
            )
            deliverer.stop()
    finally:
        deliverer.stop()
    arrived = [int(delivery) for delivery, _body in receiver.received]
    assert sorted(arrived) == ids  # each exactly once
    for case in range(6):
        steps = [body["step"] for _d, body in receiver.received if body["case"] == case]
        assert steps == [0, 1, 2]


@pytest.mark.slow
def test_a_worker_killed_mid_send_sends_that_one_push_again(city_db, backend):
    """Killed while the receiver is answering: delivery is at least once, so the push in
    flight may arrive twice — under the same X-Cityloop-Delivery id, for the receiver to
    drop; every other one arrives once."""
    receiver = Receiver(free_port(), delay=0.1)
    ids = enqueue_pushes(city_db, receiver.url, cases=10, per_case=4)
    with receiver.up():
        deliverer = worker(city_db, interval=0.2).start()
        try:
            wait_until(lambda: len(receiver.received) >= 12, 60, "some pushes delivered")
            deliverer.kill9()
            make_due_now(city_db)
            deliverer.start()
            wait_until(
                lambda: all(r.status == "delivered" for r in outbox_rows(city_db)),
                90,
                "every push delivered",
            )
        finally:
            deliverer.stop()
    arrived = Counter(int(delivery) for delivery, _body in receiver.received)
    assert sorted(arrived) == ids
    assert sum(arrived.values()) - len(ids) <= 1, arrived.most_common(3)
    print(f"\n{backend}: {len(ids)} pushes, {sum(arrived.values())} requests received")
