import uuid

from confluent_kafka import Consumer, Producer, TopicPartition

from stock_assets.lib import kafka_admin
from stock_assets.lib.settings import KafkaSettings
from stock_assets.lib.topics import ALL_TOPICS, DAY_MS, TopicSpec, topic_name


def test_topics_exist_with_their_partition_counts(kafka_settings: KafkaSettings) -> None:
    metadata = kafka_admin.admin(kafka_settings).list_topics(timeout=10)
    for spec in ALL_TOPICS:
        name = topic_name(spec, kafka_settings.topic_prefix)
        assert name in metadata.topics
        assert len(metadata.topics[name].partitions) == spec.partitions
    again = kafka_admin.ensure_topics(kafka_settings)
    assert set(again.values()) == {"exists"}


def test_produce_consume_round_trip_with_group_commit(kafka_settings: KafkaSettings) -> None:
    # A private topic: other tests write to the session's ticks topic.
    spec = TopicSpec(f"roundtrip-{uuid.uuid4().hex[:6]}", 3, DAY_MS, "round-trip test")
    kafka_admin.ensure_topics(kafka_settings, (spec,))
    topic = topic_name(spec, kafka_settings.topic_prefix)
    producer = Producer(
        kafka_admin.client_config(kafka_settings, acks="all", **{"enable.idempotence": True})
    )
    sent = {f"k{i}".encode(): f"v{i}-{uuid.uuid4().hex}".encode() for i in range(20)}
    for key, value in sent.items():
        producer.produce(topic, key=key, value=value)
    assert producer.flush(10) == 0

    group = f"roundtrip-{uuid.uuid4().hex[:6]}"
    config = kafka_admin.client_config(
        kafka_settings,
        **{"group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False},
    )
    consumer = Consumer(config)
    consumer.subscribe([topic])
    received: dict[bytes, bytes] = {}
    try:
        for _ in range(60):
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            received[msg.key()] = msg.value()
            if len(received) == len(sent):
                break
        consumer.commit(asynchronous=False)
        partitions = [TopicPartition(topic, p) for p in range(spec.partitions)]
        committed = consumer.committed(partitions, timeout=10)
    finally:
        consumer.close()
    assert received == sent
    assert sum(max(tp.offset, 0) for tp in committed) == len(sent)

    # A new consumer in the same group resumes after the commit: nothing left to read.
    again = Consumer(config)
    again.subscribe([topic])
    try:
        leftovers = [m for m in (again.poll(1.0) for _ in range(5)) if m and not m.error()]
    finally:
        again.close()
    assert leftovers == []
