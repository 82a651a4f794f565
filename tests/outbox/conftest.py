"""Fixtures for the outbox: a webhook receiver, and a database of its own (the delivery job
commits, so it cannot share the rolled-back city database)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cityloop.outbox.models import OutboxMessage
from tests.conftest import _pg_database
from tests.outbox.receiver import Receiver, running_receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture
def outbox_url(backend: str, tmp_path: Path) -> str:
    """A fresh database holding the outbox table only; its URL, so that a test can open
    engines on it as a restarted worker would."""
    from cityloop.db import make_engine

    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'outbox.db'}"
    else:
        url = _pg_database(f"cityloop_test_outbox_{os.getpid()}")
    engine = make_engine(url)
    OutboxMessage.__table__.create(engine)
    engine.dispose()
    return url
