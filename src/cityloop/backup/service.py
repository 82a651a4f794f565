"""`backup()` and `restore()` for SQLite and PostgreSQL, and the fingerprint that proves a
restore brought back the backed-up city.

SQLite: the backup is a plain SQLite file made with sqlite3's backup API in one step, so it
is one consistent snapshot even while the server writes (WAL lets writers go on meanwhile; a
step-by-step copy would start again after every write and might never finish under load).
PostgreSQL: `pg_dump --format=custom` inside a snapshot exported by the transaction that
also computes the fingerprint, so the two describe the same instant; `pg_restore` runs in a
single transaction, so a restore that fails leaves the database as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from cityloop import __version__

# (step, done, total), as the demo builder reports its progress.
Progress = Callable[[str, int, int], None]

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_MAGIC = b"PGDMP"
MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_FORMAT = "cityloop-backup/1"
# Restores and page copies report progress every this many pages (4 MB).
PAGES_PER_STEP = 1024


class BackupError(Exception):
    """Why a backup or restore was not done; the message says what to do about it."""


@dataclass(frozen=True)
class Fingerprint:
    """What a city's data adds up to: rows per table, and a digest over every event hash of
    every case timeline (in case and sequence order), so one changed, lost or extra event
    shows."""

    tables: dict[str, int]
    chain: str | None
    revision: str | None

    @property
    def cases(self) -> int:
        return self.tables.get("cases", 0)

    @property
    def events(self) -> int:
        return self.tables.get("case_events", 0)

    @property
    def rows(self) -> int:
        return sum(self.tables.values())

    def summary(self) -> str:
        chain = self.chain[:16] if self.chain else "-"
        return (
            f"{len(self.tables)} tables, {self.rows} rows: {self.cases} cases, "
            f"{self.events} timeline events, chain digest {chain}…, "
            f"schema {self.revision or 'unversioned'}"
        )

    def differences(self, other: Fingerprint) -> list[str]:
        """What differs from ``other``, one line each (empty when they are equal)."""
        found = []
        for name in sorted(set(self.tables) | set(other.tables)):
            mine, theirs = self.tables.get(name), other.tables.get(name)
            if mine != theirs:
                found.append(f"table {name}: {theirs} rows in the backup, {mine} here")
        if self.chain != other.chain:
            found.append("timeline chain digest differs")
        if self.revision != other.revision:
            found.append(f"schema revision {other.revision} in the backup, {self.revision} here")
        return found

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fingerprint:
        return cls(
            tables={str(k): int(v) for k, v in data["tables"].items()},
            chain=data.get("chain"),
            revision=data.get("revision"),
        )


@dataclass(frozen=True)
class Outcome:
    """A finished backup (``path`` is the backup file) or restore (``path`` is the file it
    came from); ``fingerprint`` describes the data written; ``expected`` is the fingerprint
    the backup's manifest recorded, when a restore found one."""

    backend: str
    path: Path
    bytes: int
    seconds: float
    fingerprint: Fingerprint
    expected: Fingerprint | None = None


def fingerprint(conn: Connection) -> Fingerprint:
    """Count every table and digest the timeline chains, inside ``conn``'s transaction."""
    quote = conn.dialect.identifier_preparer.quote
    names = sorted(inspect(conn).get_table_names())
    tables = {
        name: int(conn.scalar(text(f"SELECT count(*) FROM {quote(name)}")) or 0) for name in names
    }
    chain = None
    if "case_events" in names:
        digest = hashlib.sha256()
        rows = conn.execution_options(yield_per=10_000).execute(
            text("SELECT hash FROM case_events ORDER BY case_id, seq")
        )
        for (event_hash,) in rows:
            digest.update(str(event_hash).encode("ascii"))
        chain = digest.hexdigest()
    revision = None
    if "alembic_version" in names:
        revision = conn.scalar(text("SELECT version_num FROM alembic_version"))
    return Fingerprint(tables=tables, chain=chain, revision=revision)


def manifest_path(backup_file: Path) -> Path:
    return backup_file.with_name(backup_file.name + MANIFEST_SUFFIX)


