"""Benchmark of the event stream and notifications (issue 13), on SQLite and PostgreSQL.

1. The loop's transition rate with the event stream and three subscribers (the partner status
   push, notifications with a department webhook set on 思明区城管办, and a counter standing
   for a data feed) against the same loop with no subscriber, in the same run, interleaved
   A/B/A/B rounds on the same database (goal: >= 0.85).
2. Notifications delivered per second by one worker (`deliver_due`) to a department's
   webhook receiver on 127.0.0.1 (a threaded stdlib server in this process).
3. Commit → SSE latency: `cityloop serve --workers 2`, clients on the live stream
   (`GET /api/v1/me/notifications/stream`, httpx, not a browser), while this process
   dispatches cases at a fixed rate; p50/p99 from each commit to each client's frame.

Run: .venv/bin/python bench/bench_events.py [--cases 30] [--rounds 4] [--deliveries 300]
     [--latency-seconds 10] [--rate 10] [--clients 20] [--pg-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_loop import loop_rate, pg_database, prepare
from cityloop import events
from cityloop.cases.service import Actor, transition
from cityloop.db import begin_write, make_engine, make_session_factory
from cityloop.intake.service import Report, receive
from cityloop.listeners import register_listeners
from cityloop.models import load_all_models
from cityloop.notifications import service as notifications
from cityloop.notifications.channels import register_channels
from cityloop.notifications.settings import NotifySettings
from cityloop.org.models import Department, User
from cityloop.outbox.delivery import deliver_due
from cityloop.outbox.service import enqueue
from cityloop.places.demo_xiamen import sample_point
from cityloop.places.service import PlaceIndex
from cityloop.taxonomy.service import working_calendar

SECRET = secrets.token_urlsafe(32)  # a weak key would be refused by `cityloop serve`
PASSWORD = "cityloop-demo"


class Receiver:
    def __init__(self) -> None:
        self.count = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                receiver.count += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def set_webhook(engine: Engine, url: str) -> int:
    with Session(engine) as session:
        begin_write(session)
        siming = session.scalar(select(Department).where(Department.code == "D-350203"))
        assert siming is not None
        notifications.set_webhook(session, siming.id, url, "bench-webhook-secret-01")
        session.commit()
        return siming.id


def ab_rounds(engine: Engine, cases: int, rounds: int, media: Path) -> tuple[float, float]:
    seen = {"n": 0}

    def feed(_session: Session, _event: events.DomainEvent) -> None:
        seen["n"] += 1

    bare, full = [], []
    # A B B A …: the machine's drift (other work on the shared cores) falls on both.
    for index in range(rounds):
        for with_listeners in (False, True) if index % 2 == 0 else (True, False):
            events.clear()
            if with_listeners:
                register_listeners()
                events.subscribe("bench.feed", feed)
            (full if with_listeners else bare).append(loop_rate(engine, cases, media)[0])
    events.clear()
    register_listeners()
    none, three = [round(r) for r in bare], [round(r) for r in full]
    print(f"  rounds, transitions/s: none {none}, three {three}")
    return statistics.median(bare), statistics.median(full)


def delivery_rate(
    engine: Engine, receiver: Receiver, department_id: int, count: int
) -> tuple[float, int]:
    factory = make_session_factory(engine)
    now = datetime.now(UTC)
    deliver_due(factory, now=now, max_messages=100_000)  # what the A/B rounds queued
    with factory() as session:
        begin_write(session)
        for index in range(count):
            enqueue(
                session,
                topic="department.bench",
                channel="dept_webhook",
                target_url=receiver.url,
                payload={"event": "case.bench", "n": index, "department": {"id": department_id}},
                now=now,
            )
        session.commit()
    before = receiver.count
    elapsed = _timed(lambda: deliver_due(factory, now=now, max_messages=100_000))
    delivered = receiver.count - before
    return delivered / elapsed, delivered


def _timed(work: Any) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def latency(
    url: str, data_dir: Path, seconds: float, rate: float, clients: int
) -> dict[str, float]:
    port = free_port()
    env = {
        **os.environ,
        "CITYLOOP_DATABASE_URL": url,
        "CITYLOOP_DATA_DIR": str(data_dir),
        "CITYLOOP_SECRET_KEY": SECRET,
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "cityloop.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        token = httpx.post(
            f"{base}/api/v1/auth/token", data={"username": "handler", "password": PASSWORD}
        ).json()["access_token"]
        committed: dict[str, float] = {}
        delays: list[float] = []
        lock = threading.Lock()
        stop = threading.Event()
        ready = threading.Barrier(clients + 1)

        def client() -> None:
            with (
                httpx.Client(timeout=None) as http,
                http.stream(
                    "GET",
                    f"{base}/api/v1/me/notifications/stream",
                    headers={"Authorization": f"Bearer {token}"},
                    params={"max_seconds": seconds + 30},
                ) as stream,
            ):
                waited = False
                for line in stream.iter_lines():
                    if not waited and line.startswith("event: unread"):
                        waited = True
                        ready.wait()
                    if line.startswith("data: ") and '"ticket"' in line:
                        got = time.time()
                        ticket = json.loads(line[6:])["ticket"]
                        with lock:
                            if ticket in committed:
                                delays.append(got - committed[ticket])
                    if stop.is_set():
                        return

        threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
        for thread in threads:
            thread.start()
        ready.wait()
        engine = make_engine(url)
        with Session(engine) as session:
            users = {u.username: Actor.of(u) for u in session.scalars(select(User))}
            places = PlaceIndex.load(session)
            calendar = working_calendar(session)
            siming = session.scalar(select(Department.id).where(Department.code == "D-350203"))
        lon, lat = sample_point(places, "350203011003")
        sent = 0
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            with Session(engine) as session:
                begin_write(session)
                now = datetime.now(UTC)
                # A leader's assignment: filed at once, never merged into another (so that
                # every one of them is dispatched to 思明区城管办 and told to its handler).
                case, _ = receive(
                    session,
                    Report(
                        source="leader",
                        class_code="09005",
                        description=f"延迟 {sent}",
                        lon=lon,
                        lat=lat,
                    ),
                    actor=users["leader"],
                    places=places,
                    calendar=calendar,
                    now=now,
                )
                if case.state == "filed":
                    transition(
                        session,
                        case.id,
                        "dispatch",
                        users["dispatcher"],
                        {"department_id": siming},
                        now=now,
                        calendar=calendar,
                    )
                ticket = case.ticket
                session.commit()
                with lock:
                    committed[ticket] = time.time()
            sent += 1
            time.sleep(max(0.0, started + sent / rate - time.monotonic()))
        time.sleep(2)
        stop.set()
        engine.dispose()
        with lock:
            ordered = sorted(delays)
        if not ordered:
            return {"events": sent, "frames": 0}
        return {
            "events": sent,
            "frames": len(ordered),
            "p50_ms": 1000 * ordered[len(ordered) // 2],
            "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
            "max_ms": 1000 * ordered[-1],
        }
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cases", type=int, default=30, help="cases per A/B round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--deliveries", type=int, default=300)
    parser.add_argument("--latency-seconds", type=float, default=10)
    parser.add_argument("--rate", type=float, default=10, help="dispatches per second")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--only", choices=("sqlite", "postgresql"), default=None)
    args = parser.parse_args()
    load_all_models()
    with tempfile.TemporaryDirectory() as tmp:
        register_channels(NotifySettings(sms_log=Path(tmp) / "sms.log"))
        targets = []
        if args.only != "postgresql":
            targets.append(("SQLite (WAL file)", f"sqlite:///{Path(tmp) / 'bench.db'}"))
        if args.only != "sqlite":
            try:
                targets.append(("PostgreSQL", pg_database(args.pg_url, "cityloop_bench_events")))
            except Exception as exc:  # the benchmark still reports SQLite without it
                print(f"PostgreSQL skipped: {exc}")
        for label, url in targets:
            engine = prepare(url)
            receiver = Receiver()
            department_id = set_webhook(engine, receiver.url)
            bare, full = ab_rounds(engine, args.cases, args.rounds, Path(tmp) / "media")
            print(
                f"{label}: transitions/s without subscribers {bare:.1f}, with the stream and three "
                f"{full:.1f}, ratio {full / bare:.3f}"
            )
            rate, delivered = delivery_rate(engine, receiver, department_id, args.deliveries)
            print(f"{label}: one worker delivered {delivered} signed webhooks, {rate:.0f}/s")
            receiver.close()
            engine.dispose()
            if args.latency_seconds > 0:
                result = latency(url, Path(tmp), args.latency_seconds, args.rate, args.clients)
                print(
                    f"{label}: commit -> SSE frame, {args.clients} clients, "
                    f"{args.rate:g} dispatches/s: {result}"
                )


if __name__ == "__main__":
    main()
