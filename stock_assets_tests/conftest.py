"""Fixtures over the real local services that `make test` starts (infra/services.sh).

Each test session gets its own database (from template0; the migrations add TimescaleDB) and
its own Kafka topic prefix, so sessions never see each other's data.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from confluent_kafka import KafkaException

from stock_assets.lib import db, kafka_admin, migrations
from stock_assets.lib.settings import DbSettings, KafkaSettings

SESSION_ID = uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def base_db_settings() -> DbSettings:
    return DbSettings.load()


@contextmanager
def private_database(base: DbSettings, *, migrated: bool = True) -> Iterator[DbSettings]:
    """A new database (migrated unless told otherwise), dropped afterwards."""
    name = f"stocks_test_{SESSION_ID}_{uuid.uuid4().hex[:6]}"
    settings = db.create_database(base, name)
    try:
        if migrated:
            with db.connect(settings) as conn:
                migrations.apply(conn)
        yield settings
    finally:
        db.drop_database(base, name)


def private_kafka() -> KafkaSettings:
    """Kafka settings with a fresh topic prefix; its topics are created."""
    settings = KafkaSettings.load(topic_prefix=f"test-{SESSION_ID}-{uuid.uuid4().hex[:6]}.")
    kafka_admin.ensure_topics(settings)
    return settings


@pytest.fixture(scope="session")
def db_settings(base_db_settings: DbSettings) -> Iterator[DbSettings]:
    """A migrated, empty warehouse database private to this test session."""
    with private_database(base_db_settings) as settings:
        yield settings


@pytest.fixture
def empty_db(base_db_settings: DbSettings) -> Iterator[DbSettings]:
    """A fresh database with no migrations applied (dropped after the test)."""
    with private_database(base_db_settings, migrated=False) as settings:
        yield settings


@pytest.fixture
def conn(db_settings: DbSettings) -> Iterator[psycopg.Connection]:
    with db.connect(db_settings) as connection:
        yield connection


@pytest.fixture(scope="session", autouse=True)
def _delete_test_topics() -> Iterator[None]:
    """After the session, delete every topic it created (all carry the session's prefix)."""
    yield
    settings = KafkaSettings.load()
    client = kafka_admin.admin(settings)
    try:
        names = client.list_topics(timeout=settings.request_timeout_s).topics
    except KafkaException:  # the broker is gone: nothing to clean
        return
    mine = [name for name in names if name.startswith(f"test-{SESSION_ID}")]
    if mine:
        for future in client.delete_topics(mine, operation_timeout=30).values():
            future.result(timeout=30)


@pytest.fixture(scope="session")
def kafka_settings() -> KafkaSettings:
    """Kafka settings with a topic prefix private to this session; its topics are created."""
    settings = KafkaSettings.load(topic_prefix=f"test-{SESSION_ID}.")
    kafka_admin.ensure_topics(settings)
    return settings