def read_manifest(backup_file: Path) -> Fingerprint | None:
    path = manifest_path(backup_file)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Fingerprint.from_dict(data["fingerprint"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BackupError(f"the manifest {path} is unreadable ({exc}); move it away") from exc


def _write_manifest(backup_file: Path, backend: str, url: str, size: int, fp: Fingerprint) -> None:
    data = {
        "format": MANIFEST_FORMAT,
        "backend": backend,
        "source": make_url(url).render_as_string(hide_password=True),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cityloop_version": __version__,
        "bytes": size,
        "fingerprint": asdict(fp),
    }
    body = json.dumps(data, ensure_ascii=False, indent=2)
    manifest_path(backup_file).write_text(body + "\n", encoding="utf-8")


def _quiet(_step: str, _done: int, _total: int) -> None:
    pass


# -- entry points -----------------------------------------------------------------------------
def backup(
    url: str, out: Path, *, progress: Progress | None = None, pg_bindir: Path | None = None
) -> Outcome:
    """Copy the database at ``url`` into the file ``out`` (replaced atomically if it exists)
    and write its manifest beside it."""
    report = progress or _quiet
    backend = make_url(url).get_backend_name()
    started = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        if backend == "sqlite":
            fp = _backup_sqlite(url, out, partial, report)
        elif backend == "postgresql":
            fp = _backup_postgresql(url, partial, report, pg_bindir)
        else:
            raise BackupError(f"cannot back up a {backend} database: sqlite or postgresql only")
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    _fsync_dir(out.parent)
    size = out.stat().st_size
    _write_manifest(out, backend, url, size, fp)
    return Outcome(backend, out, size, time.perf_counter() - started, fp)


def restore(
    url: str,
    source: Path,
    *,
    force: bool = False,
    progress: Progress | None = None,
    pg_bindir: Path | None = None,
) -> Outcome:
    """Bring the backup file ``source`` into the database at ``url``. A database that holds
    any row is refused unless ``force``."""
    report = progress or _quiet
    backend = make_url(url).get_backend_name()
    kind = backup_kind(source)
    if kind != backend:
        raise BackupError(
            f"{source} is a {kind} backup and {backend} cannot take it: restore it into a "
            f"{'sqlite:///FILE' if kind == 'sqlite' else 'postgresql://…'} database"
        )
    expected = read_manifest(source)
    started = time.perf_counter()
    if backend == "sqlite":
        fp = _restore_sqlite(url, source, force, report)
    else:
        fp = _restore_postgresql(url, source, force, report, pg_bindir)
    return Outcome(
        backend, source, source.stat().st_size, time.perf_counter() - started, fp, expected
    )


def backup_kind(source: Path) -> str:
    """``sqlite`` or ``postgresql``, from the file's first bytes."""
    try:
        with source.open("rb") as handle:
            head = handle.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise BackupError(f"cannot read the backup {source}: {exc.strerror or exc}") from exc
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PG_MAGIC):
        return "postgresql"
    raise BackupError(
        f"{source} is not a cityloop backup (neither a SQLite file nor a pg_dump custom archive)"
    )


# -- SQLite -----------------------------------------------------------------------------------
def _sqlite_file(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database has nothing to back up or restore into")
    return Path(database)


@contextmanager
def _engine(url: str, **kwargs: Any) -> Iterator[Engine]:
    engine = create_engine(url, poolclass=NullPool, **kwargs)
    try:
        yield engine
    finally:
        engine.dispose()


def _sqlite_fingerprint(path: Path) -> Fingerprint:
    with _engine(f"sqlite:///{path}") as engine, engine.connect() as conn:
        return fingerprint(conn)


def _backup_sqlite(url: str, out: Path, partial: Path, report: Progress) -> Fingerprint:
    source = _sqlite_file(url)
    if not source.is_file():
        raise BackupError(f"there is no database at {source}")
    if out.exists() and out.resolve() == source.resolve():
        raise BackupError("--out names the database itself; choose another file")
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(partial)
        try:

            def step(_status: int, remaining: int, total: int) -> None:
                report("copying pages", total - remaining, total)

            src.backup(dst, pages=-1, progress=step)
            # A backup is one self-contained file: no -wal beside it.
            dst.execute("PRAGMA journal_mode=DELETE")
            problem = dst.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise BackupError(f"the copy of {source} failed: {exc}") from exc
    finally:
        src.close()
    if problem != "ok":
        raise BackupError(f"the copy of {source} is damaged ({problem}); nothing was written")
    report("fingerprint", 0, 1)
    fp = _sqlite_fingerprint(partial)
    report("fingerprint", 1, 1)
    return fp


def _sqlite_rows(path: Path) -> tuple[int, int]:
    """(rows, tables holding them) in an existing SQLite file, alembic_version aside."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        counts = [
            conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
            for name in names
            if name != "alembic_version"
        ]
    finally:
        conn.close()
    return sum(counts), sum(1 for c in counts if c)


def _check_sqlite_backup(source: Path) -> None:
    try:
        conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            problem = conn.execute("PRAGMA quick_check").fetchone()[0]
            has_cases = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'cases'"
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise BackupError(f"the backup {source} cannot be read: {exc}") from exc
    if problem != "ok":
        raise BackupError(f"the backup {source} is damaged ({problem}); nothing was restored")
    if not has_cases:
        raise BackupError(f"{source} is a SQLite file but not a cityloop database (no cases)")


def _refuse_unless_forced(where: str, rows: int, tables: int, force: bool) -> None:
    if rows and not force:
        raise BackupError(
            f"{where} is not empty ({rows} rows in {tables} tables): restore into an empty "
            "database, or add --force to replace everything in it"
        )


def _restore_sqlite(url: str, source: Path, force: bool, report: Progress) -> Fingerprint:
    target = _sqlite_file(url)
    _check_sqlite_backup(source)
    if target.exists():
        try:
            rows, tables = _sqlite_rows(target)
        except sqlite3.Error as exc:
            if not force:
                raise BackupError(
                    f"{target} exists and is not a readable SQLite database ({exc}); "
                    "add --force to replace it"
                ) from exc
        else:
            _refuse_unless_forced(str(target), rows, tables, force)
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(target, timeout=30)
        try:

            def step(_status: int, remaining: int, total: int) -> None:
                report("restoring pages", total - remaining, total)

            # The backup file is not written meanwhile, so a stepwise copy cannot restart.
            src.backup(dst, pages=PAGES_PER_STEP, progress=step, sleep=0)
            dst.execute("PRAGMA journal_mode=WAL")
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise BackupError(f"restoring into {target} failed: {exc}") from exc
    finally:
        src.close()
    report("fingerprint", 0, 1)
    fp = _sqlite_fingerprint(target)
    report("fingerprint", 1, 1)
    return fp


# -- PostgreSQL -------------------------------------------------------------------------------
def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """The URL as libpq wants it, and the environment carrying its password (never put on a
    command line, where `ps` would show it)."""
    parsed = make_url(url)
    env = {**os.environ}
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _tool_major(tool: Path) -> int:
    try:
        answer = subprocess.run(
            [str(tool), "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise BackupError(f"{tool} does not run: {exc}") from exc
    found = re.search(r"\)\s*(\d+)", answer)
    if found is None:
        raise BackupError(f"cannot tell the version of {tool} from {answer.strip()!r}")
    return int(found.group(1))


def pg_tool(name: str, server_major: int, bindir: Path | None = None) -> Path:
    """The ``pg_dump`` / ``pg_restore`` to use with a server of ``server_major``: the one in
    ``bindir`` if given, else Debian's of the server's version, else the one on PATH. An
    older tool than the server is refused (pg_dump aborts on it anyway)."""
    if bindir is not None:
        candidates = [bindir / name]
    else:
        candidates = [Path(f"/usr/lib/postgresql/{server_major}/bin/{name}")]
        on_path = shutil.which(name)
        if on_path:
            candidates.append(Path(on_path))
    too_old = []
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            major = _tool_major(candidate)
            if major >= server_major:
                return candidate
            too_old.append(f"{candidate} is version {major}")
    where = f" in {bindir}" if bindir is not None else ""
    problem = "; ".join(too_old) if too_old else f"{name} not found{where}"
    raise BackupError(
        f"{problem}: the server is PostgreSQL {server_major}, which needs {name} "
        f"{server_major} or newer. Install the client tools (Debian/Ubuntu: apt-get install "
        f"postgresql-client-{server_major}) or point --pg-bin (CITYLOOP_PG_BIN) at the "
        "directory that holds them"
    )


def _server_major(conn: Connection) -> int:
    return int(conn.scalar(text("SHOW server_version_num")) or 0) // 10_000


def _connect_error(url: str, exc: OperationalError) -> BackupError:
    shown = make_url(url).render_as_string(hide_password=True)
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    return BackupError(f"cannot connect to {shown}: {reason}")


def _run_tool(
    args: list[str],
    env: dict[str, str],
    report: Progress,
    step: str,
    pattern: re.Pattern[str],
    total: int,
) -> None:
    """Run a pg tool with --verbose, advancing the progress on each table it names."""
    done = 0
    tail: deque[str] = deque(maxlen=12)
    report(step, 0, total)
    try:
        proc = subprocess.Popen(
            args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
    except OSError as exc:
        raise BackupError(f"cannot run {args[0]}: {exc.strerror or exc}") from exc
    assert proc.stderr is not None
    with proc:
        for line in proc.stderr:
            if pattern.search(line):
                done += 1
                report(step, min(done, total), total)
            else:
                tail.append(line.rstrip())
    if proc.returncode != 0:
        details = "\n".join(line for line in tail if line)
        raise BackupError(f"{Path(args[0]).name} failed (exit {proc.returncode}):\n{details}")
    report(step, total, total)


DUMPING = re.compile(r'dumping contents of table "')
RESTORING = re.compile(r'processing data for table "')


def _backup_postgresql(
    url: str, partial: Path, report: Progress, bindir: Path | None
) -> Fingerprint:
    dsn, env = _libpq(url)
    try:
        with (
            _engine(url, isolation_level="REPEATABLE READ") as engine,
            engine.connect() as conn,
        ):
            tool = pg_tool("pg_dump", _server_major(conn), bindir)
            # pg_dump reads the very snapshot the fingerprint is computed in, while this
            # transaction stays open.
            snapshot = conn.scalar(text("SELECT pg_export_snapshot()"))
            report("fingerprint", 0, 1)
            fp = fingerprint(conn)
            report("fingerprint", 1, 1)
            args = [
                str(tool),
                "--format=custom",
                "--verbose",
                f"--snapshot={snapshot}",
                f"--file={partial}",
                f"--dbname={dsn}",
            ]
            _run_tool(args, env, report, "dumping tables", DUMPING, len(fp.tables))
            conn.rollback()
    except OperationalError as exc:
        raise _connect_error(url, exc) from exc
    return fp


def _ensure_database(url: str, report: Progress) -> None:
    """Create the target database when it does not exist yet."""
    try:
        with _engine(url) as engine, engine.connect():
            return
    except OperationalError as exc:
        if "does not exist" not in str(exc.orig):
            raise _connect_error(url, exc) from exc
    parsed = make_url(url)
    name = parsed.database or ""
    maintenance = parsed.set(database="postgres").render_as_string(hide_password=False)
    try:
        with (
            _engine(maintenance, isolation_level="AUTOCOMMIT") as engine,
            engine.connect() as conn,
        ):
            quoted = conn.dialect.identifier_preparer.quote(name)
            conn.execute(text(f"CREATE DATABASE {quoted}"))
    except OperationalError as exc:
        raise BackupError(
            f"database {name} does not exist and could not be created ({exc.orig}); "
            "create it first (createdb)"
        ) from exc
    report(f"created database {name}", 1, 1)


def _pg_rows(conn: Connection) -> tuple[int, int]:
    quote = conn.dialect.identifier_preparer.quote
    counts = [
        int(conn.scalar(text(f"SELECT count(*) FROM {quote(name)}")) or 0)
        for name in inspect(conn).get_table_names()
        if name != "alembic_version"
    ]
    return sum(counts), sum(1 for c in counts if c)


def _archive_tables(tool: Path, source: Path, env: dict[str, str]) -> int:
    """How many tables' data the archive holds (the restore's progress total)."""
    listing = subprocess.run(
        [str(tool), "--list", str(source)], capture_output=True, text=True, env=env, timeout=120
    )
    if listing.returncode != 0:
        raise BackupError(f"{source} cannot be read by {tool}: {listing.stderr.strip()}")
    return sum(1 for line in listing.stdout.splitlines() if " TABLE DATA " in line)


def _restore_postgresql(
    url: str, source: Path, force: bool, report: Progress, bindir: Path | None
) -> Fingerprint:
    _ensure_database(url, report)
    dsn, env = _libpq(url)
    try:
        with _engine(url) as engine:
            with engine.connect() as conn:
                major = _server_major(conn)
                rows, tables = _pg_rows(conn)
            shown = make_url(url).render_as_string(hide_password=True)
            _refuse_unless_forced(shown, rows, tables, force)
            tool = pg_tool("pg_restore", major, bindir)
            args = [
                str(tool),
                # Drop what the archive is about to create, all in one transaction: a
                # failed restore leaves the database as it was.
                "--clean",
                "--if-exists",
                "--single-transaction",
                "--exit-on-error",
                "--no-owner",
                "--no-privileges",
                "--verbose",
                f"--dbname={dsn}",
                str(source),
            ]
            total = _archive_tables(tool, source, env)
            _run_tool(args, env, report, "restoring tables", RESTORING, total)
            report("fingerprint", 0, 1)
            with engine.connect() as conn:
                fp = fingerprint(conn)
            report("fingerprint", 1, 1)
    except OperationalError as exc:
        raise _connect_error(url, exc) from exc
    return fp


def _fsync_dir(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
