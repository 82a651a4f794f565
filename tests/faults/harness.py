"""The fault harness: real `cityloop` processes (server, worker, MQTT bridge) on a database of
their own, killed with SIGKILL mid-work; a load of reports with idempotency keys whose lost
answers are sent again; a private PostgreSQL cluster to restart; and the checks every fault
must pass. Used by tests/faults and by scripts/fault_pg_restart.py.

Every loop here ends by itself and all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

TZ = ZoneInfo("Asia/Shanghai")
SECRET = secrets.token_urlsafe(32)
# Classes of the citizens' everyday reports (bins, litter, vending, roads, lamps, …).
CLASSES = ("06010", "06042", "09006", "09010", "07001", "06036", "06028", "01037")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def engine_for(url: str) -> Engine:
    """A short-lived engine for the checks: no pool that would outlive a restarted server."""
    return create_engine(url, poolclass=NullPool)


def build_city(url: str, media_dir: Path) -> None:
    """Schema and the demo city (Xiamen) without cases."""
    from cityloop.db import Base, make_engine
    from cityloop.demo.build import build
    from cityloop.models import load_all_models

    load_all_models()
    engine = make_engine(url)
    try:
        Base.metadata.create_all(engine)
        with Session(engine) as session:
            build(session, cases=0, now=datetime(2026, 9, 1, 9, 0, tzinfo=TZ), media_dir=media_dir)
            session.commit()
    finally:
        engine.dispose()


def grid_points(url: str, limit: int = 4000) -> list[tuple[float, float]]:
    """Centres of unit grids: points the city will locate."""
    from cityloop.places.models import UnitGrid

    engine = engine_for(url)
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(UnitGrid.centroid_lon, UnitGrid.centroid_lat)
                .order_by(UnitGrid.code)
                .limit(limit)
            ).all()
    finally:
        engine.dispose()
    return [(float(lon), float(lat)) for lon, lat in rows]


# -- processes --------------------------------------------------------------------------------
class Proc:
    """A `cityloop` command in a process group of its own (so that SIGKILL takes its worker
    processes too), its output in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> Proc:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cityloop.cli", *self.args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        """SIGKILL to the whole group: no handler runs, nothing is flushed or rolled back."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
        self.kills += 1

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(15)
        except ProcessLookupError:
            self.process.wait(15)

    def output(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def wait_for_output(self, needle: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.output():
            if not self.alive:
                raise AssertionError(f"{self.args[0]} exited:\n{self.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {needle!r} from {self.args[0]} in {timeout} s")
            time.sleep(0.1)


def process_env(url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "CITYLOOP_DATABASE_URL": url,
        "CITYLOOP_DATA_DIR": str(data_dir),
        "CITYLOOP_SECRET_KEY": SECRET,
        **extra,
    }


class Server(Proc):
    """`cityloop serve --workers 2` on a free port."""

    def __init__(self, url: str, data_dir: Path, *, workers: int = 2) -> None:
        self.port = free_port()
        super().__init__(
            ["serve", "--port", str(self.port), "--workers", str(workers)],
            process_env(url, data_dir),
            data_dir / "server.log",
        )

    def start(self) -> Server:
        super().start()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if not self.alive:
                raise AssertionError(f"the server exited:\n{self.output()[-3000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                ok = conn.getresponse().status == 200
                conn.close()
                if ok:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.kill9()
        raise AssertionError(f"the server did not answer in 90 s:\n{self.output()[-3000:]}")


def http_json(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        conn.request(
            method,
            path,
            body=payload,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    try:
        return response.status, json.loads(raw) if raw else None
    except ValueError:
        return response.status, raw.decode("utf-8", "replace")


# -- the load ---------------------------------------------------------------------------------
CUT = 0  # the request was sent, its answer never came (connection reset, closed, timed out)
REFUSED = -1  # nobody listening: the server is down
LOST = (CUT, REFUSED)


@dataclass
class Attempt:
    """One report and every answer it got, under one idempotency key."""

    key: str
    body: dict[str, Any]
    answers: list[int] = field(default_factory=list)
    tickets: list[str] = field(default_factory=list)

    @property
    def acknowledged(self) -> bool:
        return any(200 <= a < 300 for a in self.answers)

    @property
    def settled(self) -> bool:
        """Answered for good: saved (2xx) or refused as bad input (4xx, never to be saved)."""
        return any(200 <= a < 500 for a in self.answers)


class Load:
    """Threads posting reports as fast as the server answers, each under a fresh
    Idempotency-Key; every answer is recorded, including the ones that never came."""

    def __init__(
        self, port: int, points: list[tuple[float, float]], *, threads: int = 8, seed: int = 7
    ) -> None:
        self.port = port
        self.points = points
        self.run = uuid.uuid4().hex[:8]
        self.attempts: dict[str, Attempt] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._client, args=(i, seed + i), daemon=True)
            for i in range(threads)
        ]

    @property
    def prefix(self) -> str:
        return f"fault-{self.run}-"

    def start(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def acknowledged(self) -> int:
        with self._lock:
            return sum(1 for a in self.attempts.values() if a.acknowledged)

    def _body(self, rng: random.Random) -> dict[str, Any]:
        lon, lat = rng.choice(self.points)
        return {
            "source": "app",
            "class_code": rng.choice(CLASSES),
            "description": "故障测试上报 fault test",
            "lon": lon + rng.uniform(-0.00005, 0.00005),
            "lat": lat + rng.uniform(-0.00005, 0.00005),
        }

    def _client(self, index: int, seed: int) -> None:
        rng = random.Random(seed)
        n = 0
        while not self._stop.is_set():
            attempt = Attempt(f"{self.prefix}{index}-{n}", self._body(rng))
            n += 1
            with self._lock:
                self.attempts[attempt.key] = attempt
            self.send(attempt, timeout=15)
            if attempt.answers[-1] in (*LOST, 503):
                time.sleep(0.25)  # the server or its database is away: do not spin

    def send(self, attempt: Attempt, timeout: float = 15.0) -> int:
        try:
            status, body = http_json(
                self.port,
                "POST",
                "/api/v1/reports",
                attempt.body,
                {"Idempotency-Key": attempt.key},
                timeout,
            )
        except ConnectionRefusedError:
            status, body = REFUSED, None
        except (OSError, http.client.HTTPException):
            status, body = CUT, None
        attempt.answers.append(status)
        if 200 <= status < 300 and isinstance(body, dict):
            attempt.tickets.append(str(body["ticket"]))
        return status

    def resend_unanswered(self, port: int, *, patience: float = 60.0) -> int:
        """Send every report without a final answer again, same key and body, until it gets
        one."""
        self.port = port
        waiting = [a for a in self.attempts.values() if not a.settled]
        deadline = time.monotonic() + patience
        while waiting and time.monotonic() < deadline:
            for attempt in waiting:
                self.send(attempt)
            waiting = [a for a in waiting if not a.settled]
            if waiting:
                time.sleep(0.5)
        return len([a for a in self.attempts.values() if len(a.answers) > 1])


# -- the checks -------------------------------------------------------------------------------
def audit(url: str) -> tuple[int, list[str]]:
    """verify-audit's check: every timeline's hash chain recomputed."""
    from cityloop.cases.audit import verify_audit

    engine = engine_for(url)
    try:
        with Session(engine) as session:
            checked, findings = verify_audit(session)
    finally:
        engine.dispose()
    return checked, [f"case {f.case_id} event {f.seq}: {f.problem}" for f in findings]


def half_written_cases(conn: Any) -> list[int]:
    """Cases without their first timeline event."""
    return list(
        conn.scalars(
            text(
                "SELECT c.id FROM cases c WHERE NOT EXISTS "
                "(SELECT 1 FROM case_events e WHERE e.case_id = c.id AND e.seq = 1)"
            )
        )
    )


def stored_keys(url: str, load: Load) -> set[str]:
    """The load's idempotency keys the database holds a case for."""
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            keys = conn.scalars(
                text("SELECT idempotency_key FROM cases WHERE idempotency_key LIKE :prefix"),
                {"prefix": f"app:{load.prefix}%"},
            ).all()
    finally:
        engine.dispose()
    return {str(key).removeprefix("app:") for key in keys}


def check_reports(url: str, load: Load) -> dict[str, int]:
    """Every acknowledged report is there exactly once, under the ticket it was answered
    with; nothing unacknowledged slipped in; no case is half-written; every chain verifies.
    Returns the numbers; raises AssertionError listing what is wrong."""
    problems: list[str] = []
    attempts = list(load.attempts.values())
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT idempotency_key, ticket, id, merged_into_id FROM cases "
                    "WHERE idempotency_key LIKE :prefix"
                ),
                {"prefix": f"app:{load.prefix}%"},
            ).all()
            stored = Counter(str(key).removeprefix("app:") for key, *_ in rows)
            by_key = {
                str(key).removeprefix("app:"): (ticket, cid, merged)
                for key, ticket, cid, merged in rows
            }
            half = half_written_cases(conn)
            total_cases = int(conn.scalar(text("SELECT count(*) FROM cases")) or 0)
            notes = Counter(
                json.loads(payload)["case_id"] if isinstance(payload, str) else payload["case_id"]
                for (payload,) in conn.execute(
                    text("SELECT payload FROM case_events WHERE action = 'duplicate_report'")
                )
            )
    finally:
        engine.dispose()
    duplicates = 0
    for attempt in attempts:
        tickets = set(attempt.tickets)
        if len(tickets) > 1:
            duplicates += 1
            problems.append(f"{attempt.key} answered with tickets {sorted(tickets)}")
        if not attempt.settled:
            problems.append(f"{attempt.key} never got a final answer: {attempt.answers}")
            continue
        if not attempt.acknowledged:
            if attempt.key in by_key:
                problems.append(f"{attempt.key} refused {attempt.answers} but stored")
            continue
        if attempt.key not in by_key:
            problems.append(f"{attempt.key} acknowledged ({attempt.tickets[0]}) but not stored")
        elif by_key[attempt.key][0] != attempt.tickets[0]:
            problems.append(
                f"{attempt.key} stored as {by_key[attempt.key][0]}, answered {attempt.tickets[0]}"
            )
    for key, count in stored.items():
        if count > 1:
            duplicates += count - 1
            problems.append(f"{key} stored {count} times")
    unknown = set(by_key) - set(load.attempts)
    if unknown:
        problems.append(f"{len(unknown)} stored reports nobody sent: {sorted(unknown)[:5]}")
    merged = [(cid, target) for _t, cid, target in by_key.values() if target is not None]
    for cid, target in merged:
        if notes[cid] != 1:
            problems.append(f"case {cid} merged into {target} is noted there {notes[cid]} times")
    if half:
        problems.append(f"cases without their first event: {half[:10]}")
    if total_cases != len(by_key):
        problems.append(f"{total_cases} cases in the database, {len(by_key)} from this load")
    checked, findings = audit(url)
    problems.extend(findings[:10])
    answers = Counter(a for attempt in attempts for a in attempt.answers)
    numbers = {
        "reports": len(attempts),
        "requests": sum(answers.values()),
        "answered_2xx": sum(n for status, n in answers.items() if 200 <= status < 300),
        "answered_503": answers.get(503, 0),
        "answered_500": answers.get(500, 0),
        "answers_cut_off": answers.get(CUT, 0),
        "connections_refused": answers.get(REFUSED, 0),
        "answered_4xx": sum(n for status, n in answers.items() if 400 <= status < 500),
        "other_answers": sum(
            n
            for status, n in answers.items()
            if status not in (*LOST, 500, 503) and not 200 <= status < 500
        ),
        "resent": sum(1 for a in attempts if len(a.answers) > 1),
        "stored": len(by_key),
        "merged_as_duplicates": len(merged),
        "duplicates_found": duplicates,
        "half_written": len(half),
        "events_checked": checked,
    }
    if problems:
        raise AssertionError(f"{len(problems)} problem(s) {numbers}:\n" + "\n".join(problems[:30]))
    return numbers


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.1)


# -- a private PostgreSQL cluster ---------------------------------------------------------------
def postgres_bin() -> Path | None:
    """The newest installed server's binaries (Debian layout)."""
    root = Path("/usr/lib/postgresql")
    versions = (
        sorted(
            (int(p.name), p / "bin")
            for p in root.glob("*")
            if p.name.isdigit() and (p / "bin" / "initdb").exists()
        )
        if root.exists()
        else []
    )
    return versions[-1][1] if versions else None


class PrivateCluster:
    """A PostgreSQL cluster of our own in a temporary directory, so that it can be restarted
    without touching the shared server. As root, its commands run as the postgres user."""

    def __init__(self, port: int = 55433) -> None:
        found = postgres_bin()
        if found is None:
            raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql")
        self.bin = found
        self.port = port if _port_free(port) else free_port()
        self.root = Path(tempfile.mkdtemp(prefix="cityloop-pg-"))
        self.data = self.root / "data"
        self.logfile = self.root / "server.log"
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        os.chmod(self.root, 0o700)

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_postgres else []
        return subprocess.run(
            [*prefix, *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=check,
            cwd=self.root,
        )

    def init(self) -> PrivateCluster:
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        )
        return self

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.logfile),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", check=False
        )

    def restart_immediate(self, down_seconds: float) -> float:
        """Stop with -m immediate (a crash: recovery from the WAL on start), stay down a
        while, start again; returns how long it was away."""
        began = time.monotonic()
        self.stop("immediate")
        time.sleep(down_seconds)
        self.start()
        return time.monotonic() - began

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        admin = create_engine(
            self.url("postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
        )
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
        return self.url(name)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# -- PostgreSQL restarting under load ---------------------------------------------------------
def pg_restart_under_load(
    workdir: Path,
    *,
    threads: int = 8,
    before: float = 1.0,
    down: float = 2.0,
    after: float = 3.0,
    restarts: int = 1,
    say: Callable[[str], None] = lambda _line: None,
) -> dict[str, Any]:
    """A private cluster, the demo city in it, `cityloop serve --workers 2` and `cityloop
    worker` on it, a load of reports; the cluster restarted with `-m immediate` (a crash) under
    the load. Then every report without a 2xx is sent again under its key, and the checks run.
    Returns the numbers; raises AssertionError when a check fails."""
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = PrivateCluster().init()
    cluster.start()
    say(f"private cluster on port {cluster.port} ({cluster.bin})")
    server: Server | None = None
    sweeper: Proc | None = None
    load: Load | None = None
    try:
        url = cluster.create_database("cityloop_fault")
        build_city(url, workdir / "media")
        server = Server(url, workdir).start()
        sweeper = Proc(
            ["worker", "--interval", "0.5"], process_env(url, workdir), workdir / "worker.log"
        ).start()
        say(f"server on port {server.port}, worker running; load from {threads} clients")
        load = Load(server.port, grid_points(url), threads=threads).start()
        away: list[float] = []
        for _ in range(restarts):
            # Well into the load: a good many answered since the last restart.
            target = load.acknowledged() + 100
            wait_until(lambda t=target: load.acknowledged() >= t, 60, "reports acknowledged")
            time.sleep(before)
            say(f"{load.acknowledged()} reports acknowledged; restarting PostgreSQL (immediate)")
            away.append(cluster.restart_immediate(down))
            say(f"PostgreSQL back after {away[-1]:.1f} s")
        time.sleep(after)
        load.stop()
        unanswered = {a.key for a in load.attempts.values() if not a.settled}
        committed_unanswered = len(unanswered & stored_keys(url, load))
        say(f"load stopped; sending {len(unanswered)} unanswered reports again")
        load.resend_unanswered(server.port)
        numbers = check_reports(url, load)
        swept_before = sweeper.output().count("swept ")
        wait_until(
            lambda: sweeper.output().count("swept ") > swept_before + 1,
            30,
            "the worker sweeping after the restart",
        )
        numbers.update(
            {
                "restarts": restarts,
                "seconds_away": round(sum(away), 1),
                "committed_but_unanswered": committed_unanswered,
                "worker_alive": int(sweeper.alive),
                "worker_passes_failed": sweeper.output().count("database unavailable"),
                "server_503_logged": server.output().count("database unavailable"),
            }
        )
        if numbers["answered_500"]:
            raise AssertionError(f"500 answers during the restart: {numbers}")
        if not numbers["answered_503"]:
            raise AssertionError(f"no request met the outage (503): {numbers}")
        return numbers
    finally:
        if load is not None:
            load.stop()
        for proc in (server, sweeper):
            if proc is not None:
                proc.stop()
        cluster.destroy()
