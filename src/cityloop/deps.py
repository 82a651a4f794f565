"""FastAPI dependencies shared by every router: the request's session (the request owns the
transaction), the current user, the clock, the calendar and the place index."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar

import anyio
import anyio.to_thread
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from cityloop.cases.service import PUBLIC, Actor
from cityloop.db import begin_write
from cityloop.errors import Unauthorized
from cityloop.kit.calendar import WorkingCalendar
from cityloop.org.models import User
from cityloop.org.service import TokenClaims, check_generation, read_token

T = TypeVar("T")

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


async def _session(request: Request) -> AsyncIterator[Session]:
    # Making the session touches no database, so it happens here, not in the thread pool; on
    # PostgreSQL the endpoint's first statement begins the transaction. An endpoint may commit
    # itself, in its own thread, to spare the request the hop to the pool that committing here
    # takes.
    session: Session = request.app.state.session_factory()
    writes = request.method not in ("GET", "HEAD", "OPTIONS")
    if writes and session.get_bind().dialect.name == "sqlite":
        # BEGIN IMMEDIATE waits for the writer before it: in the thread pool, never on the
        # event loop (an async endpoint's first statement would run there), and first, before
        # any lock of this process is taken (the calendar cache loads under one): a writer
        # that took the database's lock later, inside it, deadlocked with one waiting for it
        # until the busy timeout (503s in `bench/load_day.py` on SQLite).
        await run_in_threadpool(begin_write, session)
    try:
        yield session
        if session.in_transaction():
            await run_in_threadpool(session.commit)
    except BaseException:
        if session.in_transaction():
            await run_in_threadpool(session.rollback)
        raise
    finally:
        session.close()


# scope="function": commit before the response leaves, so a 2xx means the data is saved.
SessionDep = Annotated[Session, Depends(_session, scope="function")]


# How many requests of one worker process run their database work at once through
# saved_in_thread. Measured on bench/bench_intake.py (PostgreSQL, three rounds): with the
# thread pool's 40 threads taking turns at the interpreter lock, 318-385 reports/s; with two,
# 386-478. The others wait on the event loop, holding no lock of the database (see below).
WRITERS_PER_PROCESS = 2
_writers: anyio.CapacityLimiter | None = None


def _writer_limiter() -> anyio.CapacityLimiter:
    global _writers
    if _writers is None:  # made on first use: a limiter needs a running event loop to exist
        _writers = anyio.CapacityLimiter(WRITERS_PER_PROCESS)
    return _writers


async def saved_in_thread(session: Session, work: Callable[[], T]) -> T:
    """For the routes that write: their blocking work (Pillow's checks, the database) and
    the commit, in one hop to a thread, never on the event loop.

    At most WRITERS_PER_PROCESS of these run at once. That cannot deadlock: a request waiting
    for its turn holds no database lock (on PostgreSQL its transaction has only read; on
    SQLite it may hold the write lock, and then nobody inside can be waiting for it), and a
    request inside holds its locks only until the commit that ends its turn."""

    def unit() -> T:
        result = work()
        session.commit()
        return result

    return await anyio.to_thread.run_sync(unit, limiter=_writer_limiter())


# The dependencies below that do no I/O are `async def`: a plain `def` would cost each request
# a hop to the thread pool and back per dependency. The ones that may read the database do it
# in the thread pool, and only when they must.


async def _now(request: Request) -> datetime:
    now: datetime = request.app.state.clock.now()
    return now


NowDep = Annotated[datetime, Depends(_now)]


async def _calendar(request: Request, session: SessionDep) -> WorkingCalendar:
    rules = request.app.state.time_rules
    cached: WorkingCalendar | None = rules.cached()
    if cached is not None:
        return cached
    loaded: WorkingCalendar = await run_in_threadpool(rules.get, session)
    return loaded


CalendarDep = Annotated[WorkingCalendar, Depends(_calendar)]


async def _places(request: Request) -> Any:
    places = request.app.state.places
    if getattr(places, "needs_loading", False):
        return await run_in_threadpool(places)
    return places()


PlacesDep = Annotated[Any, Depends(_places)]


class _LazyGazetteer:
    """Loads the gazetteer only for the requests that geocode an address."""

    def __init__(self, holder: Any, session: Session) -> None:
        self._holder, self._session = holder, session

    def geocode(self, address: str) -> Any:
        return self._holder.get(self._session).geocode(address)


@dataclass(frozen=True, slots=True)
class CaseWriting:
    """What a request that makes or moves cases needs besides its body and its reporter: the
    session, the clock's now, the working calendar, the grid index and the gazetteer."""

    session: Session
    now: datetime
    calendar: WorkingCalendar
    places: Any
    gazetteer: Any


async def _case_writing(request: Request, session: SessionDep) -> CaseWriting:
    # One dependency for five: FastAPI solves every dependency of every request anew (a fifth
    # of a report's CPU went to it, in proportion to their number); one for five saved 4 % of a
    # report's instructions (bench/bench_instructions.py).
    return CaseWriting(
        session,
        await _now(request),
        await _calendar(request, session),
        await _places(request),
        _LazyGazetteer(request.app.state.gazetteer, session),
    )


CaseWritingDep = Annotated[CaseWriting, Depends(_case_writing)]


async def _token_claims(
    request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> TokenClaims | None:
    if not token:
        return None
    return read_token(token, request.app.state.keyring)


# The bearer token's claims, checked but not yet its user: for the routes that load the user
# in their own hop to a thread (user_of), instead of a hop of its own.
ClaimsDep = Annotated[TokenClaims | None, Depends(_token_claims)]


def user_of(session: Session, claims: TokenClaims | None) -> User | None:
    """The token's user, if it still exists and may still log in; blocking (reads it)."""
    if claims is None:
        return None
    user = session.get(User, claims.user_id)
    if user is None or not user.active:
        raise Unauthorized("the token's user no longer exists")
    if not check_generation(user, claims):
        raise Unauthorized(
            "the token was revoked (password, role or account changed); log in again"
        )
    return user


def actor_of(session: Session, claims: TokenClaims | None) -> Actor:
    """The token's user as the actor of a change, or the public without a token; blocking."""
    user = user_of(session, claims)
    return Actor.of(user) if user is not None else PUBLIC


async def _optional_user(session: SessionDep, claims: ClaimsDep) -> User | None:
    if claims is None:
        return None
    return await run_in_threadpool(user_of, session, claims)


OptionalUserDep = Annotated[User | None, Depends(_optional_user)]


async def _user(user: OptionalUserDep) -> User:
    if user is None:
        raise Unauthorized("log in first: send a bearer token")
    return user


UserDep = Annotated[User, Depends(_user)]


async def _actor(user: UserDep) -> Actor:
    return Actor.of(user)


ActorDep = Annotated[Actor, Depends(_actor)]
