"""Logging in, with failed attempts counted: the one login used by the API token endpoint and
the console's form.

Failures are counted per account (the lower-cased username, existing or not, so that an
unknown name behaves like a known one) and per client address, in the `login_throttles` table
so that every server process sees the same counts. Within a window of
``CITYLOOP_LOGIN_WINDOW_MINUTES``, ``CITYLOOP_LOGIN_MAX_FAILURES`` failures for an account or
``CITYLOOP_LOGIN_MAX_FAILURES_PER_ADDRESS`` from an address refuse further attempts with 429
until the window ends; ``CITYLOOP_LOGIN_LOCKOUT_FAILURES`` failures in a row lock the account
for ``CITYLOOP_LOGIN_LOCKOUT_MINUTES`` (423) unless an administrator lifts the lock first.
A refused attempt never reaches the password check, and a success clears the account's count.

Services flush; the caller commits — also when the login fails, or the failure is not counted.

The same table counts other things per client in a window: `spend()` (kind ``uploads``, the
anonymous reports and photo megapixels of one address, intake's citizens' channel).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cityloop.errors import Locked, NotFound, TooManyRequests, Unauthorized
from cityloop.org.models import LoginThrottle, User
from cityloop.org.service import authenticate, revoke_tokens


@dataclass(frozen=True)
class LoginPolicy:
    window: timedelta = timedelta(minutes=15)
    max_failures: int = 5
    max_failures_per_address: int = 30
    lockout_failures: int = 10
    lockout: timedelta = timedelta(minutes=30)

    @classmethod
    def of(cls, settings: Any) -> LoginPolicy:
        return cls(
            window=timedelta(minutes=settings.login_window_minutes),
            max_failures=settings.login_max_failures,
            max_failures_per_address=settings.login_max_failures_per_address,
            lockout_failures=settings.login_lockout_failures,
            lockout=timedelta(minutes=settings.login_lockout_minutes),
        )


def _digest(kind: str, key: str) -> str:
    return hashlib.sha256(f"{kind}\x00{key}".encode()).hexdigest()


def _account_key(username: str) -> str:
    return username.strip().lower()


def _seconds(delta: timedelta) -> int:
    return max(1, math.ceil(delta.total_seconds()))


def _minutes(seconds: int) -> int:
    return max(1, math.ceil(seconds / 60))


def _row(session: Session, digest: str) -> LoginThrottle | None:
    # FOR UPDATE: concurrent attempts on one account wait for each other on PostgreSQL, so
    # two processes cannot both let a last guess through (SQLite writers queue anyway).
    query = (
        select(LoginThrottle)
        .where(LoginThrottle.key_hash == digest)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return session.scalar(query)


def check_allowed(
    session: Session, username: str, address: str, *, now: datetime, policy: LoginPolicy
) -> None:
    """Raise Locked (423) or TooManyRequests (429), with the seconds to wait, when this account
    or address may not try now."""
    account = _row(session, _digest("account", _account_key(username)))
    if account is not None:
        if account.locked_until is not None and account.locked_until > now:
            wait = _seconds(account.locked_until - now)
            raise Locked(
                f"this account is locked after {policy.lockout_failures} failed logins; try "
                f"again in {_minutes(wait)} minutes or ask an administrator to unlock it",
                field="username",
                retry_after=wait,
            )
        ends = account.window_started_at + policy.window
        if ends > now and account.window_failures >= policy.max_failures:
            wait = _seconds(ends - now)
            raise TooManyRequests(
                f"too many failed logins for this account; try again in {_minutes(wait)} minutes",
                field="username",
                retry_after=wait,
            )
    place = _row(session, _digest("address", address))
    if place is not None:
        ends = place.window_started_at + policy.window
        if ends > now and place.window_failures >= policy.max_failures_per_address:
            wait = _seconds(ends - now)
            raise TooManyRequests(
                f"too many failed logins from this address; try again in {_minutes(wait)} minutes",
                field="client",
                retry_after=wait,
            )


def _counted(
    session: Session, kind: str, key: str, now: datetime, user_id: int | None
) -> LoginThrottle:
    """The row for this key, created if missing (a concurrent creator wins, its row is used)."""
    digest = _digest(kind, key)
    row = _row(session, digest)
    if row is None:
        try:
            with session.begin_nested():
                session.add(
                    LoginThrottle(
                        kind=kind,
                        key_hash=digest,
                        user_id=user_id,
                        window_started_at=now,
                        window_failures=0,
                        streak=0,
                        last_failure_at=now,
                    )
                )
        except IntegrityError:
            pass
        row = _row(session, digest)
        assert row is not None
    return row


def record_failure(
    session: Session, username: str, address: str, *, now: datetime, policy: LoginPolicy
) -> None:
    """Count a failed login against the account and the address; lock the account when the
    failures in a row reach the limit."""
    key = _account_key(username)
    user_id = session.scalar(select(User.id).where(User.username == username.strip()))
    for kind, value in (("account", key), ("address", address)):
        row = _counted(session, kind, value, now, user_id if kind == "account" else None)
        if row.window_started_at + policy.window <= now:
            row.window_started_at, row.window_failures = now, 0
        row.window_failures += 1
        row.streak += 1
        row.last_failure_at = now
        if kind == "account" and row.streak >= policy.lockout_failures:
            row.locked_until = now + policy.lockout
            row.streak = 0
            # Someone is guessing this account's password: whoever holds its tokens may be
            # the guesser who got in, so they end with the lock.
            locked_user = session.get(User, user_id) if user_id is not None else None
            if locked_user is not None:
                revoke_tokens(locked_user)
    _forget_stale(session, now, policy)
    session.flush()


def _forget_stale(session: Session, now: datetime, policy: LoginPolicy) -> None:
    """Rows nobody failed with for a long while and holding no lock: keeps a guesser of many
    names from filling the table. Rows another login holds are skipped, not waited for (two
    logins deleting each other's rows would deadlock)."""
    horizon = now - max(policy.window, policy.lockout) * 2
    stale = (
        select(LoginThrottle.id)
        .where(
            LoginThrottle.last_failure_at < horizon,
            or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until < now),
        )
        .limit(500)
        .with_for_update(skip_locked=True)
    )
    session.execute(delete(LoginThrottle).where(LoginThrottle.id.in_(stale.scalar_subquery())))


