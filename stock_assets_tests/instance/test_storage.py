"""PooledPostgresStorage against the real PostgreSQL: the project's dagster.yaml gives the daemon
and (through the instance ref) every run worker pooled connections; operations reuse them where
dagster-postgres's own storage connects each time; a server-side kill costs one reconnect."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest
import sqlalchemy as sa
import yaml
from dagster_postgres import DagsterPostgresStorage

from stock_assets.instance.storage import POOL_SIZE, PooledPostgresStorage
from stock_assets.lib.settings import DbSettings
from stock_assets_tests.conftest import private_database

REPO = Path(__file__).resolve().parents[2]
OPERATIONS = 40


@pytest.fixture(scope="module")
def dagster_db(base_db_settings: DbSettings) -> Iterator[DbSettings]:
    with private_database(base_db_settings, migrated=False) as settings:
        yield settings


def storage_config(settings: DbSettings) -> dict[str, Any]:
    """The project's dagster.yaml storage block with this database's values for the env vars."""
    config = yaml.safe_load((REPO / "infra/dagster/dagster.yaml").read_text())["storage"]
    assert config["custom"]["class"] == PooledPostgresStorage.__name__
    values = {
        "hostname": settings.host,
        "port": settings.port,
        "username": settings.user,
        "password": settings.password.get_secret_value(),
        "db_name": settings.dbname,
    }
    postgres_db = config["custom"]["config"]["postgres_db"]
    config["custom"]["config"]["postgres_db"] = {
        key: values.get(key, value) for key, value in postgres_db.items()
    }
    return config


@pytest.fixture
def instance(dagster_db: DbSettings, tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test(
        overrides={"storage": storage_config(dagster_db)}, temp_dir=str(tmp_path)
    ) as instance:
        yield instance


def count_connects(engine: sa.Engine) -> list[int]:
    connects = [0]

    def connected(*_args: object) -> None:
        connects[0] += 1

    sa.event.listen(engine, "connect", connected)
    return connects


def operate(instance: dg.DagsterInstance, run: dg.DagsterRun) -> None:
    """What a run worker and the daemon do all the time: write an event, read runs."""
    for i in range(OPERATIONS):
        instance.report_engine_event(f"event {i}", run)
        instance.get_run_records(dg.RunsFilter(run_ids=[run.run_id]), limit=1)


def engines(instance: dg.DagsterInstance) -> list[sa.Engine]:
    storages = (instance.run_storage, instance.event_log_storage, instance.schedule_storage)
    return [storage._engine for storage in storages]  # type: ignore[attr-defined]


def test_the_daemon_and_the_run_workers_reuse_connections(instance, dagster_db):
    run = instance.create_run_for_job(dg.GraphDefinition("noop").to_job(), run_id=None)
    # a run worker's instance is rebuilt from the ref: the same pooled storage
    with dg.DagsterInstance.from_ref(instance.get_ref()) as worker:
        for each in (instance, worker):
            assert all(isinstance(e.pool, sa.pool.QueuePool) for e in engines(each))
            run_engine, event_engine, _ = engines(each)
            counters = [count_connects(run_engine), count_connects(event_engine)]
            operate(each, run)
            # 2 x OPERATIONS operations on at most POOL_SIZE connections per storage
            assert all(c[0] <= POOL_SIZE for c in counters), counters

    # the baseline: dagster-postgres's own storage connects for every operation
    url = instance.run_storage.postgres_url  # type: ignore[attr-defined]
    plain = DagsterPostgresStorage(url)
    connects = count_connects(plain.event_log_storage._engine)  # type: ignore[attr-defined]
    for i in range(OPERATIONS):
        plain.event_log_storage.store_event(
            dg.EventLogEntry(
                error_info=None,
                level="DEBUG",
                user_message=f"plain {i}",
                run_id=run.run_id,
                timestamp=0.0,
            )
        )
    assert connects[0] >= OPERATIONS
    assert len(instance.all_logs(run.run_id)) >= 3 * OPERATIONS  # every event was written


def test_a_killed_server_connection_costs_a_reconnect_not_an_error(instance, dagster_db):
    run = instance.create_run_for_job(dg.GraphDefinition("noop").to_job(), run_id=None)
    operate(instance, run)
    with psycopg.connect(dagster_db.conninfo(), autocommit=True) as admin:
        killed = admin.execute(
            # client backends of this user only: it cannot terminate a background worker in
            # the database (autovacuum, a superuser process), which failed the test now and then
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend' AND usename = current_user",
            (dagster_db.dbname,),
        ).fetchone()
    assert killed is not None and killed[0] >= 1  # the pooled connections were open
    operate(instance, run)  # pre-ping finds the dead connections and reconnects
    assert len(instance.all_logs(run.run_id)) >= 2 * OPERATIONS
