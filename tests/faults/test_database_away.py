"""A database that is away (restarting, failed over, unreachable) makes requests answer 503
with a clear message and Retry-After, never 500; the service itself stays up (R-IN-1: a
citizen's app can tell "try again" from "your report is wrong"). The restart itself, under
load and with real processes, is in test_pg_restart.py."""

from __future__ import annotations

from fastapi.testclient import TestClient

from cityloop.app import create_app
from cityloop.db import make_engine
from tests.conftest import TEST_SETTINGS
from tests.faults.harness import free_port


def test_a_database_that_is_away_answers_503(backend, tmp_path):
    if backend == "postgresql":
        url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nowhere"  # nobody listens
    else:
        url = f"sqlite:///{tmp_path}"  # a directory: the file cannot be opened
    engine = make_engine(url)
    app = create_app(TEST_SETTINGS, engine=engine)
    report = {"source": "public", "class_code": "06010", "description": "垃圾", "lon": 118.1}
    try:
        with TestClient(app) as client:
            answer = client.post("/api/v1/reports", json={**report, "lat": 24.48})
            assert answer.status_code == 503, answer.text
            assert answer.json() == {
                "detail": "the database is unavailable for a moment; try again",
                "code": "unavailable",
                "field": None,
            }
            assert answer.headers["Retry-After"] == "1"
            assert client.get("/api/v1/tickets/261123ABCDEF").status_code == 503
            assert client.get("/healthz").status_code == 200
    finally:
        engine.dispose()
