"""One typed settings object, read from the environment (prefix ``CITYLOOP_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CITYLOOP_", extra="ignore")

    database_url: str = "sqlite:///var/cityloop.db"
    secret_key: str = "cityloop-dev-secret-change-me-in-production-0123456789"
    token_minutes: int = 12 * 60
    timezone: str = "Asia/Shanghai"
    data_dir: Path = Path("var")
    sql_echo: bool = False


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