def spend(
    session: Session,
    what: str,
    client: str,
    amount: int,
    *,
    limit: int,
    window: timedelta,
    now: datetime,
    field: str,
    message: str,
) -> None:
    """Count `amount` of `what` against this client in the window, or raise TooManyRequests
    (with the seconds to wait) when it would go over `limit`. The row is locked while it is
    counted, so two processes never both let the last one through."""
    row = _counted(session, "uploads", f"{what}\x00{client}", now, None)
    if row.window_started_at + window <= now:
        row.window_started_at, row.window_failures = now, 0
    if row.window_failures + amount > limit:
        wait = _seconds(row.window_started_at + window - now)
        raise TooManyRequests(
            f"{message}; try again in {_minutes(wait)} minutes", field=field, retry_after=wait
        )
    row.window_failures += amount
    row.last_failure_at = now
    session.flush()


def record_success(session: Session, username: str) -> None:
    """A successful login clears the account's failures (the address keeps its count, or one
    valid account would reset a guesser's limit)."""
    session.execute(
        delete(LoginThrottle).where(
            LoginThrottle.key_hash == _digest("account", _account_key(username))
        )
    )
    session.flush()


def login(
    session: Session,
    username: str,
    password: str,
    *,
    address: str,
    now: datetime,
    policy: LoginPolicy,
) -> User:
    """The user with this name and password, when neither the account nor the address is
    throttled. Raises Locked, TooManyRequests or Unauthorized; the caller commits even then."""
    check_allowed(session, username, address, now=now, policy=policy)
    try:
        user = authenticate(session, username, password)
    except Unauthorized:
        record_failure(session, username, address, now=now, policy=policy)
        raise
    record_success(session, username)
    return user


@dataclass(frozen=True)
class Lockout:
    user_id: int
    username: str
    display_name: str
    locked_until: datetime | None
    throttled_until: datetime | None
    failures: int


def lockouts(session: Session, *, now: datetime, policy: LoginPolicy) -> list[Lockout]:
    """Known accounts that cannot log in now: locked, or throttled for this window."""
    rows = session.execute(
        select(LoginThrottle, User)
        .join(User, User.id == LoginThrottle.user_id)
        .where(
            LoginThrottle.kind == "account",
            or_(
                LoginThrottle.locked_until > now,
                and_(
                    LoginThrottle.window_started_at > now - policy.window,
                    LoginThrottle.window_failures >= policy.max_failures,
                ),
            ),
        )
        .order_by(User.username)
    ).all()
    result = []
    for row, user in rows:
        locked = row.locked_until if row.locked_until and row.locked_until > now else None
        ends = row.window_started_at + policy.window
        throttled = ends if ends > now and row.window_failures >= policy.max_failures else None
        result.append(
            Lockout(
                user.id, user.username, user.display_name, locked, throttled, row.window_failures
            )
        )
    return result


def unlock(session: Session, username: str) -> User:
    """An administrator lifts the lock and the failure count of an account."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user {username}", field="username")
    record_success(session, username)
    return user
