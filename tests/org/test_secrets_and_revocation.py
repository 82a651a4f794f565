"""Go-live, secrets and sessions (issue 20, part 1; R-SEC): no deployment signs with a key
anyone can read, keys rotate, and a token or console session ends the moment its user is
deactivated, locked, demoted or given a new password — not at its expiry."""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityloop.app import create_app
from cityloop.config import Settings
from cityloop.org.keyring import InsecureSecret, SigningKey, parse_keyring
from cityloop.org.models import User
from cityloop.org.service import issue_token
from cityloop.org.throttle import LoginPolicy, record_failure
from cityloop.web.page import SESSION_COOKIE, _serializer
from tests.conftest import TEST_SETTINGS, _bound_session_factory

OLD_PUBLIC_DEFAULT = "cityloop-dev-secret-change-me-in-production-0123456789"
PASSWORD = "cityloop-demo"


def _user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    assert user is not None
    return user


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- the key itself ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("", "no secret key"),
        (OLD_PUBLIC_DEFAULT, "public source"),
        ("x" * 64, "too weak"),
        ("test-secret-" + "x" * 40, "too weak"),
        ("short-Key-9", "too weak"),
    ],
)
def test_the_app_refuses_to_start_without_a_strong_key(secret: str, why: str) -> None:
    settings = Settings(database_url="sqlite://", secret_key=secret)
    with pytest.raises(InsecureSecret, match=why):
        create_app(settings)


