"""The MQTT bridge's settings, read from the environment (prefix ``CITYLOOP_MQTT_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MqttSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CITYLOOP_MQTT_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None
    # A fixed client id with a persistent session: the broker keeps QoS 1 readings for the
    # bridge while it restarts. Run one bridge per client id.
    client_id: str = "cityloop-bridge"
    persistent_session: bool = True
    topic_prefix: str = "cityloop/sensors"
    # Several bridges (each with its own client id) in one shared-subscription group split
    # the readings between them; each reading still goes to exactly one bridge.
    share_group: str | None = None
    qos: int = Field(default=1, ge=0, le=2)
    keepalive: int = Field(default=30, ge=5)
    silence_check_seconds: float = Field(default=60.0, gt=0)
    max_payload_bytes: int = Field(default=16 * 1024, ge=256)

    @property
    def subscription(self) -> str:
        topic = f"{self.topic_prefix}/+/readings"
        return f"$share/{self.share_group}/{topic}" if self.share_group else topic
