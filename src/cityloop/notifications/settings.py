"""The channels' settings, read from the environment (prefix ``CITYLOOP_NOTIFY_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class NotifySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CITYLOOP_NOTIFY_", extra="ignore")

    # Links in messages to citizens (the H5 tracking page) start with this.
    public_base_url: str = "http://127.0.0.1:8000"
    # SMS: "log" writes each message as a JSON line to sms_log (default: sms.log in
    # CITYLOOP_DATA_DIR; the demo city's administrator reads it at /admin/notifications);
    # "http" posts to the gateway.
    sms_backend: str = Field(default="log", pattern="^(log|http|off)$")
    sms_log: Path | None = None

    @property
    def sms_log_path(self) -> Path:
        if self.sms_log is not None:
            return self.sms_log
        from cityloop.config import get_settings

        return get_settings().data_dir / "sms.log"

    sms_gateway_url: str | None = None
    sms_access_key: str = ""
    sms_access_secret: str = ""
    sms_sign_name: str = "数字城管"
    # E-mail over SMTP; no host: e-mail is not sent (the message is delivered as skipped).
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_from: str = "cityloop@localhost"
    # WeChat Official Account (公众号) template messages.
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_appid: str | None = None
    wechat_secret: str | None = None
    timeout_seconds: float = Field(default=10.0, gt=0)
    # The SSE stream: how often a process reads the inbox table for new lines.
    stream_poll_seconds: float = Field(default=0.25, gt=0)
    stream_keepalive_seconds: float = Field(default=15.0, gt=0)