def test_cityloop_serve_refuses_the_public_default_and_says_how_to_make_a_key(
    tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        "CITYLOOP_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        "CITYLOOP_SECRET_KEY": OLD_PUBLIC_DEFAULT,
        "COLUMNS": "200",
    }
    env.pop("CITYLOOP_SECRET_KEY_FILE", None)
    done = subprocess.run(
        [sys.executable, "-m", "cityloop.cli", "serve", "--port", "8199"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "refusing to start" in done.stdout
    assert "token_urlsafe" in done.stdout  # how to make one
    env.pop("CITYLOOP_SECRET_KEY")
    done = subprocess.run(
        [sys.executable, "-m", "cityloop.cli", "serve", "--port", "8199"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "no secret key is set" in done.stdout


def test_the_demo_makes_its_own_key_readable_by_its_owner_alone(tmp_path: Path) -> None:
    from cityloop.cli import _demo_key
    from cityloop.config import get_settings

    saved = {
        k: os.environ.get(k)
        for k in ("CITYLOOP_SECRET_KEY", "CITYLOOP_SECRET_KEY_FILE", "CITYLOOP_DATA_DIR")
    }
    try:
        os.environ.pop("CITYLOOP_SECRET_KEY", None)
        os.environ.pop("CITYLOOP_SECRET_KEY_FILE", None)
        os.environ["CITYLOOP_DATA_DIR"] = str(tmp_path)
        get_settings.cache_clear()
        _demo_key()
        key_file = tmp_path / "secret.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        first = key_file.read_text()
        get_settings().keyring()  # strong enough to serve
        os.environ.pop("CITYLOOP_SECRET_KEY_FILE")
        get_settings.cache_clear()
        _demo_key()  # the same demo database keeps its key across restarts
        assert key_file.read_text() == first
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()


# -- tokens against the keys -----------------------------------------------------------------


def test_a_token_forged_with_the_old_public_default_is_refused(
    client: TestClient, city_session: Session
) -> None:
    admin = _user(city_session, "admin")
    forged = issue_token(admin, OLD_PUBLIC_DEFAULT, 60)
    response = client.get("/api/v1/cases", headers=_bearer(forged))
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


def _app_with_keys(city_connection: Any, city_places: Any, keys: str) -> TestClient:
    settings = TEST_SETTINGS.model_copy(update={"secret_key": keys})
    app = create_app(settings, session_factory=_bound_session_factory(city_connection))
    app.state.places = lambda: city_places
    return TestClient(app)


def test_keys_rotate_the_first_signs_an_old_one_is_accepted_until_its_end(
    city_connection: Any, city_places: Any, city_session: Session
) -> None:
    old, new = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    admin = _user(city_session, "admin")
    token_of_old = issue_token(admin, old, 60)

    with _app_with_keys(city_connection, city_places, f"{new}\n{old}") as client:
        assert client.get("/api/v1/cases", headers=_bearer(token_of_old)).status_code == 200
        fresh = client.post(
            "/api/v1/auth/token", data={"username": "admin", "password": PASSWORD}
        ).json()["access_token"]
    # What a login signs now is signed with the first key: it works once the old one is gone.
    with _app_with_keys(city_connection, city_places, new) as client:
        assert client.get("/api/v1/cases", headers=_bearer(fresh)).status_code == 200
        assert client.get("/api/v1/cases", headers=_bearer(token_of_old)).status_code == 401

    ended = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    with _app_with_keys(city_connection, city_places, f"{new}\n{old} until={ended}") as client:
        assert client.get("/api/v1/cases", headers=_bearer(token_of_old)).status_code == 401
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    with _app_with_keys(city_connection, city_places, f"{new}\n{old} until={later}") as client:
        assert client.get("/api/v1/cases", headers=_bearer(token_of_old)).status_code == 200


def test_a_keyring_names_what_is_wrong_with_it() -> None:
    strong = secrets.token_urlsafe(32)
    with pytest.raises(InsecureSecret, match="key 2 is refused"):
        parse_keyring(f"{strong}\n{'y' * 50}", origin="test")
    with pytest.raises(InsecureSecret, match="first key signs"):
        parse_keyring(f"{strong} until=2030-01-01T00:00:00+08:00", origin="test")
    with pytest.raises(InsecureSecret, match="time zone"):
        parse_keyring(f"{strong}\n{secrets.token_urlsafe(32)} until=2030-01-01", origin="test")
    ring = parse_keyring(f"# rotated 2026-12\n{strong}, {secrets.token_urlsafe(32)}", origin="t")
    assert len(ring.keys) == 2 and ring.signing == SigningKey(strong)


# -- revocation ------------------------------------------------------------------------------


def _login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    response = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def test_deactivating_a_user_ends_every_token_at_once_and_reactivating_does_not_revive_it(
    client: TestClient, city_session: Session
) -> None:
    admin = _bearer(_login(client, "admin"))
    handler = _user(city_session, "handler")
    tokens = [_login(client, "handler") for _ in range(2)]
    for token in tokens:
        assert client.get("/api/v1/me", headers=_bearer(token)).status_code == 200

    off = client.patch(f"/api/v1/users/{handler.id}", json={"active": False}, headers=admin)
    assert off.status_code == 200, off.text
    for token in tokens:
        assert client.get("/api/v1/me", headers=_bearer(token)).status_code == 401
    on = client.patch(f"/api/v1/users/{handler.id}", json={"active": True}, headers=admin)
    assert on.status_code == 200
    for token in tokens:
        assert client.get("/api/v1/me", headers=_bearer(token)).status_code == 401
    assert client.get("/api/v1/me", headers=_bearer(_login(client, "handler"))).status_code == 200


def test_a_password_reset_by_the_administrator_ends_the_old_tokens(
    client: TestClient, city_session: Session
) -> None:
    admin = _bearer(_login(client, "admin"))
    operator = _user(city_session, "operator")
    old = _login(client, "operator")
    reset = client.post(
        f"/api/v1/users/{operator.id}/password",
        json={"password": "a-new-long-password-1"},
        headers=admin,
    )
    assert reset.status_code == 200, reset.text
    answer = client.get("/api/v1/cases", headers=_bearer(old))
    assert answer.status_code == 401 and "revoked" in answer.json()["detail"]
    new = _login(client, "operator", "a-new-long-password-1")
    assert client.get("/api/v1/cases", headers=_bearer(new)).status_code == 200


def test_changing_ones_own_password_ends_the_other_sessions_and_gives_a_new_token(
    client: TestClient,
) -> None:
    elsewhere = _login(client, "dispatcher")
    here = _login(client, "dispatcher")
    wrong = client.post(
        "/api/v1/me/password",
        json={"current_password": "not-it-at-all", "new_password": "another-long-pass-2"},
        headers=_bearer(here),
    )
    assert wrong.status_code == 422 and wrong.json()["field"] == "current_password"
    short = client.post(
        "/api/v1/me/password",
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=_bearer(here),
    )
    assert short.status_code == 422 and short.json()["field"] == "new_password"
    # Refused changes revoke nothing.
    assert client.get("/api/v1/me", headers=_bearer(elsewhere)).status_code == 200

    changed = client.post(
        "/api/v1/me/password",
        json={"current_password": PASSWORD, "new_password": "another-long-pass-2"},
        headers=_bearer(here),
    )
    assert changed.status_code == 200, changed.text
    assert client.get("/api/v1/me", headers=_bearer(elsewhere)).status_code == 401
    assert client.get("/api/v1/me", headers=_bearer(here)).status_code == 401
    renewed = changed.json()["access_token"]
    assert client.get("/api/v1/me", headers=_bearer(renewed)).status_code == 200


def test_a_role_change_ends_the_tokens_of_the_old_role(
    client: TestClient, city_session: Session
) -> None:
    admin = _bearer(_login(client, "admin"))
    leader = _user(city_session, "leader")
    old = _login(client, "leader")
    moved = client.patch(f"/api/v1/users/{leader.id}", json={"role": "operator"}, headers=admin)
    assert moved.status_code == 200, moved.text
    assert client.get("/api/v1/cases", headers=_bearer(old)).status_code == 401


def test_a_lock_after_repeated_failures_ends_the_accounts_tokens(
    client: TestClient, city_session: Session
) -> None:
    held = _login(client, "shiftlead")
    policy = LoginPolicy(max_failures=100, lockout_failures=3)
    now = datetime.now(UTC)
    for n in range(2):
        record_failure(city_session, "shiftlead", "10.0.0.9", now=now, policy=policy)
        # Failures short of the lock end nothing.
        assert client.get("/api/v1/me", headers=_bearer(held)).status_code == 200, n
    record_failure(city_session, "shiftlead", "10.0.0.9", now=now, policy=policy)
    assert client.get("/api/v1/me", headers=_bearer(held)).status_code == 401


def test_a_console_session_ends_with_a_password_reset(
    client: TestClient, city_session: Session
) -> None:
    operator = _user(city_session, "operator")
    cookie = _serializer(TEST_SETTINGS.keyring()).dumps(
        {"u": operator.id, "c": "csrf-x", "g": operator.token_generation}
    )
    client.cookies.set(SESSION_COOKIE, cookie)
    home = client.get("/", follow_redirects=False)
    assert home.status_code == 303 and "/login" not in home.headers["location"]

    admin = _bearer(_login(client, "admin"))
    client.cookies.set(SESSION_COOKIE, cookie)
    reset = client.post(
        f"/api/v1/users/{operator.id}/password",
        json={"password": "a-new-long-password-1"},
        headers=admin,
    )
    assert reset.status_code == 200
    client.cookies.set(SESSION_COOKIE, cookie)
    again = client.get("/", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == "/login"


# -- the doctor -------------------------------------------------------------------------------


def _check(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CITYLOOP_")} | {
        "COLUMNS": "300"
    }
    return subprocess.run(
        [sys.executable, "-m", "cityloop.cli", "check", *env.pop("_args", "").split()],
        env=base | env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


def test_cityloop_check_names_every_unsafe_setting(tmp_path: Path) -> None:
    done = _check(
        tmp_path,
        CITYLOOP_DATABASE_URL=f"sqlite:///{tmp_path / 'c.db'}",
        CITYLOOP_SECRET_KEY=OLD_PUBLIC_DEFAULT,
        CITYLOOP_SQL_ECHO="true",
        CITYLOOP_PUBLIC_URL="http://cgj.example.cn",
        _args="--servers 2 --workers 1",
    )
    assert done.returncode == 1, done.stdout
    last = done.stdout.strip().splitlines()[-1]
    for setting in (
        "CITYLOOP_SECRET_KEY",
        "CITYLOOP_DATABASE_URL",
        "CITYLOOP_SQL_ECHO",
        "CITYLOOP_BACKUP_DIR",
        "CITYLOOP_DATA_DIR",
        "CITYLOOP_PUBLIC_URL",
    ):
        assert setting in last, (setting, done.stdout)


def test_cityloop_check_passes_a_safe_deployment(tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    backups.mkdir()
    (backups / "cityloop-2026-12-08.dump").write_bytes(b"x")
    key_file = tmp_path / "keys"
    key_file.write_text(secrets.token_urlsafe(48) + "\n")
    done = _check(
        tmp_path,
        CITYLOOP_DATABASE_URL="postgresql+psycopg://cityloop@db.internal/cityloop",
        CITYLOOP_SECRET_KEY_FILE=str(key_file),
        CITYLOOP_BACKUP_DIR=str(backups),
        CITYLOOP_PUBLIC_URL="https://cgj.example.cn",
        _args="--servers 1 --workers 1",
    )
    assert done.returncode == 0, done.stdout
    assert "UNSAFE" not in done.stdout


def test_a_revoked_token_opens_no_live_stream(client: TestClient, city_session: Session) -> None:
    admin = _bearer(_login(client, "admin"))
    handler = _user(city_session, "handler")
    old = _login(client, "handler")
    reset = client.post(
        f"/api/v1/users/{handler.id}/password",
        json={"password": "a-new-long-password-1"},
        headers=admin,
    )
    assert reset.status_code == 200
    stream = client.get(
        "/api/v1/me/notifications/stream", params={"max_seconds": 1}, headers=_bearer(old)
    )
    assert stream.status_code == 401
