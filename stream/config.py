"""Configuration from `LIQSTREAM_*` environment variables (pydantic-settings).

Every setting has a default that works on one machine; invalid values fail at start with a
`ConfigError` naming the variable. Secrets are `SecretStr`, so they never reach logs or reprs.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stream.errors import ConfigError

ENV_PREFIX = "LIQSTREAM_"

_DURATION_UNITS_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_duration_ms(text: str) -> int:
    """`"90s"` -> 90000, `"5m"` -> 300000, `"24h"`, `"2d"`, `"250ms"`; raises ValueError."""
    text = text.strip()
    for unit in sorted(_DURATION_UNITS_MS, key=len, reverse=True):
        number = text.removesuffix(unit)
        if number != text and number.isdigit():
            value = int(number) * _DURATION_UNITS_MS[unit]
            if value <= 0:
                break
            return value
    raise ValueError(f"{text!r} is not a duration like 90s, 5m, 1h or 2d")


def _check_cafile(path: Path, protocol: str) -> None:
    """LIQSTREAM_KAFKA_SSL_CAFILE must be PEM certificates, and used: TLS protocols only."""
    if not path.is_file():
        raise ValueError(f"LIQSTREAM_KAFKA_SSL_CAFILE={path} is not a file")
    if protocol not in ("SSL", "SASL_SSL"):
        raise ValueError(
            f"LIQSTREAM_KAFKA_SSL_CAFILE is set, but LIQSTREAM_KAFKA_SECURITY_PROTOCOL={protocol}"
            " does not use TLS: use SSL or SASL_SSL"
        )
    try:
        ssl.create_default_context(cafile=str(path))
    except ssl.SSLError as exc:
        raise ValueError(
            f"LIQSTREAM_KAFKA_SSL_CAFILE={path} holds no readable PEM certificate ({exc.reason})"
        ) from None


class Settings(BaseSettings):
    """Everything configurable; see the table in README.md (kept in sync by a test)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # Kafka connection
    kafka_bootstrap: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated host:port"
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism for SASL_* protocols"
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user name")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password (never logged)")
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle for TLS (SSL, SASL_SSL)")

    # Topics
    topic_prefix: str = Field("", description="prefix for every topic name, for shared clusters")
    topic_partitions: int = Field(3, ge=1, description="partitions of newly created topics")
    topic_replication: int = Field(1, ge=1, description="replication factor of new topics")
    raw_retention: str = Field("3d", description="retention of liquidations.raw")
    history_retention: str = Field(
        "30d", description="retention of liquidations.history (and of the hourly series)"
    )
    history_fine_horizon: str = Field(
        "2d", description="how far back /api/history keeps buckets finer than 1h"
    )

    # Aggregation
    resolution: str = Field("60s", description="bucket size of the rolling totals")
    windows: str = Field("5m,15m,1h,4h,12h,24h", description="rolling windows, comma-separated")
    totals_min_interval: str = Field(
        "1s", description="at most one totals record per key per this interval"
    )
    worker_id: str = Field(
        "liqstream", description="Faust app id: consumer group and changelog topic names"
    )
    worker_instance_id: str = Field(
        "auto",
        description="static consumer-group member id of the worker (auto: one made at first "
        "start and kept in the data dir; none: dynamic membership)",
    )
    table_store: Literal["rocksdb", "memory"] = Field(
        "rocksdb", description="worker table store (memory: rebuilt from changelogs at start)"
    )
    rules_file: Path | None = Field(None, description="threshold rules YAML file")
    webhook_urls: SecretStr | None = Field(
        None, description="comma-separated URLs that get each breach record POSTed (secret)"
    )
    webhook_timeout: str = Field("5s", description="timeout of one webhook request")
    webhook_attempts: int = Field(5, ge=1, description="attempts per breach record and URL")
    data_dir: Path = Field(Path("data"), description="local state (RocksDB, instrument cache)")

    # Serving
    web_host: str = Field("127.0.0.1", description="HTTP API / dashboard bind address")
    web_port: int = Field(6066, ge=0, le=65535, description="HTTP API / dashboard port")
    worker_api: bool = Field(
        True, description="the worker serves the API and dashboard too (false: health, metrics)"
    )
    api_host: str = Field("127.0.0.1", description="`liqstream api` bind address")
    api_port: int = Field(6067, ge=0, le=65535, description="`liqstream api` port")
    stream_interval: str = Field(
        "250ms", description="/api/stream sends the changes of this interval at once"
    )
    stream_max_lag: str = Field(
        "10s", description="an /api/stream client this far behind is ended (it reloads)"
    )
    metrics_host: str = Field("127.0.0.1", description="collector Prometheus metrics bind address")
    metrics_port: int = Field(
        9108, ge=0, le=65535, description="collector Prometheus metrics port (0 = off)"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="log level")

    # Collectors
    instruments_refresh_s: float = Field(
        3600.0, ge=1.0, description="seconds between refreshes of the venues' instrument listings"
    )
    status_interval_s: float = Field(
        30.0, ge=1.0, description="seconds between a feed's heartbeat records on collectors.status"
    )

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_hosts(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"{server!r} is not host:port")
        return value

    @field_validator(
        "raw_retention",
        "history_retention",
        "history_fine_horizon",
        "resolution",
        "totals_min_interval",
        "webhook_timeout",
        "stream_interval",
        "stream_max_lag",
    )
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration_ms(value)
        return value

    @field_validator("windows")
    @classmethod
    def _windows(cls, value: str) -> str:
        names = [name.strip() for name in value.split(",") if name.strip()]
        if not names:
            raise ValueError("at least one window is needed")
        for name in names:
            parse_duration_ms(name)
        return ",".join(names)

    @field_validator("webhook_urls")
    @classmethod
    def _webhook_urls(cls, value: SecretStr | None) -> SecretStr | None:
        for url in (value.get_secret_value() if value else "").split(","):
            if url.strip() and urlsplit(url.strip()).scheme not in ("http", "https"):
                raise ValueError("each webhook URL must start with http:// or https://")
        return value

    @field_validator("topic_prefix")
    @classmethod
    def _topic_prefix(cls, value: str) -> str:
        allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        if not set(value) <= allowed:
            raise ValueError("only letters, digits, '.', '_' and '-' are allowed in topic names")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        resolution_ms = self.resolution_ms
        for name, window_ms in self.windows_ms.items():
            if window_ms % resolution_ms:
                raise ValueError(
                    f"window {name} is not a multiple of LIQSTREAM_RESOLUTION={self.resolution}"
                )
        if self.history_fine_horizon_ms < max(self.windows_ms.values()):
            # a bucket can change until it leaves the longest window: fold it only after
            raise ValueError("LIQSTREAM_HISTORY_FINE_HORIZON must be at least the longest window")
        if self.kafka_security_protocol.startswith("SASL_"):
            if not (self.kafka_sasl_mechanism and self.kafka_sasl_username):
                protocol = self.kafka_security_protocol
                raise ValueError(
                    "LIQSTREAM_KAFKA_SASL_MECHANISM and LIQSTREAM_KAFKA_SASL_USERNAME are "
                    f"required with LIQSTREAM_KAFKA_SECURITY_PROTOCOL={protocol}"
                )
            if self.kafka_sasl_password is None:
                raise ValueError("LIQSTREAM_KAFKA_SASL_PASSWORD is required with SASL")
        else:
            # Credentials that would be ignored: connecting without them fails far from here.
            given = [
                env_name(name)
                for name in ("kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password")
                if getattr(self, name) is not None
            ]
            if given:
                raise ValueError(
                    f"{', '.join(given)} set, but LIQSTREAM_KAFKA_SECURITY_PROTOCOL="
                    f"{self.kafka_security_protocol} does not log in: use SASL_SSL or "
                    "SASL_PLAINTEXT"
                )
        if self.kafka_ssl_cafile is not None:
            _check_cafile(self.kafka_ssl_cafile, self.kafka_security_protocol)
        return self

    @property
    def resolution_ms(self) -> int:
        return parse_duration_ms(self.resolution)

    @property
    def windows_ms(self) -> dict[str, int]:
        return {name: parse_duration_ms(name) for name in self.windows.split(",")}

    @property
    def raw_retention_ms(self) -> int:
        return parse_duration_ms(self.raw_retention)

    @property
    def webhook_timeout_ms(self) -> int:
        return parse_duration_ms(self.webhook_timeout)

    @property
    def webhook_url_list(self) -> list[str]:
        raw = self.webhook_urls.get_secret_value() if self.webhook_urls else ""
        return [url.strip() for url in raw.split(",") if url.strip()]

    @property
    def stream_interval_ms(self) -> int:
        return parse_duration_ms(self.stream_interval)

    @property
    def stream_max_lag_ms(self) -> int:
        return parse_duration_ms(self.stream_max_lag)

    @property
    def totals_min_interval_ms(self) -> int:
        return parse_duration_ms(self.totals_min_interval)

    @property
    def history_retention_ms(self) -> int:
        return parse_duration_ms(self.history_retention)

    @property
    def history_fine_horizon_ms(self) -> int:
        return parse_duration_ms(self.history_fine_horizon)


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def load_settings(**overrides: object) -> Settings:
    """Read the environment; raise ConfigError naming each bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            location = [str(part) for part in error["loc"] if isinstance(part, str)]
            variable = env_name(location[0]) if location else "configuration"
            value = error.get("input")
            secret = location and ("password" in location[0] or "webhook_urls" in location[0])
            shown = "" if secret else f" (got {value!r})"
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{variable}: {message}{shown}" if location else message)
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
