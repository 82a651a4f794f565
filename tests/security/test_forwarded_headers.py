"""Issue 23 item 5: the per-address login limit cannot be dodged with X-Forwarded-For. The
address is the peer's unless the peer is a proxy named in CITYLOOP_TRUSTED_PROXIES (empty by
default): checked on the real `cityloop serve` (uvicorn trusted 127.0.0.1 by default, so any
local client picked its own address) and in the app itself, whatever server runs it."""

from __future__ import annotations

import pytest
from fastapi import Request
from fastapi.testclient import TestClient

from cityloop.app import create_app
from tests.conftest import TEST_SETTINGS, _bound_session_factory
from tests.faults.harness import Server, http_json

PER_ADDRESS = 3


def _form_login(port: int, username: str, forwarded: str) -> int:
    import http.client
    from urllib.parse import urlencode

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(
            "POST",
            "/api/v1/auth/token",
            body=urlencode({"username": username, "password": "wrong-password"}),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Forwarded-For": forwarded,
            },
        )
        return conn.getresponse().status
    finally:
        conn.close()


def _serve(city_db, **env: str) -> Server:
    server = Server(city_db.url, city_db.data_dir, workers=1)
    server.env.update({"CITYLOOP_LOGIN_MAX_FAILURES_PER_ADDRESS": str(PER_ADDRESS), **env})
    return server.start()


def test_a_forwarded_address_from_an_untrusted_peer_is_ignored(city_db, backend):
    if backend != "sqlite":
        pytest.skip("the server's proxy handling is the same on both databases")
    server = _serve(city_db)
    try:
        for n in range(PER_ADDRESS):
            assert _form_login(server.port, f"nobody{n}", "10.5.5.5") == 401
        # Another claimed address changes nothing: the peer is 127.0.0.1 all along.
        assert _form_login(server.port, "nobody-else", "10.5.5.6") == 429
        status, _ = http_json(server.port, "GET", "/healthz")
        assert status == 200
    finally:
        server.stop()


def test_a_trusted_proxy_names_the_client(city_db, backend):
    if backend != "sqlite":
        pytest.skip("the server's proxy handling is the same on both databases")
    server = _serve(city_db, CITYLOOP_TRUSTED_PROXIES="127.0.0.1")
    try:
        for n in range(PER_ADDRESS):
            assert _form_login(server.port, f"nobody{n}", "10.5.5.5") == 401
        assert _form_login(server.port, "nobody-x", "10.5.5.5") == 429
        assert _form_login(server.port, "nobody-y", "10.5.5.6") == 401
    finally:
        server.stop()


def test_the_app_itself_trusts_only_the_configured_proxies(city_connection, city_places, clock):
    def client_seen(trusted: str) -> str:
        settings = TEST_SETTINGS.model_copy(update={"trusted_proxies": trusted})
        app = create_app(
            settings, session_factory=_bound_session_factory(city_connection), clock=clock
        )

        @app.get("/_peer")
        def peer(request: Request) -> dict[str, str]:
            return {"host": request.client.host if request.client else "-"}

        with TestClient(app) as client:
            response = client.get("/_peer", headers={"X-Forwarded-For": "10.5.5.5"})
            return str(response.json()["host"])

    assert client_seen("") == "testclient"
    assert client_seen("testclient") == "10.5.5.5"
