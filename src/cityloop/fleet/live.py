"""What the map's live layers are sent: the latest fix of each vehicle and person that changed
since the stream last looked (one query per tick for all markers, pushed as server-sent
events; never a request per marker)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from cityloop.fleet.models import Person, Vehicle
from cityloop.org.models import User

STREAM_EVERY = 1.0


def changes(
    factory: Callable[[], Session], sent: dict[tuple[str, int], datetime]
) -> list[dict[str, Any]]:
    """Rows whose latest fix differs from what this stream sent (per unit, not one cursor for
    all: a terminal's blind-area batch may carry times older than another's)."""
    with factory() as session:
        out: list[dict[str, Any]] = []
        for v in session.scalars(select(Vehicle).where(Vehicle.at.is_not(None))):
            assert v.at is not None
            if sent.get(("vehicle", v.id)) == v.at:
                continue
            sent[("vehicle", v.id)] = v.at
            out.append(
                {
                    "layer": "vehicle",
                    "id": v.id,
                    "name": v.plate,
                    "kind": v.kind,
                    "lon": v.lon,
                    "lat": v.lat,
                    "at": v.at.isoformat(),
                    "state": v.state,
                }
            )
        people = select(User, Person).join(User, User.id == Person.user_id)
        for u, p in session.execute(people.where(Person.at.is_not(None))).all():
            assert p.at is not None
            if sent.get(("person", u.id)) == p.at:
                continue
            sent[("person", u.id)] = p.at
            out.append(
                {
                    "layer": "person",
                    "id": u.id,
                    "name": u.display_name,
                    "kind": u.role,
                    "lon": p.lon,
                    "lat": p.lat,
                    "at": p.at.isoformat(),
                    "state": p.duty,
                }
            )
        return out


async def events(
    factory: Callable[[], Session],
    disconnected: Callable[[], Any],
    every: float = STREAM_EVERY,
    once: bool = False,
) -> AsyncIterator[str]:
    """The stream: everything at first, then what changed, each `every` seconds; with
    `once`, the first snapshot only (a client that wants the state without staying)."""
    sent: dict[tuple[str, int], datetime] = {}
    while not await disconnected():
        found = await run_in_threadpool(changes, factory, sent)
        if found:
            yield "event: positions\ndata: " + json.dumps(found, ensure_ascii=False) + "\n\n"
        else:
            yield ": keep-alive\n\n"
        if once:
            return
        await asyncio.sleep(every)
