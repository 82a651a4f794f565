"""The live stream behind `GET /api/v1/me/notifications/stream` (Server-Sent Events).

An inbox line is a row committed by whichever process ran the step (any API worker, the
`cityloop worker`), so each process watches the inbox table itself: one reader per process,
however many clients, reads the table's newest id every `stream_poll_seconds` and wakes the
clients, who then read their own lines after the last id they were sent. The SSE id is the
inbox line's id: a client that reconnects with `Last-Event-ID` gets every line it missed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from cityloop.notifications import service
from cityloop.notifications.models import Notification


def as_json(row: Notification, unread: int) -> dict[str, Any]:
    return {
        "id": row.id,
        "event": row.event,
        "ticket": row.ticket,
        "title": row.title,
        "body": row.body,
        "link": row.link,
        "urgency": row.urgency,
        "created_at": row.created_at.isoformat(),
        "unread": unread,
    }


class InboxWatcher:
    """One poller per process; clients wait on `changed()`."""

    def __init__(self, factory: sessionmaker[Session], interval: float) -> None:
        self.factory = factory
        self.interval = interval
        self.latest = -1
        self._event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.clients = 0

    def _read(self) -> int:
        with self.factory() as session:
            return service.latest_id(session)

    async def _run(self) -> None:
        while self.clients > 0:
            try:
                latest = await run_in_threadpool(self._read)
            except Exception:  # the database away for a moment: try again next tick
                latest = self.latest
            if latest != self.latest:
                self.latest = latest
                event, self._event = self._event, asyncio.Event()
                event.set()
            await asyncio.sleep(self.interval)
        self._task = None

    def join(self) -> None:
        self.clients += 1
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def leave(self) -> None:
        self.clients -= 1

    async def changed(self, timeout: float) -> None:
        event = self._event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)


def _frame(event: str, data: dict[str, Any], event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def events(
    watcher: InboxWatcher,
    user_id: int,
    last_id: int | None,
    disconnected: Callable[[], Any],
    keepalive: float,
    max_seconds: float = 300,
) -> AsyncIterator[str]:
    factory = watcher.factory

    def read(after: int | None) -> tuple[list[Notification], int, int]:
        with factory() as session:
            if after is None:
                # A fresh client starts now; its badge shows the unread count.
                after = service.latest_id(session)
                return [], service.unread_count(session, user_id), after
            rows = service.since(session, user_id, after)
            unread = service.unread_count(session, user_id) if rows else -1
            session.expunge_all()
            return rows, unread, rows[-1].id if rows else after

    watcher.join()
    try:
        rows, unread, cursor = await run_in_threadpool(read, last_id)
        yield "retry: 2000\n\n"
        yield _frame("unread", {"unread": unread})
        for row in rows:
            yield _frame("notification", as_json(row, unread), row.id)
        ends = time.monotonic() + max_seconds
        while time.monotonic() < ends:
            await watcher.changed(min(keepalive, max(ends - time.monotonic(), 0.0)))
            if await disconnected():
                return
            rows, unread, cursor = await run_in_threadpool(read, cursor)
            if not rows:
                yield ": keep-alive\n\n"
                continue
            for row in rows:
                yield _frame("notification", as_json(row, unread), row.id)
    finally:
        watcher.leave()
