"""Fixtures for asset tests: a private migrated database and private Kafka topics per module.

raw_ticks carries no topic column, so two modules loading the same replayed data into one
database would collide on (kafka_partition, kafka_offset, ts); each module gets its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import dagster as dg
import pytest
from confluent_kafka import Producer

from stock_assets.defs.resources import KafkaResource, WarehouseResource
from stock_assets.lib import kafka_admin, marketdata
from stock_assets.lib.settings import DbSettings, KafkaSettings
from stock_assets.lib.topics import TICKS, topic_name
from stock_assets_tests.conftest import private_database, private_kafka


@pytest.fixture(scope="module")
def module_db(base_db_settings: DbSettings) -> Iterator[DbSettings]:
    with private_database(base_db_settings) as settings:
        yield settings


@pytest.fixture(scope="module")
def module_kafka() -> KafkaSettings:
    return private_kafka()


@pytest.fixture(scope="module")
def resources(module_db: DbSettings, module_kafka: KafkaSettings) -> dict[str, object]:
    return {
        "warehouse": WarehouseResource(dbname=module_db.dbname),
        "kafka": KafkaResource(topic_prefix=module_kafka.topic_prefix),
    }


def produce(
    settings: KafkaSettings,
    records: Iterable[marketdata.Tick],
    raw: Iterable[tuple[bytes, bytes]] = (),
) -> int:
    """Produce ticks (and raw (key, payload) pairs) to the ticks topic; returns records sent."""
    producer = Producer(
        kafka_admin.client_config(
            settings, **{"acks": "all", "enable.idempotence": True, "linger.ms": 20}
        )
    )
    topic = topic_name(TICKS, settings.topic_prefix)
    n = 0
    for record in records:
        producer.produce(topic, key=marketdata.key(record), value=marketdata.encode(record))
        n += 1
        if n % 10_000 == 0:
            producer.poll(0)
    for key, payload in raw:
        producer.produce(topic, key=key, value=payload)
        n += 1
    assert producer.flush(30) == 0
    return n


def add_run_in_flight(instance: dg.DagsterInstance, job_name: str) -> dg.DagsterRun:
    """Record a started run of `job_name` in `instance` (as the daemon would while it runs)."""
    run = dg.DagsterRun(job_name=job_name, status=dg.DagsterRunStatus.STARTED)
    return instance.add_run(run)
