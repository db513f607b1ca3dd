"""PooledPostgresStorage: Dagster's PostgreSQL storage with a connection pool per process.

dagster-postgres gives the run, event-log and schedule storages a SQLAlchemy `NullPool` ("to
prevent accumulating connections per DagsterInstance", dagster_postgres/run_storage.py): every
operation opens a new PostgreSQL connection, i.e. a backend process forked by the server and a
scram-sha-256 authentication, then closes it. Only the webserver pools (`optimize_for_webserver`).
The daemon (sensor ticks, the run queue, heartbeats) and every run worker (one write per event)
paid it on each call: 26-33 ms per operation at load 12 on 2 cores vs 0.3-0.7 ms on a pooled
connection (bench/runs.py). This storage is the same classes with a small pool per process
(`POOL_SIZE` kept open, `MAX_OVERFLOW` more on demand; pre-ping so a restarted server costs one
reconnect, not an error). A run worker holds at most a few connections while it runs; the
dagster.yaml `storage: custom:` entry makes the daemon, the webserver and every run worker
(through the instance ref) use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import (
    create_pg_engine,
    get_token_provider_from_config,
    pg_url_from_config,
)

POOL_SIZE = 2
MAX_OVERFLOW = 8
POOL_RECYCLE_S = 3600


class PooledPostgresStorage(DagsterPostgresStorage):
    """DagsterPostgresStorage whose three storages keep pooled connections."""

    def __init__(
        self,
        postgres_url: str,
        should_autocreate_tables: bool = True,
        inst_data: ConfigurableClassData | None = None,
        token_provider: Any = None,
    ) -> None:
        super().__init__(postgres_url, should_autocreate_tables, inst_data, token_provider)
        for storage in (self._run_storage, self._event_log_storage, self._schedule_storage):
            old = storage._engine
            storage._engine = create_pg_engine(
                postgres_url,
                token_provider,
                isolation_level="AUTOCOMMIT",
                pool_size=POOL_SIZE,
                max_overflow=MAX_OVERFLOW,
                pool_recycle=POOL_RECYCLE_S,
                pool_pre_ping=True,
            )
            old.dispose()

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> PooledPostgresStorage:
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )
