"""Read back what the producer wrote, from the real Kafka, up to the current high watermarks."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from stock_assets.lib import kafka_admin
from stock_assets.lib.kafka_admin import client_config
from stock_assets.lib.settings import KafkaSettings
from stock_assets.lib.topics import TopicSpec, topic_name


@pytest.fixture(scope="package")
def kafka_settings(kafka_settings: KafkaSettings) -> KafkaSettings:
    """The session prefix + `producer-<id>.`: these tests fill topics that other tests (which
    expect an empty session topic) must not see."""
    prefix = f"{kafka_settings.topic_prefix}producer-{uuid.uuid4().hex[:6]}."
    settings = kafka_settings.model_copy(update={"topic_prefix": prefix})
    kafka_admin.ensure_topics(settings)
    return settings


TRANSIENT = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._UNKNOWN_PARTITION,
    KafkaError._UNKNOWN_TOPIC,
}


def high_watermark(consumer: Consumer, topic: str, partition: int) -> int:
    """A freshly created topic answers NOT_LEADER until its leaders are elected: retry briefly."""
    deadline = time.monotonic() + 20
    while True:
        try:
            return int(consumer.get_watermark_offsets(TopicPartition(topic, partition), 10)[1])
        except KafkaException as exc:
            if exc.args[0].code() not in TRANSIENT or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def read_topic(settings: KafkaSettings, spec: TopicSpec, timeout_s: float = 60.0) -> list[Message]:
    """Every message currently in the topic (all partitions), without a consumer group commit."""
    topic = topic_name(spec, settings.topic_prefix)
    consumer = Consumer(
        client_config(
            settings, **{"group.id": f"reader-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False}
        )
    )
    try:
        highs = {p: high_watermark(consumer, topic, p) for p in range(spec.partitions)}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in highs])
        pending = {p for p, high in highs.items() if high > 0}
        out: list[Message] = []
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            for msg in consumer.consume(10_000, 1.0):
                if msg.error():
                    continue
                out.append(msg)
                if msg.offset() + 1 >= highs[msg.partition()]:
                    pending.discard(msg.partition())
        assert not pending, f"partitions not read to their end: {pending}"
        return out
    finally:
        consumer.close()
