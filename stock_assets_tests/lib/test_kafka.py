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


def murmur2(data: bytes) -> int:
    """Kafka's org.apache.kafka.common.utils.Utils.murmur2 (seed 0x9747b28c), as a signed int32."""
    m, r, mask = 0x5BD1E995, 24, 0xFFFFFFFF
    length = len(data)
    h = (0x9747B28C ^ length) & mask
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & mask
        k ^= k >> r
        k = (k * m) & mask
        h = (h * m) & mask
        h ^= k
    tail = length % 4
    base = length - tail
    if tail == 3:
        h ^= data[base + 2] << 16
    if tail >= 2:
        h ^= data[base + 1] << 8
    if tail >= 1:
        h ^= data[base]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def java_partition(key: bytes, partitions: int) -> int:
    """Java's BuiltInPartitioner.partitionForKey: toPositive(murmur2(key)) % partitions."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


# computed with kafka-clients 4.4.0 (Utils.murmur2, Utils.toPositive) under Java 17
JAVA_VECTORS = [
    ("AAPL", 1691292177, 3, 9),
    ("MSFT", -1895496446, 0, 6),
    ("GOOG", 2144222649, 3, 9),
    ("IBM", -1427187213, 5, 11),
    ("FB", -1721021119, 1, 1),
    ("BRK.B", -1653694865, 3, 3),
    ("A", 1592744578, 4, 10),
    ("hello world", 1221641059, 1, 7),
    ("été", -2101193575, 1, 1),
]


def test_murmur2_oracle_matches_kafkas_java_utils() -> None:
    for key, hashed, mod6, mod12 in JAVA_VECTORS:
        data = key.encode()
        assert murmur2(data) == hashed, key
        assert (java_partition(data, 6), java_partition(data, 12)) == (mod6, mod12), key


def test_producers_partition_keys_like_java_clients(kafka_settings: KafkaSettings) -> None:
    """A producer from the shared client config puts each key where a Java producer would."""
    spec = TopicSpec(f"partitioner-{uuid.uuid4().hex[:6]}", 12, DAY_MS, "partitioner test")
    kafka_admin.ensure_topics(kafka_settings, (spec,))
    topic = topic_name(spec, kafka_settings.topic_prefix)
    config = kafka_admin.client_config(kafka_settings, acks="all")
    assert config["partitioner"] == "murmur2_random"
    assert "partitioner" not in kafka_admin.client_config(kafka_settings, **{"group.id": "g"})
    producer = Producer(config)
    keys = [k for k, *_ in JAVA_VECTORS] + [f"SYM{i}" for i in range(40)]
    landed: dict[str, int] = {}

    def delivered(err: object, msg: object) -> None:
        assert err is None, err
        landed[msg.key().decode()] = msg.partition()  # type: ignore[attr-defined]

    for key in keys:
        producer.produce(topic, key=key.encode(), value=b"x", on_delivery=delivered)
    assert producer.flush(10) == 0
    assert landed == {k: java_partition(k.encode(), 12) for k in keys}
    assert len(set(landed.values())) > 6  # spread over partitions, not one sticky partition
