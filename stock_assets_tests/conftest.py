"""Fixtures over the real local services that `make test` starts (infra/services.sh).

Each test session gets its own database (copied from the TimescaleDB template database) and its
own Kafka topic prefix, so sessions never see each other's data.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from stock_assets.lib import db, kafka_admin, migrations
from stock_assets.lib.settings import DbSettings, KafkaSettings

SESSION_ID = uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def base_db_settings() -> DbSettings:
    return DbSettings.load()


create_database = db.create_database
drop_database = db.drop_database


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
