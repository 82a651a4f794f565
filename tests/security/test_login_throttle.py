"""Guessing passwords is slowed and then stopped (issue 7; REQUIREMENTS.md has no security
item, these guard the login every R- capability starts from): failed logins are counted per
account and per client address in the database, so every server process sees them; a limit
in a window answers 429 with Retry-After, failures in a row lock the account (423) until the
lock ends or an administrator lifts it. The API and the console's form share the count.
Passwords never reach the logs, and tokens expire."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from cityloop.app import create_app
from cityloop.org.models import LoginThrottle, User
from cityloop.org.service import issue_token
from tests.conftest import TEST_SETTINGS
from tests.security.conftest import PASSWORD, TIGHT, form_login, token_login


@pytest.fixture
def one_database(backend: str) -> None:
    """For tests whose statements the tests run on both databases execute already: argon2
    makes each login cost a fifth of a second, so these run on SQLite only."""
    if backend != "sqlite":
        pytest.skip("the same statements run on PostgreSQL in the tests on both databases")


def _fail(client: TestClient, username: str, times: int) -> None:
    for _ in range(times):
        response = token_login(client, username, "not-the-password")
        assert response.status_code == 401, response.text


def test_an_account_is_throttled_after_failures_and_free_again_after_the_window(at, clock):
    client = at("10.0.0.1")
    _fail(client, "operator", TIGHT["login_max_failures"])
    # Even the right password waits: a guess in the window is never checked.
    refused = token_login(client, "operator", PASSWORD)
    assert refused.status_code == 429
    body = refused.json()
    assert body["field"] == "username" and "too many failed logins" in body["detail"]
    wait = int(refused.headers["Retry-After"])
    assert 0 < wait <= 15 * 60
    # From another address the account is throttled all the same.
    assert token_login(at("10.0.0.2"), "operator", PASSWORD).status_code == 429

    clock.advance(seconds=wait)
    assert token_login(client, "operator", PASSWORD).status_code == 200


def test_a_success_clears_the_accounts_count(at, one_database):
    client = at()
    limit = TIGHT["login_max_failures"]
    _fail(client, "dispatcher", limit - 1)
    assert token_login(client, "dispatcher", PASSWORD).status_code == 200
    _fail(client, "dispatcher", limit - 1)
    assert token_login(client, "dispatcher", PASSWORD).status_code == 200


def test_failures_in_a_row_lock_the_account_until_the_lock_ends(at, clock):
    client = at()
    window = timedelta(minutes=TIGHT["login_window_minutes"])
    done = 0
    while done < TIGHT["login_lockout_failures"]:
        batch = min(TIGHT["login_max_failures"], TIGHT["login_lockout_failures"] - done)
        _fail(client, "shiftlead", batch)
        done += batch
        if done < TIGHT["login_lockout_failures"]:
            clock.advance(seconds=window.total_seconds())  # wait out each window
    locked = token_login(client, "shiftlead", PASSWORD)
    assert locked.status_code == 423
    assert locked.json()["code"] == "locked" and "administrator" in locked.json()["detail"]
    assert int(locked.headers["Retry-After"]) == TIGHT["login_lockout_minutes"] * 60

    clock.advance(minutes=TIGHT["login_lockout_minutes"] - 1)
    assert token_login(client, "shiftlead", PASSWORD).status_code == 423
    clock.advance(minutes=1)
    assert token_login(client, "shiftlead", PASSWORD).status_code == 200


def test_an_administrator_sees_and_lifts_a_lock(at, auth, clock):
    client = at()
    _fail_until_locked(client, "leader", clock)

    listed = client.get("/api/v1/auth/lockouts", headers=auth("admin"))
    assert listed.status_code == 200
    (entry,) = [e for e in listed.json() if e["username"] == "leader"]
    assert entry["locked_until"] is not None

    assert client.get("/api/v1/auth/lockouts", headers=auth("operator")).status_code == 403
    refused = client.delete("/api/v1/auth/lockouts/leader", headers=auth("dispatcher"))
    assert refused.status_code == 403
    assert token_login(client, "leader", PASSWORD).status_code == 423

    lifted = client.delete("/api/v1/auth/lockouts/leader", headers=auth("admin"))
    assert lifted.status_code == 200 and lifted.json()["username"] == "leader"
    assert token_login(client, "leader", PASSWORD).status_code == 200
    missing = client.delete("/api/v1/auth/lockouts/nobody-here", headers=auth("admin"))
    assert missing.status_code == 404 and missing.json()["field"] == "username"


def _fail_until_locked(client: TestClient, username: str, clock) -> None:
    for _ in range(TIGHT["login_lockout_failures"] * 2):
        response = token_login(client, username, "not-the-password")
        if response.status_code == 423:
            return
        if response.status_code == 429:
            clock.advance(minutes=TIGHT["login_window_minutes"])
    raise AssertionError(f"{username} never got locked")


def test_old_failures_are_forgotten(at, clock, city_session):
    """A guesser of many names does not fill the table: counts nobody added to for twice the
    longest period (window, lock) are dropped with the next failure."""
    client = at()
    _fail(client, "ghost-name-1", 1)
    _fail_until_locked(client, "operator", clock)
    clock.advance(minutes=TIGHT["login_lockout_minutes"] * 2 + 1)
    other = at("10.0.0.50")
    _fail(other, "ghost-name-2", 1)
    city_session.expire_all()
    kinds = city_session.scalars(select(LoginThrottle.kind)).all()
    assert sorted(kinds) == ["account", "address"], kinds  # ghost-name-2 and 10.0.0.50
    assert token_login(other, "operator", PASSWORD).status_code == 200


def test_an_address_guessing_many_names_is_throttled(at, one_database):
    guesser = at("10.9.9.9")
    for index in range(TIGHT["login_max_failures_per_address"]):
        assert token_login(guesser, f"name{index}", "guess").status_code == 401
    refused = token_login(guesser, "operator", PASSWORD)
    assert refused.status_code == 429 and refused.json()["field"] == "client"
    assert "address" in refused.json()["detail"] and int(refused.headers["Retry-After"]) > 0
    # Somebody else, elsewhere, logs in as usual.
    assert token_login(at("10.0.0.7"), "operator", PASSWORD).status_code == 200


def test_an_unknown_name_is_throttled_like_a_known_one(at, one_database):
    """The answers do not tell which usernames exist."""
    client = at()
    for name in ("operator", "no-such-user"):
        statuses = [
            token_login(client, name, "wrong").status_code
            for _ in range(TIGHT["login_max_failures"] + 1)
        ]
        assert statuses == [401] * TIGHT["login_max_failures"] + [429]


def test_the_console_form_and_the_api_share_one_count(at, clock, one_database):
    client = at()
    _fail(client, "inspector", TIGHT["login_max_failures"] - 1)
    wrong = form_login(client, "inspector", "still-wrong")
    assert wrong.status_code == 401
    refused = form_login(client, "inspector", PASSWORD)
    assert refused.status_code == 429
    assert "登录失败次数过多" in refused.text and int(refused.headers["Retry-After"]) > 0
    english = client.get("/login?lang=en")
    assert english.status_code == 200
    refused_en = form_login(client, "inspector", PASSWORD)
    assert "Too many failed logins" in refused_en.text
    assert token_login(client, "inspector", PASSWORD).status_code == 429

    clock.advance(minutes=TIGHT["login_window_minutes"])
    assert form_login(client, "inspector", PASSWORD).status_code == 303


def test_a_locked_account_is_told_so_on_the_form(at, clock, one_database):
    client = at()
    _fail_until_locked(client, "handler", clock)
    locked = form_login(client, "handler", PASSWORD)
    assert locked.status_code == 423 and "账号已锁定" in locked.text


def test_passwords_never_reach_the_logs_or_the_database(at, caplog, city_session, one_database):
    secret = "Pa55-never-logged-7f3a"
    client = at()
    caplog.set_level(logging.DEBUG)
    # SQL echo on, as CITYLOOP_SQL_ECHO=1 would: statement parameters are logged too.
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    try:
        token_login(client, "operator", secret)
        token_login(client, secret, secret)  # a password typed into the username field
        form_login(client, "operator", secret)
        form_login(client, secret, "x")
        other = at("10.0.0.32")  # the failures above used up this address's tries
        assert token_login(other, "dispatcher", PASSWORD).status_code == 200
        assert form_login(other, "dispatcher", PASSWORD).status_code == 303
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    assert caplog.records, "nothing was logged: the check would prove nothing"
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert secret not in logged and PASSWORD not in logged
    rows = city_session.execute(text("SELECT * FROM login_throttles")).all()
    assert rows and not any(secret in str(value) for row in rows for value in row)


def test_an_expired_or_foreign_token_is_refused(client, city_session, one_database):
    user = city_session.scalar(select(User).where(User.username == "operator"))
    minutes = TEST_SETTINGS.token_minutes
    expired = issue_token(
        user, TEST_SETTINGS.secret_key, minutes, datetime.now(UTC) - timedelta(minutes=minutes + 1)
    )
    refused = client.get("/api/v1/me", headers={"Authorization": f"Bearer {expired}"})
    assert refused.status_code == 401 and "expired" in refused.json()["detail"]
    assert refused.headers["WWW-Authenticate"] == "Bearer"

    fresh = issue_token(user, TEST_SETTINGS.secret_key, minutes)
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {fresh}"}).is_success
    forged = issue_token(user, "another-secret-" + "y" * 40, minutes)
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    )
    none_alg = jwt.encode({"sub": str(user.id), "exp": time.time() + 600}, None, algorithm="none")
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {none_alg}"}).status_code == 401
    )


def test_a_token_accepted_once_is_refused_once_it_expires(client, city_session, one_database):
    # Each process checks a token's signature once and remembers its claims: the expiry must
    # still be checked on every request.
    user = city_session.scalar(select(User).where(User.username == "operator"))
    short = issue_token(
        user, TEST_SETTINGS.secret_key, 1, datetime.now(UTC) - timedelta(seconds=58)
    )
    headers = {"Authorization": f"Bearer {short}"}
    assert client.get("/api/v1/me", headers=headers).is_success
    time.sleep(2.2)
    refused = client.get("/api/v1/me", headers=headers)
    assert refused.status_code == 401 and "expired" in refused.json()["detail"]


def test_a_deactivated_inspectors_token_writes_no_report(
    client, city_session, city_places, one_database
):
    # The report route loads the token's user in its own writer thread (deps.actor_of).
    from cityloop.cases.models import Case
    from tests.cases.helpers import YINGCUI, point_in

    user = city_session.scalar(select(User).where(User.username == "inspector"))
    token = issue_token(user, TEST_SETTINGS.secret_key, TEST_SETTINGS.token_minutes)
    headers = {"Authorization": f"Bearer {token}"}
    lon, lat = point_in(city_places, YINGCUI)
    report = {"source": "inspector", "class_code": "01037", "description": "路灯不亮"}
    report |= {"lon": lon, "lat": lat}
    accepted = client.post("/api/v1/reports", json=report, headers=headers)
    assert accepted.status_code == 201, accepted.text
    before = city_session.scalar(select(func.count()).select_from(Case))
    user.active = False
    city_session.commit()
    refused = client.post("/api/v1/reports", json=report, headers=headers)
    assert refused.status_code == 401, refused.text
    assert "no longer exists" in refused.json()["detail"]
    city_session.expire_all()
    assert city_session.scalar(select(func.count()).select_from(Case)) == before


def test_a_login_token_lives_token_minutes(city_connection, city_places, clock, one_database):
    from tests.conftest import _bound_session_factory

    settings = TEST_SETTINGS.model_copy(update={"token_minutes": 7})
    app = create_app(settings, session_factory=_bound_session_factory(city_connection), clock=clock)
    with TestClient(app) as client:
        body = token_login(client, "operator", PASSWORD).json()
    assert body["expires_in_minutes"] == 7
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert abs(claims["exp"] - (time.time() + 7 * 60)) < 30


def test_counts_are_shared_by_processes_and_lose_no_concurrent_failure(city_engine):
    """Two apps (as the two server workers are) over one committed database: eight failures
    sent at once, alternately to each, are all counted, and the next attempt to either app is
    throttled."""
    limits = {"login_max_failures": 8, "login_max_failures_per_address": 8}
    settings = TEST_SETTINGS.model_copy(update={**TIGHT, **limits, "login_lockout_failures": 20})
    apps = [create_app(settings, engine=city_engine) for _ in range(2)]
    clients = [TestClient(app, client=("10.5.5.5", 1)) for app in apps]
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def attempt(index: int) -> None:
        barrier.wait()
        statuses.append(token_login(clients[index % 2], "operator", "wrong").status_code)

    try:
        for client in clients:  # FastAPI builds its routes on the first request: not in a race
            assert client.post("/api/v1/auth/token", data={}).status_code == 422
        threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert statuses == [401] * 8
        with Session(city_engine) as session:
            counts = session.scalars(
                select(LoginThrottle.window_failures).order_by(LoginThrottle.kind)
            ).all()
        assert counts == [8, 8]  # the account, the address
        for client in clients:
            assert token_login(client, "operator", PASSWORD).status_code == 429
    finally:
        for client in clients:
            client.close()
        with city_engine.begin() as conn:
            conn.execute(text("DELETE FROM login_throttles"))
