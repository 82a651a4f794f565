"""Fixtures for the attack and bad-input tests: an app with a tight login policy reached from
chosen client addresses, and logins through the API and through the console's form."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

from cityloop.app import create_app
from cityloop.kit.clock import SettableClock
from cityloop.places.service import PlaceIndex
from tests.conftest import TEST_SETTINGS, _bound_session_factory

PASSWORD = "cityloop-demo"  # the demo accounts' password
# Small numbers so that a test reaches every limit in a few attempts.
TIGHT = {
    "login_window_minutes": 15,
    "login_max_failures": 2,
    "login_max_failures_per_address": 4,
    "login_lockout_failures": 4,
    "login_lockout_minutes": 30,
}


@pytest.fixture
def tight_app(
    city_connection: Connection, city_places: PlaceIndex, clock: SettableClock
) -> FastAPI:
    settings = TEST_SETTINGS.model_copy(update=TIGHT)
    app = create_app(settings, session_factory=_bound_session_factory(city_connection), clock=clock)
    app.state.places = lambda: city_places
    return app


@pytest.fixture
def at(tight_app: FastAPI) -> Iterator[Callable[[str], TestClient]]:
    """A client of the tight app at a given address (each address its own cookies)."""
    clients: dict[str, TestClient] = {}
    with ExitStack() as stack:

        def client(address: str = "10.0.0.1") -> TestClient:
            if address not in clients:
                clients[address] = stack.enter_context(
                    TestClient(tight_app, client=(address, 40000))
                )
            return clients[address]

        yield client


def token_login(client: TestClient, username: str, password: str) -> httpx.Response:
    return client.post("/api/v1/auth/token", data={"username": username, "password": password})


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def form_login(client: TestClient, username: str, password: str) -> httpx.Response:
    token = csrf_of(client.get("/login").text)
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
