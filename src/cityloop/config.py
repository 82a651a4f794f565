"""One typed settings object, read from the environment (prefix ``CITYLOOP_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from cityloop.media.service import MediaLimits
from cityloop.org.keyring import Keyring, load_keyring


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CITYLOOP_", extra="ignore")

    database_url: str = "sqlite:///var/cityloop.db"
    # No default: org.keyring refuses to start without a strong key (a list rotates keys).
    secret_key: str = ""
    secret_key_file: Path | None = None
    token_minutes: int = 12 * 60
    timezone: str = "Asia/Shanghai"
    data_dir: Path = Path("var")
    sql_echo: bool = False
    # Where `cityloop backup` writes its nightly copies (checked by `cityloop check`).
    backup_dir: Path = Path("var/backups")
    # The address users reach, e.g. https://cgj.example.gov.cn (checked by `cityloop check`).
    public_url: str = ""
    # Audit anchors (anchoring/): the log and the Ed25519 signing key, both outside the
    # database — in production on another machine or a write-once bucket mount; the public
    # keys `verify-audit --anchors` trusts (hex, comma-separated) besides the signing key's own.
    anchor_dir: Path | None = None
    anchor_key_file: Path | None = None
    anchor_public_keys: str = ""
    anchor_every_hours: float = 24
    # Where photos, voice notes and documents are kept (storage/): empty for the data
    # directory, or s3://bucket/prefix?endpoint=https://…&region=… for shared object storage.
    storage_url: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    max_photo_mb: float = 10
    max_photo_megapixels: float = 40
    # Memory one photo's decode may take, and decodes at once per process (media.MediaLimits).
    photo_decode_budget_mb: float = 64
    photo_decodes_at_once: int = 2
    # Anonymous (citizens') uploads per client address in an hour, counted in the database
    # for every process (org.throttle.spend): reports, and the megapixels of their photos.
    anonymous_reports_per_hour: int = 60
    anonymous_megapixels_per_hour: float = 600
    # Bigger request bodies are refused from their Content-Length, before they are read.
    max_body_mb: float = 100
    # Failed logins (org.throttle): per account and per client address in a window, then a
    # lock of the account after so many failures in a row.
    login_window_minutes: float = 15
    login_max_failures: int = 5
    login_max_failures_per_address: int = 30
    login_lockout_failures: int = 10
    login_lockout_minutes: float = 30
    # Reverse proxies whose X-Forwarded-For names the client (comma-separated addresses or
    # networks, e.g. "10.0.0.2,192.168.0.0/24"). Empty: the client is whoever connected, and a
    # forwarded header is ignored: otherwise any client would pick the address that the
    # per-address limits count.
    trusted_proxies: str = ""

    def keyring(self) -> Keyring:
        return load_keyring(self.secret_key, self.secret_key_file)

    @property
    def anchor_log_dir(self) -> Path:
        return self.anchor_dir or self.data_dir / "anchors"

    @property
    def anchor_signing_key(self) -> Path:
        return self.anchor_key_file or self.data_dir / "anchor.key"

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    @property
    def media_limits(self) -> MediaLimits:
        return MediaLimits(
            max_photo_bytes=int(self.max_photo_mb * 1024 * 1024),
            max_photo_pixels=int(self.max_photo_megapixels * 1_000_000),
            decode_budget_bytes=int(self.photo_decode_budget_mb * 1024 * 1024),
            decodes_at_once=self.photo_decodes_at_once,
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
