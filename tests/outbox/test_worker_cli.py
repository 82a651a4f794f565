"""`cityloop worker` delivers the outbox after its sweep (R-IN-5)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cityloop.cli import app
from cityloop.config import get_settings
from cityloop.db import Base, make_engine
from cityloop.outbox.models import OutboxMessage
from cityloop.outbox.service import enqueue
from tests.conftest import TZ


def test_the_worker_delivers_what_is_due(tmp_path, receiver, monkeypatch):
    url = f"sqlite:///{tmp_path / 'worker.db'}"
    # The command points the process's settings at --db; undo that afterwards.
    monkeypatch.setenv("CITYLOOP_DATABASE_URL", url)
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        enqueue(
            session,
            topic="case.status",
            target_url=receiver.url,
            payload={"ticket": "260827ABCDEF", "state": "closed"},
            now=datetime.now(TZ) - timedelta(minutes=1),
        )
        session.commit()

    result = CliRunner().invoke(app, ["worker", "--once", "--db", url])

    assert result.exit_code == 0, result.output
    assert "outbox: 1 delivered, 0 to retry, 0 failed" in result.output
    assert [r.body["state"] for r in receiver.received] == ["closed"]
    with Session(engine) as session:
        row = session.get(OutboxMessage, 1)
        assert row is not None and row.status == "delivered"
    engine.dispose()
    get_settings.cache_clear()
