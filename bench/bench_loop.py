"""Benchmark: full loop transitions per second, on SQLite and PostgreSQL.

Each case goes report → file → dispatch → submit_result → approve_result → report_check →
close, every step in its own transaction through `intake.receive()` / `transition()`, as the
API does it (no HTTP). The baseline, measured in the same run on the same database, is the raw
rate of single-row INSERT + COMMIT from one client.

Run: .venv/bin/python bench/bench_loop.py [--cases 300] [--pg-url URL]
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from cityloop.cases.service import Actor, transition
from cityloop.db import Base, begin_write, make_engine
from cityloop.demo.build import build
from cityloop.intake.service import Report, receive
from cityloop.media.service import store_photo
from cityloop.models import load_all_models
from cityloop.org.models import Department, User
from cityloop.places.demo_xiamen import sample_point
from cityloop.places.service import PlaceIndex
from cityloop.taxonomy.service import working_calendar

TZ = ZoneInfo("Asia/Shanghai")
STEPS = (
    ("file", "operator", {}),
    ("dispatch", "dispatcher", {}),
    ("submit_result", "handler", {"result": "已处置", "method": "service", "photos": ["after"]}),
    ("approve_result", "dispatcher", {}),
    ("report_check", "inspector", {"passed": True, "photos": ["check"]}),
    ("close", "operator", {}),
)


def raw_insert_rate(engine: Engine, seconds: float = 3.0) -> float:
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS bench_raw"))
        conn.execute(text("CREATE TABLE bench_raw (id INTEGER PRIMARY KEY, note VARCHAR(40))"))
    count, started = 0, time.perf_counter()
    with engine.connect() as conn:
        while time.perf_counter() - started < seconds:
            with conn.begin():
                conn.execute(
                    text("INSERT INTO bench_raw (id, note) VALUES (:i, 'x')"), {"i": count}
                )
            count += 1
    return count / (time.perf_counter() - started)


def jpeg() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "gray").save(buffer, "JPEG")
    return buffer.getvalue()


def loop_rate(engine: Engine, cases: int, media_dir: Path) -> tuple[float, int]:
    with Session(engine) as session:
        users = {u.username: Actor.of(u) for u in session.scalars(select(User))}
        places = PlaceIndex.load(session)
        calendar = working_calendar(session)
        siming = session.scalar(select(Department.id).where(Department.code == "D-350203"))
        photo = store_photo(session, jpeg(), "bench.jpg", directory=media_dir, now=datetime.now(TZ))
        photo_id = photo.id  # read before the commit expires it
        session.commit()
    lon, lat = sample_point(places, "350203011003")
    now = datetime(2026, 9, 2, 9, 0, tzinfo=TZ)
    transitions = 0
    started = time.perf_counter()
    for index in range(cases):
        with Session(engine) as session:
            begin_write(session)
            case, _ = receive(
                session,
                Report(
                    source="inspector",
                    class_code="06010",
                    description=f"bench {index}",
                    lon=lon,
                    lat=lat,
                ),
                actor=users["inspector"],
                places=places,
                calendar=calendar,
                now=now,
            )
            session.commit()
            case_id = case.id
        transitions += 1
        for action, user, payload in STEPS:
            now += timedelta(seconds=1)
            body = dict(payload)
            if "photos" in body:
                body["photos"] = [photo_id]
            if action == "dispatch":
                body["department_id"] = siming
            with Session(engine) as session:
                begin_write(session)
                transition(session, case_id, action, users[user], body, now=now, calendar=calendar)
                session.commit()
            transitions += 1
    return transitions / (time.perf_counter() - started), transitions


def prepare(url: str) -> Engine:
    engine = make_engine(url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        build(session, cases=0, now=datetime(2026, 9, 1, 9, 0, tzinfo=TZ))
        session.commit()
    return engine


def pg_database(admin_url: str, name: str) -> str:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    load_all_models()
    with tempfile.TemporaryDirectory() as tmp:
        targets = [("SQLite (WAL file)", f"sqlite:///{Path(tmp) / 'bench.db'}")]
        try:
            targets.append(("PostgreSQL", pg_database(args.pg_url, "cityloop_bench")))
        except Exception as exc:  # the benchmark still reports SQLite on a laptop without it
            print(f"PostgreSQL skipped: {exc}")
        print(
            f"{'database':<20} {'raw insert+commit/s':>20} {'loop transitions/s':>20} {'ratio':>8}"
        )
        for label, url in targets:
            engine = prepare(url)
            raw = raw_insert_rate(engine)
            rate, count = loop_rate(engine, args.cases, Path(tmp) / "media")
            print(
                f"{label:<20} {raw:>20.0f} {rate:>20.1f} {rate / raw:>8.3f}   ({count} transitions)"
            )
            engine.dispose()


if __name__ == "__main__":
    main()
