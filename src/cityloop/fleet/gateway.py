"""`cityloop jt808-gateway`: the JT/T 808 TCP server for vehicle terminals (asyncio).

Per connection: frames are cut at 0x7e, unescaped and checked; a frame with a readable header
but a wrong check code or body is answered 0x8001 "message wrong" (2), one that cannot be read
at all (bad escape, truncated) is dropped; both are counted and never end the gateway.
0x0100 → 0x8100 (an auth code for a terminal number the platform knows, result 4 otherwise);
0x0102 → 0x8001 (success or failure); before authentication every other message is answered
failure. Locations (0x0200, 0x0704) go to one writer that stores them in batches and answers
each message after its batch is committed, so a terminal only drops a fix the platform kept
(a crash in between makes it resend; duplicates are stored once). Another task marks silent
terminals stale."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from cityloop.db import begin_write
from cityloop.fleet import jt808, service
from cityloop.fleet.jt808 import FrameError, Header

log = logging.getLogger(__name__)

MAX_BUFFER = 64 * 1024  # a peer sending this much without a closing flag is not a terminal


@dataclass(eq=False)
class _Conn:
    writer: asyncio.StreamWriter
    vehicle_id: int | None = None
    phone: str | None = None
    serial: int = 0

    def next_serial(self) -> int:
        self.serial = (self.serial + 1) & 0xFFFF
        return self.serial


@dataclass
class _Pending:
    conn: _Conn
    header: Header
    fixes: list[service.Fix]


@dataclass
class Gateway:
    factory: sessionmaker[Session]
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    batch_size: int = 10000
    batch_wait: float = 0.2
    stale_every: float = 30.0
    stale_after: timedelta = service.STALE_AFTER
    counters: Counter[str] = field(default_factory=Counter)
    _queue: asyncio.Queue[_Pending] | None = None
    _server: asyncio.Server | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _seen: dict[int, datetime] = field(default_factory=dict)
    _conns: set[_Conn] = field(default_factory=set)

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self, host: str = "0.0.0.0", port: int = 7808) -> int:
        self._queue = asyncio.Queue()
        self._server = await asyncio.start_server(self._serve, host, port)
        self._tasks = [
            asyncio.create_task(self._writer_loop()),
            asyncio.create_task(self._stale_loop()),
        ]
        sockets = self._server.sockets or ()
        return int(sockets[0].getsockname()[1]) if sockets else port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()  # no new terminals
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._flush_remaining()  # what was received is stored and answered
        for conn in list(self._conns):
            conn.writer.close()
        if self._server is not None:
            await self._server.wait_closed()

    async def serve_forever(self, host: str, port: int, stop: asyncio.Event) -> None:
        bound = await self.start(host, port)
        log.info("JT/T 808 gateway listening on %s:%s", host, bound)
        await stop.wait()
        await self.stop()

    # -- database work in threads --------------------------------------------------------------
    def _in_session(self, work: Callable[[Session], Any]) -> Any:
        with self.factory() as session:
            begin_write(session)
            result = work(session)
            session.commit()
            return result

    async def _db(self, work: Callable[[Session], Any]) -> Any:
        return await asyncio.to_thread(self._in_session, work)

    # -- connections ---------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Conn(writer)
        self._conns.add(conn)
        buffer = bytearray()
        self.counters["connections"] += 1
        try:
            while True:
                chunk = await reader.read(4096)
                if not chunk:
                    break
                buffer.extend(chunk)
                for frame in jt808.split_frames(buffer):
                    await self._frame(conn, frame)
                if len(buffer) > MAX_BUFFER:
                    self.counters["malformed"] += 1
                    buffer.clear()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:  # one connection's surprise never ends the gateway
            self.counters["errors"] += 1
            log.exception("terminal connection failed")
        finally:
            self._conns.discard(conn)
            writer.close()

    def _send(self, conn: _Conn, header: Header, msg_id: int, body: bytes) -> None:
        if conn.writer.is_closing():
            return
        conn.writer.write(
            jt808.encode(
                msg_id, body, phone=header.phone, serial=conn.next_serial(), version=header.version
            )
        )

    def _reply(self, conn: _Conn, header: Header, result: int) -> None:
        self._send(
            conn,
            header,
            jt808.PLATFORM_REPLY,
            jt808.platform_reply(header.serial, header.msg_id, result),
        )

    async def _frame(self, conn: _Conn, frame: bytes) -> None:
        self.counters["frames"] += 1
        try:
            message = jt808.decode(frame)
        except FrameError as exc:
            self.counters["malformed"] += 1
            if exc.header is not None:
                self.counters["bad_check"] += 1
                self._reply(conn, exc.header, jt808.MESSAGE_WRONG)
            log.info("malformed frame: %s", exc)
            return
        header, body = message.header, message.body
        try:
            await self._message(conn, header, body)
        except FrameError as exc:
            self.counters["malformed"] += 1
            self._reply(conn, header, jt808.MESSAGE_WRONG)
            log.info("malformed 0x%04x body: %s", header.msg_id, exc)

    async def _message(self, conn: _Conn, header: Header, body: bytes) -> None:
        msg_id = header.msg_id
        if msg_id == jt808.REGISTER:
            jt808.parse_registration(body, header.edition)  # a body that cannot be read: 2
            now = self.now()
            result, code = await self._db(lambda s: service.register_terminal(s, header.phone, now))
            if result != jt808.REG_OK:
                self.counters["refused"] += 1
            self._send(
                conn,
                header,
                jt808.REGISTER_REPLY,
                jt808.register_reply(header.serial, result, code),
            )
            return
        if msg_id == jt808.AUTHENTICATE:
            code = jt808.parse_auth_code(body, header.edition)
            vehicle_id = await self._db(
                lambda s: service.authenticate_terminal(s, header.phone, code)
            )
            if vehicle_id is None:
                self.counters["refused"] += 1
                self._reply(conn, header, jt808.FAILURE)
                return
            conn.vehicle_id, conn.phone = vehicle_id, header.phone
            self._seen[vehicle_id] = self.now()
            self._reply(conn, header, jt808.OK)
            return
        if conn.vehicle_id is None or jt808.canonical_phone(header.phone) != jt808.canonical_phone(
            conn.phone or ""
        ):
            # Nothing but registration and authentication before authentication (§ 通信连接).
            self.counters["unauthenticated"] += 1
            self._reply(conn, header, jt808.FAILURE)
            return
        vehicle_id = conn.vehicle_id
        self._seen[vehicle_id] = self.now()
        if msg_id == jt808.HEARTBEAT:
            self.counters["heartbeats"] += 1
            self._reply(conn, header, jt808.OK)
        elif msg_id == jt808.LOCATION:
            loc = jt808.parse_location(body)
            await self._enqueue(conn, header, [self._fix(vehicle_id, loc)])
        elif msg_id == jt808.BATCH_LOCATION:
            _kind, items = jt808.parse_batch(body)
            await self._enqueue(conn, header, [self._fix(vehicle_id, loc) for loc in items])
        elif msg_id == jt808.LOGOUT:
            await self._db(lambda s: service.logout_terminal(s, vehicle_id))
            conn.vehicle_id = None
            self._reply(conn, header, jt808.OK)
        elif msg_id == jt808.TERMINAL_REPLY:
            pass  # the terminal's answer to a platform message; none is awaited here
        else:
            self.counters["unsupported"] += 1
            self._reply(conn, header, jt808.NOT_SUPPORTED)

    @staticmethod
    def _fix(vehicle_id: int, loc: jt808.Location) -> service.Fix:
        return service.Fix(
            subject="vehicle",
            subject_id=vehicle_id,
            at=loc.at.astimezone(UTC),
            lon=loc.lon,
            lat=loc.lat,
            source="jt808",
            speed_kmh=loc.speed_kmh,
            heading=loc.heading,
            positioned=loc.fixed,
        )

    async def _enqueue(self, conn: _Conn, header: Header, fixes: list[service.Fix]) -> None:
        assert self._queue is not None
        self.counters["locations"] += len(fixes)
        await self._queue.put(_Pending(conn, header, fixes))

    # -- the batch writer ----------------------------------------------------------------------
    async def _writer_loop(self) -> None:
        assert self._queue is not None
        while True:
            first = await self._queue.get()
            batch = [first]
            count = len(first.fixes)
            deadline = asyncio.get_running_loop().time() + self.batch_wait
            while count < self.batch_size:
                timeout = deadline - asyncio.get_running_loop().time()
                if timeout <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), timeout)
                except TimeoutError:
                    break
                batch.append(item)
                count += len(item.fixes)
            await self._write(batch)

    async def _write(self, batch: list[_Pending]) -> None:
        fixes = [fix for item in batch for fix in item.fixes]
        seen, self._seen = self._seen, {}
        now = self.now()

        def work(session: Session) -> service.Stored:
            stored = service.store_fixes(session, fixes, now)
            service.touch_vehicles(session, seen)
            return stored

        try:
            stored = await self._db(work)
        except Exception:
            # Nothing was kept: the terminals get no answer and resend (blind-area reports).
            self.counters["write_failures"] += 1
            log.exception("storing %d positions failed", len(fixes))
            return
        self.counters["stored"] += stored.stored
        self.counters["refused_fixes"] += stored.refused
        self.counters["batches"] += 1
        for item in batch:
            self._reply(item.conn, item.header, jt808.OK)

    async def _flush_remaining(self) -> None:
        if self._queue is None:
            return
        batch = []
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
        if batch:
            await self._write(batch)

    async def _stale_loop(self) -> None:
        while True:
            await asyncio.sleep(self.stale_every)
            await self.sweep_stale()

    async def sweep_stale(self) -> list[int]:
        seen, self._seen = self._seen, {}
        now = self.now()

        def work(session: Session) -> list[int]:
            service.touch_vehicles(session, seen)
            return service.mark_stale(session, now, self.stale_after)

        try:
            ids: list[int] = await self._db(work)
        except Exception:
            log.exception("marking stale terminals failed")
            return []
        self.counters["stale"] += len(ids)
        return ids


def run_gateway(url: str, host: str, port: int) -> None:
    import signal

    from cityloop.db import make_engine, make_session_factory

    engine = make_engine(url)
    gateway = Gateway(make_session_factory(engine))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await gateway.serve_forever(host, port, stop)
        log.info("gateway stopped: %s", dict(gateway.counters))

    try:
        asyncio.run(main())
    finally:
        engine.dispose()
