"""`cityloop backup` / `cityloop restore` (R-CL-5: the case archive must survive the machine).

The demo city with cases round-trips on SQLite (the backup API) and PostgreSQL (pg_dump /
pg_restore): row counts and the digest of every timeline equal, every hash chain verifies, and
the restored city takes new reports. A backup taken while reports keep arriving is one
consistent instant. A database holding data is not overwritten without --force; a missing
pg_dump, a file that is no backup, or a backup of the other kind get a clear error.
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

from cityloop.backup.service import (
    BackupError,
    backup,
    fingerprint,
    read_manifest,
    restore,
)
from cityloop.cases.models import Case
from cityloop.cases.service import Actor, transition
from cityloop.cli import app
from cityloop.config import get_settings
from cityloop.intake.service import Report, receive
from cityloop.org.models import User
from cityloop.places.service import PlaceIndex
from cityloop.taxonomy.service import working_calendar
from tests.conftest import PG_URL, _drop_pg_database


@pytest.fixture
def cli(monkeypatch):
    """The command line, as an operator runs it; it points the settings at --db: undo that."""
    monkeypatch.delenv("CITYLOOP_DATABASE_URL", raising=False)
    yield CliRunner()
    get_settings.cache_clear()


@pytest.fixture
def target(backend, tmp_path):
    """Where to restore: a SQLite file or a PostgreSQL database that does not exist yet."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'restored' / 'city.db'}"
        return
    name = f"cityloop_test_restored_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    _drop_pg_database(name)


class Desk:
    """Reports and steps of the loop through the services, as the console makes them."""

    def __init__(
        self, url: str, points: list[tuple[float, float]], places: PlaceIndex | None = None
    ) -> None:
        self.engine = create_engine(url, poolclass=NullPool)
        with Session(self.engine) as session:
            self.places = places or PlaceIndex.load(session)
            self.users = {u.username: Actor.of(u) for u in session.scalars(select(User)).all()}
            self.calendar = working_calendar(session)
        self.points = iter(points[::5])

    def report(self, source: str = "public", class_code: str = "06010") -> int:
        lon, lat = next(self.points)
        with Session(self.engine) as session:
            case, _ = receive(
                session,
                Report(source, class_code, "备份测试 backup test", lon=lon, lat=lat),
                actor=self.users["admin"],
                places=self.places,
                calendar=self.calendar,
                now=datetime.now(UTC),
            )
            session.commit()
            return case.id

    def act(self, case_id: int, action: str, user: str, **payload: object) -> None:
        with Session(self.engine) as session:
            transition(
                session,
                case_id,
                action,
                self.users[user],
                dict(payload),
                now=datetime.now(UTC),
                calendar=self.calendar,
            )
            session.commit()

    def close(self) -> None:
        self.engine.dispose()


def open_cases_at_several_stages(desk: Desk) -> None:
    for _ in range(4):
        desk.report()  # waiting for verification
    for _ in range(4):
        desk.act(desk.report(), "file", "operator")  # filed
    for _ in range(3):
        desk.report("inspector", "01037")  # a street lamp: filed and dispatched at once
    desk.act(desk.report(), "reject", "shiftlead", reason="不属于城管受理范围")


