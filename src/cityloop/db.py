"""Database plumbing: the declarative base, engines for SQLite (WAL) and PostgreSQL, sessions.

Services receive a Session and only flush; the edge (an API request, a CLI command) owns the
transaction and commits.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes on both backends (SQLite drops the offset otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UtcDateTime column")

        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None

        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def make_engine(url: str, *, echo: bool = False) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        in_memory = database in ("", ":memory:")
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
        if in_memory:
            kwargs["poolclass"] = StaticPool
        else:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # The stdlib driver opens transactions lazily; take control so that BEGIN
            # IMMEDIATE makes concurrent writers queue instead of failing on upgrade.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Writers take the write lock up front so that concurrent writers queue (busy
            # timeout) instead of failing when a read lock cannot be upgraded; readers stay
            # deferred so that WAL lets them run beside a writer.
            if conn.get_execution_options().get(WRITE_OPTION):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")

        return engine
    # No pre-ping: it costs a round trip per request; stale connections are recycled instead.
    engine = create_engine(url, echo=echo, pool_size=10, max_overflow=20, pool_recycle=1800)

    @event.listens_for(engine, "handle_error")
    def _server_gone(context: Any) -> None:
        # Without pre-ping, the first statement after a server restart is what notices it.
        # Counting the server's shutdown codes as a lost connection invalidates the whole
        # pool there, so one request per process fails (503) and the next ones reconnect.
        sqlstate = getattr(context.original_exception, "sqlstate", None) or ""
        if sqlstate.startswith("08") or sqlstate in SERVER_GONE:
            context.is_disconnect = True

    return engine


# admin_shutdown, crash_shutdown, cannot_connect_now (starting up or shutting down).
SERVER_GONE = frozenset({"57P01", "57P02", "57P03"})


WRITE_OPTION = "cityloop_write"


def begin_write(session: Session) -> None:
    """Start the session's transaction as a writing one (SQLite: BEGIN IMMEDIATE).

    Call before the first statement of a unit of work that will write; a no-op on PostgreSQL
    and when the transaction has already begun."""
    if not session.in_transaction():
        session.connection(execution_options={WRITE_OPTION: True})


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Yield a session whose work is committed on success and rolled back on error."""
    session = factory()
    begin_write(session)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
