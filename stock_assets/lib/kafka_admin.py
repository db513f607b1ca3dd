"""Topic provisioning and client configuration for confluent-kafka, every call time-bounded."""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from stock_assets.lib.settings import KafkaSettings
from stock_assets.lib.topics import ALL_TOPICS, TopicSpec, topic_name

# Java clients (Kafka's own tools, Spark's Kafka sink, Kafka Connect, Streams) place a keyed
# record on toPositive(murmur2(key)) % partitions; librdkafka's default (consistent_random) uses
# CRC32, so one symbol would land on two partitions and lose its ordering. murmur2_random is
# librdkafka's Java-compatible partitioner (null keys: random partition).
PARTITIONER = "murmur2_random"


def client_config(settings: KafkaSettings, **extra: Any) -> dict[str, Any]:
    """The one base config of every client; a producer's (no `group.id`) gets PARTITIONER."""
    timeout_ms = int(settings.request_timeout_s * 1000)
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": settings.client_id,
        "socket.timeout.ms": timeout_ms,
    }
    if "group.id" not in extra:  # a consumer would log CONFWARN for a producer property
        config["partitioner"] = PARTITIONER
    return config | extra


def admin(settings: KafkaSettings) -> AdminClient:
    return AdminClient(client_config(settings))


def topic_to_create(spec: TopicSpec, settings: KafkaSettings) -> NewTopic:
    """The topic as the settings replicate it (replication factor, min.insync.replicas)."""
    config = spec.config() | {"min.insync.replicas": str(settings.min_insync_replicas)}
    return NewTopic(
        topic_name(spec, settings.topic_prefix),
        spec.partitions,
        settings.replication_factor,
        config=config,
    )


def ensure_topics(
    settings: KafkaSettings, specs: tuple[TopicSpec, ...] = ALL_TOPICS
) -> dict[str, str]:
    """Create missing topics and grow partition counts to the spec; returns name -> action."""
    client = admin(settings)
    timeout = settings.request_timeout_s
    try:
        existing = client.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        raise ConnectionError(
            f"Kafka at {settings.bootstrap_servers} did not answer within {timeout}s "
            f"(kafka_settings.bootstrap_servers, env STOCK_KAFKA_BOOTSTRAP_SERVERS): {exc}"
        ) from exc
    actions: dict[str, str] = {}
    to_create, to_grow = [], []
    for spec in specs:
        name = topic_name(spec, settings.topic_prefix)
        if name not in existing:
            to_create.append(topic_to_create(spec, settings))
            actions[name] = "created"
        elif len(existing[name].partitions) < spec.partitions:
            to_grow.append(NewPartitions(name, spec.partitions))
            actions[name] = "partitions increased"
        else:
            actions[name] = "exists"
    futures = {}
    if to_create:
        futures.update(
            client.create_topics(to_create, operation_timeout=timeout, request_timeout=timeout)
        )
    if to_grow:
        futures.update(client.create_partitions(to_grow, request_timeout=timeout))
    for future in futures.values():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":  # a concurrent creator won
                raise
    return actions