def said(result) -> str:
    """The command's output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def fingerprint_of(url: str):
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return fingerprint(conn)
    finally:
        engine.dispose()


def test_the_city_round_trips_with_every_timeline_intact(city_db, target, cli, tmp_path):
    desk = Desk(city_db.url, city_db.points)
    try:
        open_cases_at_several_stages(desk)
    finally:
        desk.close()
    places = desk.places
    original = fingerprint_of(city_db.url)
    assert original.cases == 12 and original.events > 12

    file = tmp_path / "backups" / "city.backup"
    made = cli.invoke(app, ["backup", "--db", city_db.url, "--out", str(file)])
    assert made.exit_code == 0, made.output
    assert "backed up" in said(made) and "12 cases" in said(made)
    assert read_manifest(file) == original

    restored = cli.invoke(app, ["restore", "--db", target, "--from", str(file)])
    assert restored.exit_code == 0, restored.output
    assert "equal the backup's manifest" in said(restored)
    assert f"{original.events} events checked, every chain intact" in said(restored)
    assert fingerprint_of(target) == original

    # The restored city goes on: new cases get new ids and tickets.
    desk = Desk(target, city_db.points[1::5], places)
    try:
        new_id = desk.report()
        with Session(desk.engine) as session:
            assert new_id > max(session.scalars(select(Case.id).where(Case.id != new_id)))
            assert session.scalar(select(func.count()).select_from(Case)) == 13
    finally:
        desk.close()

    again = cli.invoke(app, ["restore", "--db", target, "--from", str(file)])
    assert again.exit_code == 2
    assert "not empty" in said(again) and "--force" in said(again)
    assert fingerprint_of(target).cases == 13  # untouched
    forced = cli.invoke(app, ["restore", "--db", target, "--from", str(file), "--force"])
    assert forced.exit_code == 0, forced.output
    assert fingerprint_of(target) == original


def test_a_backup_taken_while_reports_arrive_is_one_instant(city_db, target, tmp_path):
    """Online: the server keeps writing during the backup; the backup holds whole cases only
    (each with its first event) and its manifest describes exactly what it holds."""
    desk = Desk(city_db.url, city_db.points)
    stop = threading.Event()
    written: list[int] = []
    failures: list[BaseException] = []

    def keep_reporting() -> None:
        try:
            while not stop.is_set():
                written.append(desk.report())
        except BaseException as exc:  # surfaced below: a thread's error would vanish
            failures.append(exc)

    writer = threading.Thread(target=keep_reporting)
    writer.start()
    try:
        while len(written) < 3 and writer.is_alive():
            stop.wait(0.05)
        during = len(written)
        outcome = backup(city_db.url, tmp_path / "online.backup")
        after = len(written)
    finally:
        stop.set()
        writer.join(60)
        desk.close()
    assert not failures, failures
    assert after > during or outcome.backend == "sqlite"  # pg_dump takes long enough to see it
    assert during <= outcome.fingerprint.cases <= len(written)
    result = restore(target, tmp_path / "online.backup")
    assert result.fingerprint == result.expected == outcome.fingerprint
    engine = create_engine(target, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            half = conn.scalar(
                text(
                    "SELECT count(*) FROM cases c WHERE NOT EXISTS (SELECT 1 FROM case_events e "
                    "WHERE e.case_id = c.id AND e.seq = 1)"
                )
            )
    finally:
        engine.dispose()
    assert half == 0


def test_clear_errors(city_db, target, cli, tmp_path, backend):
    not_a_backup = tmp_path / "notes.txt"
    not_a_backup.write_text("这不是备份", encoding="utf-8")
    refused = cli.invoke(app, ["restore", "--db", target, "--from", str(not_a_backup)])
    assert refused.exit_code == 2 and "not a cityloop backup" in said(refused)
    missing = cli.invoke(app, ["restore", "--db", target, "--from", str(tmp_path / "none")])
    assert missing.exit_code == 2 and "cannot read the backup" in said(missing)

    file = tmp_path / "city.backup"
    assert cli.invoke(app, ["backup", "--db", city_db.url, "--out", str(file)]).exit_code == 0
    other = f"sqlite:///{tmp_path / 'other.db'}" if backend == "postgresql" else PG_URL
    crossed = cli.invoke(app, ["restore", "--db", other, "--from", str(file)])
    assert crossed.exit_code == 2 and f"is a {backend} backup" in said(crossed)

    if backend == "postgresql":
        no_tools = ["--pg-bin", str(tmp_path)]
        nothing = cli.invoke(
            app, ["backup", "--db", city_db.url, "--out", str(tmp_path / "x"), *no_tools]
        )
        assert nothing.exit_code == 2
        assert "pg_dump not found" in said(nothing)
        assert re.search(r"apt-get install postgresql-client-\d+", said(nothing))
        assert not (tmp_path / "x").exists()
    else:
        itself = Path(make_url(city_db.url).database or "")
        with pytest.raises(BackupError, match="names the database itself"):
            backup(city_db.url, itself)


@pytest.mark.slow
def test_the_full_demo_city_round_trips(backend, target, cli, tmp_path):
    """`cityloop demo` with its generated cases in every stage, devices, partners, outbox."""
    from cityloop.db import Base, make_engine
    from cityloop.demo.build import build
    from tests.conftest import TZ

    if backend == "sqlite":
        source = f"sqlite:///{tmp_path / 'demo.db'}"
    else:
        from tests.conftest import _pg_database

        source = _pg_database(f"cityloop_test_demo_{os.getpid()}")
    engine = make_engine(source)
    try:
        Base.metadata.create_all(engine)
        with Session(engine) as session:
            build(
                session,
                cases=60,
                now=datetime(2026, 11, 20, 16, 0, tzinfo=TZ),
                media_dir=tmp_path / "media",
            )
            session.commit()
    finally:
        engine.dispose()
    file = tmp_path / "demo.backup"
    assert cli.invoke(app, ["backup", "--db", source, "--out", str(file)]).exit_code == 0
    restored = cli.invoke(app, ["restore", "--db", target, "--from", str(file)])
    assert restored.exit_code == 0, restored.output
    assert "every chain intact" in said(restored)
    original = fingerprint_of(source)
    assert original.cases >= 60 and fingerprint_of(target) == original
    if backend == "postgresql":
        _drop_pg_database(make_url(source).database or "")
