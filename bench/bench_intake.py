"""Benchmark: intake under load through HTTP (issue 4).

16 concurrent clients post reports for a bounded time (warm-up, then a measured window)
against `cityloop serve` with 2 worker processes, on SQLite and on PostgreSQL. The baseline,
measured in the same run on the same database, is the raw single-row INSERT + COMMIT rate from
16 clients. Also: server RSS, and the p50/p99 latency of auto-routable reports (an inspector's
street-lamp report, filed and dispatched inside the request) at half the sustained rate.

Run: .venv/bin/python bench/bench_intake.py [--seconds 20] [--db sqlite,postgresql]
     [--endpoint reports|open311]
Every loop here stops by itself; all traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

TZ = ZoneInfo("Asia/Shanghai")
CLASSES = ("06010", "06042", "09006", "09010", "07001", "06036", "06028", "01037")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(url: str, media_dir: Path, history: int) -> list[tuple[float, float]]:
    """Schema + the demo city with `history` cases over the past year (a running city's
    tables, and the planner statistics it has); returns points inside unit grids."""
    from cityloop.db import Base, make_engine
    from cityloop.demo.build import build
    from cityloop.models import load_all_models
    from cityloop.places.models import UnitGrid
    from cityloop.places.service import PlaceIndex

    load_all_models()
    engine = make_engine(url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        build(session, cases=0, now=datetime(2026, 9, 1, 9, 0, tzinfo=TZ), media_dir=media_dir)
        session.commit()
        if history:
            from synthetic_history import generate  # this script runs from bench/

            today = datetime.now(TZ).date()
            generate(
                session,
                cases=history,
                first_day=today - timedelta(days=365),
                last_day=today - timedelta(days=1),
            )
            session.commit()
        centroids = session.execute(select(UnitGrid.centroid_lon, UnitGrid.centroid_lat)).all()
        places = PlaceIndex.load(session)
    if engine.dialect.name == "postgresql":
        # The city's bulk load is not part of the measurement: its dirty pages are written and
        # its tables analysed now, not by a checkpoint in the middle of the window. Without
        # statistics (a new table, autovacuum off) the planner takes the cases table for empty
        # and reads every case of the class for each duplicate search.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
            conn.execute(text("CHECKPOINT"))
    engine.dispose()
    # A few points around each grid's centre, kept only if the city's index places them: a
    # point jittered off the city's edge would be a correct 422, not a load result.
    rng = random.Random(7)
    points = []
    for lon, lat in centroids:
        for _ in range(3):
            point = (lon + rng.uniform(-0.0003, 0.0003), lat + rng.uniform(-0.0003, 0.0003))
            if places.locate(*point) is not None:
                points.append(point)
    return points


def raw_insert_rate(url: str, clients: int, seconds: float) -> float:
    engine = (
        create_engine(url, pool_size=clients, max_overflow=0)
        if url.startswith("postgresql")
        else create_engine(url, connect_args={"timeout": 30})
    )
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS bench_raw"))
        conn.execute(text("CREATE TABLE bench_raw (id INTEGER PRIMARY KEY, note VARCHAR(40))"))
    counts = [0] * clients
    stop = time.perf_counter() + seconds

    def worker(index: int) -> None:
        with engine.connect() as conn:
            n = 0
            while time.perf_counter() < stop:
                with conn.begin():
                    conn.execute(
                        text("INSERT INTO bench_raw (id, note) VALUES (:i, 'x')"),
                        {"i": index * 10_000_000 + n},
                    )
                n += 1
            counts[index] = n

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    engine.dispose()
    return sum(counts) / elapsed


def start_server(
    url: str, port: int, workers: int, data_dir: Path, *, noop: bool = False
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CITYLOOP_DATABASE_URL": url,
        "CITYLOOP_SECRET_KEY": secrets.token_urlsafe(32),
        "CITYLOOP_DATA_DIR": str(data_dir),
    }
    command = [sys.executable, "-m", "cityloop.cli", "serve"]
    if noop:  # the HTTP stack alone (bench/noop_app.py), same server settings
        command = [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(__file__).parent)]
        command += ["noop_app:app", "--log-level", "warning", "--no-access-log"]
    # The server's log goes to a file (a pipe nobody reads would stop the server once full);
    # main() prints its errors after a run that had any.
    log = (data_dir / "server.log").open("wb")
    proc = subprocess.Popen(
        [*command, "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("server did not start: " + (data_dir / "server.log").read_text())


def print_server_errors(data_dir: Path) -> None:
    """The tracebacks and error lines of the server's log, if it has any."""
    lines = (data_dir / "server.log").read_text(errors="replace").splitlines()
    wanted = [line for line in lines if "Error" in line or "error" in line or "raise" in line]
    for line in wanted[-20:]:
        print(f"  server log: {line[:300]}", flush=True)


