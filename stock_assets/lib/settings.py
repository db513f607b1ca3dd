"""Configuration in one place: config/*.json, overridden by environment variables (and .env).

Precedence (highest first): explicit arguments, environment, `.env`, the JSON file, defaults.
Each settings class names its env prefix; every field can be overridden as PREFIX + FIELD_NAME.
Secrets are `SecretStr` and never appear in repr/logs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    JsonConfigSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV_FILE = REPO_ROOT / ".env"  # the same .env docker-compose reads


class ConfigError(RuntimeError):
    """A setting is missing, malformed or points at something unreachable; the message names it."""


def config_dir() -> Path:
    return Path(os.environ.get("STOCK_CONFIG_DIR", REPO_ROOT / "config"))


def state_dir() -> Path:
    """Where infra/services.sh keeps the local services' data, logs and run files."""
    return Path(os.environ.get("STOCK_STATE_DIR", REPO_ROOT / ".local"))


class JsonBackedSettings(BaseSettings):
    """Base class: reads `config/<json_name>.json` below the environment in precedence."""

    json_name: ClassVar[str]
    json_required: ClassVar[bool] = True

    model_config = SettingsConfigDict(env_file=ENV_FILE, extra="ignore", env_file_encoding="utf-8")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = cls.json_path()
        if not path.is_file():
            if cls.json_required:
                raise ConfigError(
                    f"config file {path} not found (set STOCK_CONFIG_DIR to the folder holding "
                    f"{cls.json_name}.json)"
                )
            return (init_settings, env_settings, dotenv_settings)
        try:
            json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid JSON: {exc}") from exc
        return (init_settings, env_settings, dotenv_settings, JsonConfigSettingsSource(cls, path))

    @classmethod
    def json_path(cls) -> Path:
        return config_dir() / f"{cls.json_name}.json"

    @classmethod
    def load(cls, **overrides: Any) -> Any:
        """Load the settings, turning validation errors into a ConfigError naming each setting."""
        try:
            return cls(**overrides)
        except ValidationError as exc:
            prefix = cls.model_config.get("env_prefix", "")
            problems = "; ".join(
                f"{cls.json_name}.{'.'.join(str(p) for p in err['loc'])} "
                f"(env {prefix}{str(err['loc'][0]).upper()}): {err['msg']}"
                if err["loc"]
                else f"{cls.json_name}: {err['msg']}"  # a check across fields
                for err in exc.errors()
            )
            raise ConfigError(f"invalid configuration in {cls.json_path()}: {problems}") from exc


class DbSettings(JsonBackedSettings):
    """The PostgreSQL + TimescaleDB warehouse."""

    json_name: ClassVar[str] = "db_settings"
    model_config = SettingsConfigDict(env_prefix="STOCK_DB_", env_file=ENV_FILE, extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(15432, ge=1, le=65535)
    dbname: str = "stocks"
    user: str = "stocks"
    password: SecretStr
    pool_min_size: int = Field(1, ge=0)
    pool_max_size: int = Field(8, ge=1)
    connect_timeout_s: int = Field(5, ge=1)

    def conninfo(self, dbname: str | None = None) -> str:
        """libpq connection string; contains the password, so never log it (use `describe`)."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(
            host=self.host,
            port=self.port,
            dbname=dbname or self.dbname,
            user=self.user,
            password=self.password.get_secret_value(),
            connect_timeout=self.connect_timeout_s,
            application_name="stock-platform",
        )

    def describe(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"


class KafkaSettings(JsonBackedSettings):
    """The Kafka cluster and the topic namespace."""

    json_name: ClassVar[str] = "kafka_settings"
    model_config = SettingsConfigDict(env_prefix="STOCK_KAFKA_", env_file=ENV_FILE, extra="ignore")

    bootstrap_servers: str = "127.0.0.1:19092"  # comma-separated host:port list
    controller_port: int = Field(19093, ge=1, le=65535)
    topic_prefix: str = ""
    client_id: str = "stock-platform"
    request_timeout_s: float = Field(10.0, gt=0)
    # Of the topics ensure_topics creates: 3 and 2 on the replicated profile (any one broker can
    # die without losing an acks=all record), 1 and 1 on a single broker.
    replication_factor: int = Field(1, ge=1)
    min_insync_replicas: int = Field(1, ge=1)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Below the environment: run/kafka.env, written by infra/services/kafka.sh while a
        replicated cluster (STOCK_KAFKA_PROFILE=replicated) runs (its bootstrap list, RF, ISR)."""
        sources = super().settings_customise_sources(
            settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
        )
        profile_env = state_dir() / "run" / "kafka.env"
        if not profile_env.is_file():
            return sources
        return (
            *sources[:2],
            DotEnvSettingsSource(settings_cls, env_file=profile_env),
            *sources[2:],
        )

    @model_validator(mode="after")
    def _isr_fits(self) -> KafkaSettings:
        if self.min_insync_replicas > self.replication_factor:
            raise ValueError(
                f"min_insync_replicas {self.min_insync_replicas} > replication_factor "
                f"{self.replication_factor} (env STOCK_KAFKA_MIN_INSYNC_REPLICAS, "
                "STOCK_KAFKA_REPLICATION_FACTOR): no acks=all write could ever succeed"
            )
        return self


class ApiKeys(JsonBackedSettings):
    """Provider API keys: config/api_keys.json (git-ignored; see api_keys.example.json)."""

    json_name: ClassVar[str] = "api_keys"
    json_required: ClassVar[bool] = False
    model_config = SettingsConfigDict(
        env_prefix="STOCK_API_KEY_", env_file=ENV_FILE, extra="ignore"
    )

    alpha_vantage: SecretStr | None = None
    fmp: SecretStr | None = None
    polygon: SecretStr | None = None
    twelve_data: SecretStr | None = None


class SparkSettings(JsonBackedSettings):
    """The Spark standalone cluster (also read by infra/services/spark.sh) and its extra jars."""

    json_name: ClassVar[str] = "spark_settings"
    model_config = SettingsConfigDict(env_prefix="STOCK_SPARK_", env_file=ENV_FILE, extra="ignore")

    master_url: str = "spark://127.0.0.1:17077"
    master_port: int = Field(17077, ge=1, le=65535)
    master_ui_port: int = Field(18080, ge=1, le=65535)
    worker_ui_port: int = Field(18081, ge=1, le=65535)
    worker_cores: int = Field(2, ge=1)
    worker_memory: str = "3g"
    # Where executors reach a driver: loopback locally; the container's name under compose.
    driver_host: str = "127.0.0.1"
    driver_bind_address: str = "127.0.0.1"
    kafka_connector: str = "org.apache.spark:spark-sql-kafka-0-10_2.13:4.2.0"
    jdbc_driver: str = "org.postgresql:postgresql:42.7.14"


class SearchSettings(JsonBackedSettings):
    """The Elasticsearch-API search engine (services.sh reads `port` to start the local one)."""

    json_name: ClassVar[str] = "search_settings"
    model_config = SettingsConfigDict(env_prefix="STOCK_SEARCH_", env_file=ENV_FILE, extra="ignore")

    url: str = "http://127.0.0.1:19200"
    port: int = Field(19200, ge=1, le=65535)  # where services.sh binds the local engine
    index_prefix: str = Field("stocks", pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    request_timeout_s: float = Field(10.0, gt=0)
    username: str | None = None
    password: SecretStr | None = None
