"""One typed settings object, read from the environment (prefix ``CITYLOOP_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from cityloop.media.service import MediaLimits


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CITYLOOP_", extra="ignore")

    database_url: str = "sqlite:///var/cityloop.db"
    secret_key: str = "cityloop-dev-secret-change-me-in-production-0123456789"
    token_minutes: int = 12 * 60
    timezone: str = "Asia/Shanghai"
    data_dir: Path = Path("var")
    sql_echo: bool = False
    max_photo_mb: float = 10
    max_photo_megapixels: float = 40
    # Bigger request bodies are refused from their Content-Length, before they are read.
    max_body_mb: float = 100
    # Failed logins (org.throttle): per account and per client address in a window, then a
    # lock of the account after so many failures in a row.
    login_window_minutes: float = 15
    login_max_failures: int = 5
    login_max_failures_per_address: int = 30
    login_lockout_failures: int = 10
    login_lockout_minutes: float = 30

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    @property
    def documents_dir(self) -> Path:
        return self.data_dir / "documents"

    @property
    def media_limits(self) -> MediaLimits:
        return MediaLimits(
            max_photo_bytes=int(self.max_photo_mb * 1024 * 1024),
            max_photo_pixels=int(self.max_photo_megapixels * 1_000_000),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