def process_tree(pid: int) -> list[int]:
    """The process and its children (the server's worker processes)."""
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    return pids


def database_pids() -> list[int]:
    """PostgreSQL's processes on this machine (none for SQLite, which runs in the server)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far (Linux /proc)."""
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of the server and its worker processes."""
    total = 0
    for p in process_tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def body_for(
    endpoint: str, point: tuple[float, float], rng: random.Random
) -> tuple[str, bytes, str]:
    lon, lat = point
    code = rng.choice(CLASSES)
    if endpoint == "open311":
        form = {
            "api_key": "demo-open311-key",
            "service_code": code,
            "lat": f"{lat:.6f}",
            "long": f"{lon:.6f}",
            "description": "压测上报 load test",
        }
        return (
            "/open311/v2/requests.json",
            urllib.parse.urlencode(form).encode(),
            "application/x-www-form-urlencoded",
        )
    body = {
        "source": "app",
        "class_code": code,
        "description": "压测上报 load test",
        "lon": lon,
        "lat": lat,
    }
    return "/api/v1/reports", json.dumps(body).encode(), "application/json"


def client_process(
    port: int,
    endpoint: str,
    connections: int,
    points: list[tuple[float, float]],
    start_at: float,
    warmup: float,
    window: float,
    seed: int,
    out: mp.Queue,
) -> None:  # type: ignore[type-arg]
    """Closed loop: each connection posts as fast as the server answers."""
    results: list[tuple[int, int]] = []  # (ok, errors) per connection in the window
    failures: dict[str, int] = {}  # what the errors were: HTTP status or exception name
    lock = threading.Lock()

    def run(index: int) -> None:
        rng = random.Random(seed * 100 + index)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        ok = errors = 0
        while time.time() < start_at:
            time.sleep(0.001)
        window_start, window_end = start_at + warmup, start_at + warmup + window
        while True:
            now = time.time()
            if now >= window_end:
                break
            path, payload, ctype = body_for(endpoint, rng.choice(points), rng)
            try:
                conn.request("POST", path, body=payload, headers={"Content-Type": ctype})
                response = conn.getresponse()
                answer = response.read()
                good = response.status in (200, 201)
                failure = f"{response.status} {answer[:120]!r}"
            except OSError as exc:
                good = False
                failure = type(exc).__name__
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            if time.time() >= window_start:
                if good:
                    ok += 1
                else:
                    errors += 1
                    with lock:
                        failures[failure] = failures.get(failure, 0) + 1
        with lock:
            results.append((ok, errors))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((sum(r[0] for r in results), sum(r[1] for r in results), failures))


def sustained(
    port: int,
    endpoint: str,
    points: list[tuple[float, float]],
    clients: int,
    warmup: float,
    window: float,
    server_pid: int | None = None,
) -> tuple[float, int]:
    """Closed-loop rate in the window; with the server's pid, also prints where the machine's
    CPU went in the window, per report: server, database, clients."""
    processes = 2
    queue: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    start_at = time.time() + 1.0
    procs = [
        mp.Process(
            target=client_process,
            args=(port, endpoint, clients // processes, points, start_at, warmup, window, i, queue),
        )
        for i in range(processes)
    ]
    for p in procs:
        p.start()
    split: dict[str, float] = {}
    if server_pid is not None:
        time.sleep(max(0.0, start_at + warmup - time.time()))
        groups = {
            "server": process_tree(server_pid),
            "database": database_pids(),
            "clients": [p.pid for p in procs if p.pid is not None],
        }
        workers = process_tree(server_pid)[1:]
        before = {name: cpu_seconds(pids) for name, pids in groups.items()}
        per_worker = [cpu_seconds([pid]) for pid in workers]
        time.sleep(window * 0.9)  # inside the window: the clients stop at its end
        split = {name: cpu_seconds(pids) - before[name] for name, pids in groups.items()}
        busy = [cpu_seconds([pid]) - used for pid, used in zip(workers, per_worker, strict=True)]
        print(
            "  server workers busy (cores): "
            + ", ".join(f"{used / (window * 0.9):.2f}" for used in busy),
            flush=True,
        )
        split["seconds"] = window * 0.9
    totals = [queue.get(timeout=warmup + window + 120) for _ in procs]
    for p in procs:
        p.join()
    ok = sum(t[0] for t in totals)
    errors = sum(t[1] for t in totals)
    for total in totals:
        for failure, count in total[2].items():
            print(f"  error x{count}: {failure}", flush=True)
    if split and ok:
        seconds = split.pop("seconds")
        per_report = {name: used / (ok * seconds / window) * 1000 for name, used in split.items()}
        print(
            "  CPU per report (ms): "
            + ", ".join(f"{name} {ms:.2f}" for name, ms in per_report.items())
            + f"; cores busy {sum(split.values()) / seconds:.2f} of {os.cpu_count()}",
            flush=True,
        )
    return ok / window, errors


def paced_latency(
    port: int,
    rate: float,
    seconds: float,
    points: list[tuple[float, float]],
    token: str,
    seed: int = 0,
) -> tuple[float, float, int, int]:
    """Open loop at a fixed rate: inspectors' street-lamp reports, auto-dispatched in the
    request. Returns p50 ms, p99 ms, dispatched count, errors. Another seed picks other
    points (the same ones would all join the cases of the run before)."""
    latencies: list[float] = []
    dispatched = errors = 0
    failures: dict[str, int] = {}
    lock = threading.Lock()
    interval = 1.0 / rate
    total = int(rate * seconds)
    senders = 16
    start = time.perf_counter()

    def run(index: int) -> None:
        nonlocal dispatched, errors
        rng = random.Random(seed * 1000 + index)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for n in range(index, total, senders):
            due = start + n * interval
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            lon, lat = rng.choice(points)
            body = json.dumps(
                {
                    "source": "inspector",
                    "class_code": "01037",
                    "lon": lon,
                    "lat": lat,
                    "description": "路灯不亮 latency probe",
                }
            ).encode()
            sent = time.perf_counter()
            try:
                conn.request(
                    "POST",
                    "/api/v1/reports",
                    body=body,
                    headers={
                        "Content-Type": "application/json",
                        "Authorization": f"Bearer {token}",
                    },
                )
                response = conn.getresponse()
                data = json.loads(response.read() or b"{}")
                took = (time.perf_counter() - sent) * 1000
                with lock:
                    if response.status == 201 and data.get("state") == "dispatched":
                        dispatched += 1
                        latencies.append(took)
                    elif response.status == 201 and data.get("state") == "merged":
                        latencies.append(took)  # a duplicate of an earlier probe: still served
                    else:
                        errors += 1
                        failure = f"{response.status} {data.get('state') or data}"[:160]
                        failures[failure] = failures.get(failure, 0) + 1
            except OSError as exc:
                with lock:
                    errors += 1
                    failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for failure, count in failures.items():
        print(f"  latency probe error x{count}: {failure}", flush=True)
    if not latencies:
        return float("nan"), float("nan"), dispatched, errors
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return p50, p99, dispatched, errors


def login(port: int, username: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(
        "POST",
        "/api/v1/auth/token",
        body=urllib.parse.urlencode({"username": username, "password": "cityloop-demo"}).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    return str(json.loads(conn.getresponse().read())["access_token"])


def pg_url(admin_url: str, name: str) -> str:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--endpoint", choices=("reports", "open311"), default="reports")
    parser.add_argument(
        "--history", type=int, default=50_000, help="cases already in the city, over a year"
    )
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--latency-rates",
        default="",
        help="also run the latency probe at these rates (auto-routed reports/s, e.g. 50,100)",
    )
    args = parser.parse_args()
    print(
        f"{args.clients} clients, {args.workers} server workers, endpoint {args.endpoint}, "
        f"{args.warmup:g} s warm-up + {args.seconds:g} s window, "
        f"{args.history:,} cases of history"
    )
    header = (
        f"{'database':<12} {'raw ins/s':>10} {'reports/s':>10} {'ratio':>7} {'errors':>7} "
        f"{'RSS MB':>8} {'p50 ms':>8} {'p99 ms':>8} {'dispatched':>10}"
    )
    rows = []
    # The ceiling: the same HTTP stack, client and workers with an empty handler, no database.
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        noop = start_server("sqlite://", port, args.workers, Path(tmp), noop=True)
        try:
            ceiling, _errors = sustained(
                port, "reports", [(118.1, 24.5)], args.clients, args.warmup, args.seconds
            )
        finally:
            os.killpg(noop.pid, signal.SIGTERM)
            noop.wait(timeout=15)
    print(f"HTTP stack alone (bench/noop_app.py, no database): {ceiling:.0f} requests/s")
    for backend in args.db.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            url = (
                f"sqlite:///{Path(tmp) / 'intake.db'}"
                if backend == "sqlite"
                else pg_url(args.pg_url, "cityloop_bench_intake")
            )
            points = prepare(url, Path(tmp) / "media", args.history)
            raw = raw_insert_rate(url, args.clients, 5.0)
            port = free_port()
            server = start_server(url, port, args.workers, Path(tmp))
            try:
                rate, errors = sustained(
                    port,
                    args.endpoint,
                    points,
                    args.clients,
                    args.warmup,
                    args.seconds,
                    server_pid=server.pid,
                )
                rss = rss_mb(server.pid)
                token = login(port, "inspector")
                half = max(rate / 2, 1.0)
                p50, p99, dispatched, latency_errors = paced_latency(
                    port, half, min(args.seconds, 10.0), points, token
                )
                extra_rates = [float(r) for r in args.latency_rates.split(",") if r]
                for seed, extra in enumerate(extra_rates, start=1):
                    at = paced_latency(
                        port, extra, min(args.seconds, 10.0), points, token, seed=seed
                    )
                    print(
                        f"  latency probe at {extra:g} auto-routed reports/s: "
                        f"p50 {at[0]:.1f} ms, p99 {at[1]:.1f} ms, dispatched {at[2]}, "
                        f"errors {at[3]}",
                        flush=True,
                    )
                    latency_errors += at[3]
            finally:
                os.killpg(server.pid, signal.SIGTERM)
                try:
                    server.wait(timeout=15)
                except subprocess.TimeoutExpired:  # keep-alive clients can hold a graceful stop
                    os.killpg(server.pid, signal.SIGKILL)
                    server.wait(timeout=15)
            if errors or latency_errors:
                print_server_errors(Path(tmp))
            print(f"  {rate / ceiling:.2f} of the HTTP stack's own ceiling ({ceiling:.0f}/s)")
            rows.append(
                f"{backend:<12} {raw:>10.0f} {rate:>10.1f} {rate / raw:>7.3f} "
                f"{errors + latency_errors:>7d} {rss:>8.0f} {p50:>8.1f} {p99:>8.1f} "
                f"{dispatched:>10d}"
            )
            print(header)
            print(rows[-1], flush=True)
    print()
    print(header)
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
