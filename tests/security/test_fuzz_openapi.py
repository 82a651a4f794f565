"""Generated requests over the whole OpenAPI (issue 7; REQUIREMENTS.md: "bad input to it gets a
clear error"): schemathesis, in-process against the app on the demo city, with an
administrator's token and without one. No 5xx, every 4xx with a message. A small, fixed budget
here; scripts/fuzz_api.py runs a bigger one. Below it, the 5xx the fuzzer found, one
regression test each."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

from cityloop.app import create_app
from cityloop.kit.clock import SettableClock
from cityloop.partners.service import forget_keys
from cityloop.places.service import PlaceIndex
from tests.cases.helpers import YINGCUI, point_in
from tests.conftest import TEST_SETTINGS, _bound_session_factory

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "fuzz_api.py"
EXAMPLES = 4  # per operation and caller: about 1,000 requests a database, derandomized (~20 s)


def _harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_api", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fuzz_app(
    city_connection: Connection, city_places: PlaceIndex, clock: SettableClock
) -> Iterator[FastAPI]:
    app = create_app(
        TEST_SETTINGS, session_factory=_bound_session_factory(city_connection), clock=clock
    )
    app.state.places = lambda: city_places
    yield app
    forget_keys()  # partner keys the fuzzer rotated are rolled back with the city


def test_generated_requests_get_no_5xx_and_every_4xx_a_message(fuzz_app, auth):
    """Also: every answer is as the OpenAPI says (status, body schema, content type)."""
    harness = _harness()
    summary = harness.fuzz(
        fuzz_app,
        {"anonymous": {}, "admin": auth("admin"), "handler": auth("handler")},
        max_examples=EXAMPLES,
        derandomize=True,
    )
    print(summary.report())
    assert summary.requests >= len(summary.per_operation) * 2
    assert len(summary.per_operation) >= 80, sorted(summary.per_operation)
    assert not summary.failures, summary.report()


@pytest.mark.slow
def test_a_longer_generated_run_finds_nothing_either(fuzz_app, auth):
    """The long run (issue 23): more examples, a fixed seed, three callers."""
    summary = _harness().fuzz(
        fuzz_app,
        {"anonymous": {}, "admin": auth("admin"), "handler": auth("handler")},
        max_examples=25,
        seed=23,
    )
    print(summary.report())
    assert not summary.failures, summary.report()


# -- the 5xx the fuzzer found, fixed ------------------------------------------------------------
HUGE = 10**30  # beyond every integer column (SQLite: OverflowError; PostgreSQL: DataError)
BIG = 2**40  # beyond PostgreSQL's integer columns, within SQLite's


ID_ROUTES = [
    ("GET", "/api/v1/cases/{n}", "admin"),
    ("GET", "/api/v1/cases/{n}/actions", "handler"),
    ("POST", "/api/v1/outbox/{n}/retry", "admin"),
    ("DELETE", "/api/v1/device-keys/{n}", "admin"),
    ("POST", "/api/v1/partners/{n}/key", "admin"),
    ("POST", "/api/v1/hotline/calls/{n}/place", "operator"),
    ("GET", "/api/v1/inspectors/{n}/track", "admin"),
]


def test_an_id_beyond_the_databases_range_is_not_found(client: TestClient, auth):
    for method, path, user in ID_ROUTES:
        for number in (BIG, HUGE):
            body = {"lon": 118.1, "lat": 24.5} if "place" in path else None
            params = (
                {"since": "2026-08-01T00:00:00+08:00", "until": "2026-08-02T00:00:00+08:00"}
                if "track" in path
                else None
            )
            response = client.request(
                method, path.format(n=number), json=body, params=params, headers=auth(user)
            )
            assert response.status_code == 404, (path, number, response.text)
            assert response.json()["detail"]


def test_a_filter_beyond_the_databases_range_names_the_field(client, auth):
    response = client.get(f"/api/v1/cases?department_id={HUGE}", headers=auth("admin"))
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "department_id"


def test_a_nul_character_never_becomes_a_server_error(client, auth, backend, city_places):
    """PostgreSQL refuses NUL in text; SQLite stores it. Either way the caller gets an answer,
    and PostgreSQL's refusal names the parameter."""
    listed = client.get("/api/v1/classes", params={"parent_code": "06\x00"})
    detections = client.get(
        "/api/v1/detections", params={"camera": "SM\x00"}, headers=auth("admin")
    )
    lon, lat = point_in(city_places, YINGCUI)
    report = client.post(
        "/api/v1/reports",
        json={
            "source": "public",
            "class_code": "06010",
            "description": "垃圾\x00",
            "lon": lon,
            "lat": lat,
        },
    )
    for response, field in ((listed, "parent_code"), (detections, "camera"), (report, "body")):
        assert response.status_code < 500, response.text
        if backend == "postgresql":
            assert response.status_code == 422 and response.json()["field"] == field
