"""Fixtures over the real local services that `make test` starts (infra/services.sh).

Each test session gets its own database (created from template1, which has TimescaleDB) and its
own Kafka topic prefix, so sessions never see each other's data.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from stock_assets.lib import db, kafka_admin, migrations
from stock_assets.lib.settings import DbSettings, KafkaSettings

SESSION_ID = uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def base_db_settings() -> DbSettings:
    return DbSettings.load()


def create_database(base: DbSettings, name: str) -> DbSettings:
    statement = sql.SQL("CREATE DATABASE {} TEMPLATE template1").format(sql.Identifier(name))
    with db.connect(base, autocommit=True) as conn:
        for _ in range(60):
            try:
                conn.execute(statement)
                break
            except psycopg.errors.ObjectInUse:
                # Another session is copying template1 at this instant (PostgreSQL allows one).
                time.sleep(0.2 + random.random() * 0.3)
        else:
            raise RuntimeError(f"template1 stayed busy; could not create {name}")
    return DbSettings.load(dbname=name)


def drop_database(base: DbSettings, name: str) -> None:
    with db.connect(base, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def db_settings(base_db_settings: DbSettings) -> Iterator[DbSettings]:
    """A migrated, empty warehouse database private to this test session."""
    name = f"stocks_test_{SESSION_ID}"
    settings = create_database(base_db_settings, name)
    with db.connect(settings) as conn:
        migrations.apply(conn)
    yield settings
    drop_database(base_db_settings, name)


@pytest.fixture
def empty_db(base_db_settings: DbSettings) -> Iterator[DbSettings]:
    """A fresh database with no migrations applied (dropped after the test)."""
    name = f"stocks_test_{SESSION_ID}_{uuid.uuid4().hex[:6]}"
    yield create_database(base_db_settings, name)
    drop_database(base_db_settings, name)


@pytest.fixture
def conn(db_settings: DbSettings) -> Iterator[psycopg.Connection]:
    with db.connect(db_settings) as connection:
        yield connection


@pytest.fixture(scope="session")
def kafka_settings() -> KafkaSettings:
    """Kafka settings with a topic prefix private to this session; its topics are created."""
    settings = KafkaSettings.load(topic_prefix=f"test-{SESSION_ID}.")
    kafka_admin.ensure_topics(settings)
    return settings
