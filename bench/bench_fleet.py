"""Benchmark: positions stored per second through the JT/T 808 gateway (issue 16).

`cityloop jt808-gateway` runs as its own process; 1,000 simulated terminals (asyncio, one
process) register, authenticate and stream 0x0200 location reports over TCP, each keeping up
to WINDOW reports unanswered (a terminal sends its next fix before the platform's answer to
the last one, as terminals do on a slow link). Stored positions are counted in the database
over a measured window after a warm-up. Baseline, same run, same database, same table:
the raw batched INSERT rate (executemany of 2,000 rows, one commit per batch, from one client).

Run: .venv/bin/python bench/bench_fleet.py [--seconds 15] [--terminals 1000]
     [--db sqlite,postgresql]
Every loop here stops by itself; all traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

PG_URL = os.environ.get(
    "CITYLOOP_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
WINDOW = 8
BATCH = 2000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def database(kind: str, tmp: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'fleet.db'}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS cityloop_bench_fleet WITH (FORCE)"))
        conn.execute(text("CREATE DATABASE cityloop_bench_fleet"))
    admin.dispose()
    return (
        make_url(PG_URL).set(database="cityloop_bench_fleet").render_as_string(hide_password=False)
    )


def prepare(url: str, terminals: int) -> list[str]:
    from cityloop.db import Base, make_engine
    from cityloop.fleet.models import Vehicle
    from cityloop.models import load_all_models

    load_all_models()
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    phones = [f"0139{i:08d}" for i in range(terminals)]
    with engine.begin() as conn:
        conn.execute(
            insert(Vehicle),
            [
                {"plate": f"闽D·B{i:05d}", "kind": "sweeper", "terminal_phone": p, "state": "never"}
                for i, p in enumerate(phones)
            ],
        )
    engine.dispose()
    return phones


def raw_rate(url: str, seconds: float) -> float:
    """Plain batched INSERTs into the positions table (no checks, no conflict handling)."""
    from cityloop.db import make_engine
    from cityloop.fleet.models import Position

    engine = make_engine(url)
    start = datetime.now(UTC) - timedelta(days=20)
    rows = 0
    began = time.perf_counter()
    n = 0
    while time.perf_counter() - began < seconds:
        batch = [
            {
                "subject": "vehicle",
                "subject_id": 1_000_000 + (n + i) % 1000,
                "at": start + timedelta(milliseconds=n + i),
                "lon": 118.1 + i * 1e-6,
                "lat": 24.48,
                "speed_kmh": 10.0,
                "heading": 90,
                "source": "raw",
            }
            for i in range(BATCH)
        ]
        n += BATCH
        with engine.begin() as conn:
            conn.execute(insert(Position.__table__), batch)
        rows += BATCH
    rate = rows / (time.perf_counter() - began)
    with engine.begin() as conn:
        conn.execute(Position.__table__.delete())
    engine.dispose()
    return rate


def stored(url: str) -> int:
    from cityloop.fleet.models import Position

    engine = create_engine(url)
    with engine.connect() as conn:
        count = conn.scalar(select(func.count()).select_from(Position)) or 0
    engine.dispose()
    return int(count)


async def terminal(phone: str, port: int, stop_at: float, base: datetime, index: int) -> int:
    from cityloop.fleet import jt808

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    serial = 0
    buffer = bytearray()

    def frame(msg_id: int, body: bytes) -> bytes:
        nonlocal serial
        serial += 1
        return jt808.encode(msg_id, body, phone=phone, serial=serial, version=None)

    async def answer() -> jt808.Message:
        while True:
            frames = jt808.split_frames(buffer)
            if frames:
                for extra in reversed(frames[1:]):
                    buffer[:0] = b"\x7e" + extra + b"\x7e"
                return jt808.decode(frames[0])
            chunk = await reader.read(65536)
            if not chunk:
                raise ConnectionError("closed")
            buffer.extend(chunk)

    reg = jt808.Registration(35, 200, "CL", "BENCH", "T", 1, "闽D")
    writer.write(frame(jt808.REGISTER, jt808.registration_body(reg, 2013)))
    code = (await answer()).body[3:].decode("gbk")
    writer.write(frame(jt808.AUTHENTICATE, jt808.auth_body(code, 2013)))
    await answer()
    sent = acked = 0
    lon = 118.05 + (index % 100) * 0.001
    lat = 24.45 + (index // 100) * 0.002
    while time.monotonic() < stop_at:
        while sent - acked < WINDOW:
            at = base + timedelta(seconds=sent)
            writer.write(
                frame(jt808.LOCATION, jt808.location_body(lon + sent * 1e-6, lat, at, speed_kmh=9))
            )
            sent += 1
        await writer.drain()
        await answer()
        acked += 1
    writer.close()
    return acked


async def drive(phones: list[str], port: int, seconds: float) -> int:
    stop_at = time.monotonic() + seconds
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    counts = await asyncio.gather(
        *(terminal(p, port, stop_at, base, i) for i, p in enumerate(phones)), return_exceptions=True
    )
    return sum(c for c in counts if isinstance(c, int))


def client_process(phones: list[str], port: int, seconds: float) -> None:
    asyncio.run(drive(phones, port, seconds))


def run(kind: str, seconds: float, terminals: int) -> dict[str, float]:
    import multiprocessing as mp

    tmp = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    url = database(kind, tmp)
    phones = prepare(url, terminals)
    raw = raw_rate(url, min(seconds, 8))
    port = free_port()
    env = {**os.environ, "CITYLOOP_DATABASE_URL": url}
    gateway = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "cityloop"),
            "jt808-gateway",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        warm = 8.0
        client = mp.get_context("spawn").Process(
            target=client_process, args=(phones, port, warm + seconds)
        )
        client.start()
        time.sleep(warm)
        before, t0 = stored(url), time.perf_counter()
        time.sleep(seconds)
        after, t1 = stored(url), time.perf_counter()
        client.join(30)
        rate = (after - before) / (t1 - t0)
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(30)
    return {"raw": raw, "gateway": rate, "ratio": rate / raw}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--terminals", type=int, default=1000)
    parser.add_argument("--db", default="sqlite,postgresql")
    args = parser.parse_args()
    print(f"{args.terminals} terminals, {args.seconds:.0f} s measured, window {WINDOW}")
    print("| database | raw batched insert rows/s | gateway positions stored/s | ratio |")
    print("|---|---:|---:|---:|")
    for kind in args.db.split(","):
        result = run(kind, args.seconds, args.terminals)
        print(
            f"| {kind} | {result['raw']:,.0f} | {result['gateway']:,.0f} | {result['ratio']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
