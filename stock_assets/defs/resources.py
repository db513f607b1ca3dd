"""Resources shared by every domain: the TimescaleDB warehouse and the Kafka cluster."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout
from pydantic import PrivateAttr

from stock_assets.defs.runs import settings_rejected
from stock_assets.lib import kafka_admin
from stock_assets.lib.db import connect, connection_error
from stock_assets.lib.errors import WarehouseUnavailable
from stock_assets.lib.settings import ConfigError, DbSettings, KafkaSettings
from stock_assets.lib.topics import TopicSpec, topic_name


class WarehouseResource(dg.ConfigurableResource):
    """PostgreSQL + TimescaleDB through a psycopg 3 connection pool (bulk COPY: lib/frames.py)."""

    # Unset fields fall back to config/db_settings.json and STOCK_DB_* (read at run time).
    host: str | None = None
    port: int | None = None
    dbname: str | None = None
    user: str | None = None
    password: str | None = None
    pool_max_size: int = 4

    _pool: ConnectionPool | None = PrivateAttr(default=None)

    def settings(self) -> DbSettings:
        overrides = {
            k: v
            for k, v in {
                "host": self.host,
                "port": self.port,
                "dbname": self.dbname,
                "user": self.user,
                "password": self.password,
            }.items()
            if v is not None
        }
        return DbSettings.load(**overrides)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._pool = self._new_pool()

    def _new_pool(self) -> ConnectionPool:
        return ConnectionPool(
            self.settings().conninfo(),
            min_size=0,
            max_size=self.pool_max_size,
            open=False,
            name="warehouse",
        )

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A pooled connection (a direct one outside a run); commits on success.

        A server that is down, or goes away mid-transaction, raises WarehouseUnavailable (the run
        retries); one that rejects the settings raises a ConfigError that is also a
        `dg.Failure(allow_retries=False)` (`runs.SettingsRejected`: the op RetryPolicy skips it).
        """
        try:
            settings = self.settings()
        except ConfigError as exc:
            raise settings_rejected(exc) from exc
        if self._pool is None:
            try:
                with connect(settings) as conn:
                    yield conn
            except psycopg.OperationalError as exc:
                raise _not_retried(connection_error(settings, exc)) from exc
            return
        if self._pool.closed:
            self._pool.open(wait=False)
        try:
            with self._pool.connection(timeout=settings.connect_timeout_s) as conn:
                yield conn
        except PoolTimeout as exc:
            # the pool does not say why it has no connection: one direct attempt names the cause
            self._discard_pool()
            raise _not_retried(self._diagnose(settings)) from exc
        except psycopg.OperationalError as exc:
            self._discard_pool()
            raise _not_retried(connection_error(settings, exc)) from exc

    def _discard_pool(self) -> None:
        """Drop a pool after an outage: its background reconnects back off on their own clock
        (1, 2, 4 ... s); the step's RetryPolicy decides when to try again, with a fresh pool."""
        if self._pool is not None:
            self._pool.close(timeout=0)
            self._pool = self._new_pool()

    @staticmethod
    def _diagnose(settings: DbSettings) -> Exception:
        try:
            connect(settings).close()
        except (ConfigError, WarehouseUnavailable) as exc:
            return exc
        return WarehouseUnavailable(
            f"warehouse at {settings.describe()}: no pooled connection within "
            f"{settings.connect_timeout_s}s (the server answers again now)"
        )


def _not_retried(exc: Exception) -> Exception:
    return settings_rejected(exc) if isinstance(exc, ConfigError) else exc


class KafkaResource(dg.ConfigurableResource):
    """The Kafka cluster (confluent-kafka); every broker call is bounded by `request_timeout_s`."""

    # Unset fields fall back to config/kafka_settings.json and STOCK_KAFKA_*.
    bootstrap_servers: str | None = None
    topic_prefix: str | None = None
    client_id: str = "stock-platform-dagster"

    def settings(self) -> KafkaSettings:
        overrides = {
            k: v
            for k, v in {
                "bootstrap_servers": self.bootstrap_servers,
                "topic_prefix": self.topic_prefix,
            }.items()
            if v is not None
        }
        return KafkaSettings.load(client_id=self.client_id, **overrides)

    def topic(self, spec: TopicSpec) -> str:
        return topic_name(spec, self.settings().topic_prefix)

    def consumer_config(self, group_id: str, **extra: Any) -> dict[str, Any]:
        return kafka_admin.client_config(
            self.settings(),
            **{
                "group.id": group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                **extra,
            },
        )
