"""FastAPI dependencies shared by every router: the request's session (the request owns the
transaction), the current user, the clock, the calendar and the place index."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from cityloop.cases.service import PUBLIC, Actor
from cityloop.db import begin_write
from cityloop.errors import Unauthorized
from cityloop.kit.calendar import WorkingCalendar
from cityloop.org.models import User
from cityloop.org.service import read_token

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def _session(request: Request) -> Iterator[Session]:
    session: Session = request.app.state.session_factory()
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        begin_write(session)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# scope="function": commit before the response leaves, so a 2xx means the data is saved.
SessionDep = Annotated[Session, Depends(_session, scope="function")]


def _now(request: Request) -> datetime:
    now: datetime = request.app.state.clock.now()
    return now


NowDep = Annotated[datetime, Depends(_now)]


def _calendar(request: Request, session: SessionDep) -> WorkingCalendar:
    return request.app.state.time_rules.get(session)


CalendarDep = Annotated[WorkingCalendar, Depends(_calendar)]


def _places(request: Request) -> Any:
    return request.app.state.places()


PlacesDep = Annotated[Any, Depends(_places)]


class _LazyGazetteer:
    """Loads the gazetteer only for the requests that geocode an address."""

    def __init__(self, holder: Any, session: Session) -> None:
        self._holder, self._session = holder, session

    def geocode(self, address: str) -> Any:
        return self._holder.get(self._session).geocode(address)


def _gazetteer(request: Request, session: SessionDep) -> Any:
    return _LazyGazetteer(request.app.state.gazetteer, session)


GazetteerDep = Annotated[Any, Depends(_gazetteer)]


def _optional_user(
    request: Request, session: SessionDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> User | None:
    if not token:
        return None
    claims = read_token(token, request.app.state.settings.secret_key)
    user = session.get(User, claims.user_id)
    if user is None or not user.active:
        raise Unauthorized("the token's user no longer exists")
    return user


OptionalUserDep = Annotated[User | None, Depends(_optional_user)]


def _user(user: OptionalUserDep) -> User:
    if user is None:
        raise Unauthorized("log in first: send a bearer token")
    return user


UserDep = Annotated[User, Depends(_user)]


def _actor(user: UserDep) -> Actor:
    return Actor.of(user)


ActorDep = Annotated[Actor, Depends(_actor)]


def _optional_actor(user: OptionalUserDep) -> Actor:
    return Actor.of(user) if user is not None else PUBLIC


OptionalActorDep = Annotated[Actor, Depends(_optional_actor)]
