"""Poison input is contained: each bad record is dead-lettered alone, the rest of its range loads.

Real Kafka and PostgreSQL (a private topic prefix and database for this module). One range holds
valid ticks around records the validation contract rejects (a NUL in `source`, price -12.5 and 0,
a missing `schema_version`, a 600,000-character symbol, a control character) and a valid tick
the warehouse itself refuses (a CHECK constraint added here, standing for any rule the validator
does not know). The load commits; every bad record is in the dead-letter topic once, bounded in
size, with its reason, hash and length; the ledger's row count equals the rows loaded.
"""

from __future__ import annotations

import hashlib

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from stock_assets.defs.resources import KafkaResource
from stock_assets.lib import db, kafka_admin, marketdata, tick_loader
from stock_assets.lib.marketdata import Tick
from stock_assets.lib.settings import DbSettings, KafkaSettings
from stock_assets.lib.topics import DEAD_LETTER, TICKS, topic_name

PARTITION = 2
REFUSED_PRICE = 123.25  # valid by the contract, refused by the warehouse's CHECK


def tick(seq: int, **kw: object) -> bytes:
    fields: dict[str, object] = {
        "symbol": "MSFT",
        "ts_us": 1_785_000_000_000_000 + seq,
        "price": 400.0 + seq / 100,
        "size": 10.0,
        "source": "poison-test",
        "seq": seq,
    }
    return marketdata.encode(Tick(**{**fields, **kw}))  # type: ignore[arg-type]


POISON = {
    "nul in source": tick(0, source="a\x00b"),
    "negative price": tick(0, price=-12.5),
    "zero price": tick(0, price=0.0),
    "missing schema_version": tick(0).replace(b',"schema_version":1', b""),
    "huge symbol": tick(0).replace(b'"MSFT"', b'"' + b"M" * 600_000 + b'"'),
    "control character": tick(0, symbol="MS\x07FT"),
    "refused by the warehouse": tick(0, price=REFUSED_PRICE),
}


@pytest.fixture(scope="module")
def poisoned(module_kafka: KafkaSettings) -> tuple[list[bytes], dict[int, str]]:
    """60 valid ticks with the poison records spread among them; returns (values, bad offsets)."""
    producer = Producer(
        kafka_admin.client_config(module_kafka, **{"acks": "all", "enable.idempotence": True})
    )
    values: list[bytes] = []
    bad: dict[int, str] = {}
    poison = list(POISON.items())
    for seq in range(1, 61):
        if seq % 8 == 0 and poison:
            name, value = poison.pop()
            bad[len(values)] = name
            values.append(value)
        values.append(tick(seq))
    for value in values:
        producer.produce(topic_name(TICKS, module_kafka.topic_prefix), value, partition=PARTITION)
    assert producer.flush(30) == 0
    assert not poison
    return values, bad


def test_poison_records_are_dead_lettered_alone_and_the_range_loads(
    poisoned: tuple[list[bytes], dict[int, str]],
    module_db: DbSettings,
    module_kafka: KafkaSettings,
) -> None:
    values, bad = poisoned
    kafka = KafkaResource(topic_prefix=module_kafka.topic_prefix)
    with db.connect(module_db) as conn:
        conn.execute(
            "ALTER TABLE market.raw_ticks ADD CONSTRAINT price_not_refused"
            f" CHECK (price <> {REFUSED_PRICE}::double precision)"  # a literal: DDL has no binds
        )
        conn.commit()
        producer = Producer(kafka_admin.client_config(kafka.settings()))
        result = tick_loader.load_ranges(
            conn,
            Consumer(kafka.consumer_config("poison-test")),
            kafka.topic(TICKS),
            [tick_loader.OffsetRange(PARTITION, 0, len(values))],
            tick_loader.DeadLetters(producer, kafka.topic(DEAD_LETTER)),
            timeout_s=30,
        )
        loaded = conn.execute(
            "SELECT kafka_offset FROM market.raw_ticks WHERE kafka_partition = %s"
            " ORDER BY kafka_offset",
            (PARTITION,),
        ).fetchall()
        ledger = conn.execute(
            "SELECT row_count FROM ingest.kafka_offsets WHERE partition = %s", (PARTITION,)
        ).fetchall()
    good_offsets = [o for o in range(len(values)) if o not in bad]
    assert [r[0] for r in loaded] == good_offsets
    assert ledger == [(len(good_offsets),)]
    assert result.rows == len(good_offsets) and result.dead_lettered == len(POISON)

    consumer = Consumer(kafka.consumer_config("poison-dlq"))
    consumer.assign([TopicPartition(kafka.topic(DEAD_LETTER), 0, 0)])
    messages = []
    for _ in range(30):
        messages += [m for m in consumer.consume(100, timeout=1.0) if m.error() is None]
        if len(messages) >= len(POISON):
            break
    consumer.close()
    by_offset = {int(dict(m.headers())["dlq.source.offset"]): m for m in messages}
    assert len(messages) == len(POISON) and by_offset.keys() == bad.keys()
    for offset, msg in by_offset.items():
        h = dict(msg.headers())
        original = values[offset]
        assert h["dlq.payload.sha256"] == hashlib.sha256(original).hexdigest().encode()
        assert h["dlq.payload.length"] == str(len(original)).encode()
        assert msg.value() == original[: marketdata.DLQ_MAX_VALUE_BYTES]
        reason = h["dlq.reason"].decode()
        expected = {
            "nul in source": "bad source",
            "negative price": "bad price -12.5",
            "zero price": "bad price 0.0",
            "missing schema_version": "schema violation: Object missing required field",
            "huge symbol": "oversize payload",
            "control character": "bad symbol",
            "refused by the warehouse": "rejected by the warehouse",
        }[bad[offset]]
        assert reason.startswith(expected), (bad[offset], reason)
