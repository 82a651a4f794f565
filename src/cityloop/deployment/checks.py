"""The doctor's checks. Each looks at one setting and says what is unsafe about it; none
changes anything. `cityloop check` prints them and exits non-zero when any is unsafe."""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url

from cityloop.config import Settings
from cityloop.org.keyring import InsecureSecret

# A nightly backup that is a day and a bit old still counts as last night's.
BACKUP_MAX_AGE_HOURS = 26
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class Finding:
    setting: str
    unsafe: bool
    message: str


def check_deployment(settings: Settings, *, servers: int, workers: int) -> list[Finding]:
    """`servers`: API processes in all (machines × `serve --workers`); `workers`: `cityloop
    worker` processes."""
    return [
        _secret(settings),
        _database(settings, processes=servers + workers),
        _debug(settings),
        _backups(settings),
        _media(settings, servers=servers),
        _tls(settings),
    ]


def _secret(settings: Settings) -> Finding:
    try:
        keyring = settings.keyring()
    except InsecureSecret as exc:
        return Finding("CITYLOOP_SECRET_KEY", True, str(exc))
    return Finding("CITYLOOP_SECRET_KEY", False, f"{len(keyring.keys)} key(s); the first signs")


def _database(settings: Settings, *, processes: int) -> Finding:
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and processes > 1:
        return Finding(
            "CITYLOOP_DATABASE_URL",
            True,
            f"SQLite under {processes} processes: writers queue on one file lock and a second "
            "machine cannot share it; use PostgreSQL (postgresql+psycopg://…)",
        )
    return Finding("CITYLOOP_DATABASE_URL", False, f"{url.get_backend_name()}")


def _debug(settings: Settings) -> Finding:
    if settings.sql_echo:
        return Finding(
            "CITYLOOP_SQL_ECHO",
            True,
            "SQL echo is on: every statement and its parameters (reporters' phones included) "
            "go to the log",
        )
    return Finding("CITYLOOP_SQL_ECHO", False, "off")


def _backups(settings: Settings) -> Finding:
    folder = settings.backup_dir
    newest = (
        max((p.stat().st_mtime for p in folder.glob("*") if p.is_file()), default=None)
        if folder.is_dir()
        else None
    )
    if newest is None:
        return Finding(
            "CITYLOOP_BACKUP_DIR",
            True,
            f"no backup in {folder}: schedule `cityloop backup --out {folder}/…` every night",
        )
    hours = (time.time() - newest) / 3600
    if hours > BACKUP_MAX_AGE_HOURS:
        return Finding(
            "CITYLOOP_BACKUP_DIR", True, f"the newest backup in {folder} is {hours:.0f} hours old"
        )
    return Finding("CITYLOOP_BACKUP_DIR", False, f"newest backup {hours:.1f} hours old")


def _media(settings: Settings, *, servers: int) -> Finding:
    if settings.storage_url.startswith("s3://"):
        return Finding(
            "CITYLOOP_STORAGE_URL", False, "media and documents in shared object storage"
        )
    if servers > 1:
        return Finding(
            "CITYLOOP_DATA_DIR",
            True,
            f"photos and voice notes are kept on local disk ({settings.media_dir}) while "
            f"{servers} API processes serve: each sees only what it received itself unless "
            "the directory is shared storage",
        )
    return Finding("CITYLOOP_DATA_DIR", False, f"media in {settings.media_dir}")


def _tls(settings: Settings) -> Finding:
    url = settings.public_url
    if not url:
        return Finding(
            "CITYLOOP_PUBLIC_URL",
            True,
            "not set: say the address users reach (https://…), behind a TLS-terminating proxy",
        )
    parts = urlsplit(url)
    if parts.scheme != "https" and parts.hostname not in _LOOPBACK:
        return Finding(
            "CITYLOOP_PUBLIC_URL",
            True,
            f"{url} is plain HTTP: passwords and tokens cross the network readable; put TLS in "
            "front (see docs/deployment.md)",
        )
    return Finding("CITYLOOP_PUBLIC_URL", False, url)
