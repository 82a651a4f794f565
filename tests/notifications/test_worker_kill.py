"""`kill -9` of `cityloop worker` in the middle of a notification's delivery (issue 13,
R-HD-4): the department's system has the request but the worker dies before the answer. After
the restart the message is sent again under the same delivery id and a valid signature, so
the receiver recognises the replay: every notification is taken in exactly once, none lost.
SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select, update

from cityloop.db import begin_write, make_engine, make_session_factory
from cityloop.notifications import service
from cityloop.outbox.models import OutboxMessage
from tests.faults.harness import Proc, process_env, wait_until
from tests.notifications.conftest import department, dispatch_a_case

pytestmark = pytest.mark.slow
SECRET = "department-system-secret-0001"


class HangingReceiver:
    """Holds the first request without answering until released; takes in each delivery id
    once (a replay is answered 200 and dropped)."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.taken: list[str] = []
        self.hanging = threading.Event()
        self.release = threading.Event()
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                delivery = self.headers["X-Cityloop-Delivery"]
                expected = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
                assert self.headers["X-Cityloop-Signature"] == expected
                with lock:
                    receiver.requests.append(delivery)
                    first = len(receiver.requests) == 1
                if first:
                    receiver.hanging.set()
                    receiver.release.wait(60)
                    return  # the worker is gone: no answer
                with lock:
                    if delivery not in receiver.taken:
                        receiver.taken.append(delivery)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def test_a_worker_killed_mid_delivery_delivers_once_after_restart(city_db):
    receiver = HangingReceiver()
    engine = make_engine(city_db.url)
    factory = make_session_factory(engine)
    try:
        with factory() as session:
            begin_write(session)
            service.set_webhook(session, department(session, "D-350203").id, receiver.url, SECRET)
            session.commit()
        for code in ("21004", "06010", "09005"):
            dispatch_a_case(factory, phone="13912345678", class_code=code)

        def rows() -> list[OutboxMessage]:
            with factory() as session:
                found = list(
                    session.scalars(
                        select(OutboxMessage)
                        .where(OutboxMessage.channel == "dept_webhook")
                        .order_by(OutboxMessage.id)
                    )
                )
                session.expunge_all()
                return found

        env = process_env(
            city_db.url,
            city_db.data_dir,
            CITYLOOP_NOTIFY_SMS_LOG=str(city_db.data_dir / "sms.log"),
        )
        deliverer = Proc(["worker", "--interval", "0.2"], env, city_db.data_dir / "worker.log")
        deliverer.start()
        try:
            assert receiver.hanging.wait(60), deliverer.output()[-2000:]
            deliverer.kill9()  # mid-delivery: the request is in, its answer never read
            receiver.release.set()
            # Stands in for waiting out the dead worker's five-minute lease.
            with engine.begin() as conn:
                conn.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.status == "pending")
                    .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
                )
            deliverer.start()
            wait_until(
                lambda: all(r.status == "delivered" for r in rows()), 90, "every webhook delivered"
            )
        finally:
            deliverer.stop()
        ids = [str(r.id) for r in rows()]
        assert len(ids) >= 3  # a case born, filed and dispatched: each an event it holds
        assert sorted(receiver.taken, key=int) == ids  # each taken in exactly once
        sent = Counter(receiver.requests)
        assert sum(sent.values()) == len(ids) + 1  # only the one in flight went twice
        assert sent[receiver.requests[0]] == 2
        # The SMS of the same run: each outbox message in the log under one OutId.
        log = (city_db.data_dir / "sms.log").read_text(encoding="utf-8").splitlines()
        out_ids = Counter(json.loads(line)["OutId"] for line in log)
        assert out_ids and max(out_ids.values()) == 1
    finally:
        receiver.close()
        engine.dispose()
