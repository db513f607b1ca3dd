"""Kafka for the dashboard: end offsets of the topics vs consumer groups' committed offsets.

The Dagster path keeps no consumer group (its ledger is the truth): its gaps and tail come from
`dash_app.data.progress`; this module reports the groups (e.g. the Spark streaming job's)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from stock_assets.lib.settings import KafkaSettings


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    high: int  # end offset (next offset to be written)
    position: int | None  # the group's committed offset
    consumer: str  # the consumer group
    error: str | None = None  # this partition's watermark could not be read (e.g. no leader yet)

    @property
    def lag(self) -> int | None:
        if self.position is None or self.error:
            return None
        return max(self.high - self.position, 0)


@dataclass(frozen=True)
class KafkaStatus:
    reachable: bool
    error: str | None = None
    partitions: list[PartitionLag] = field(default_factory=list)


def kafka_status(
    settings: KafkaSettings,
    topics: Sequence[str],
    timeout_s: float,
) -> KafkaStatus:
    """End offsets of `topics` vs every consumer group's committed offsets.

    Every broker call carries `timeout_s`; an unreachable broker gives `reachable=False`.
    """
    from confluent_kafka import Consumer as KafkaConsumer
    from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
    from confluent_kafka.admin import AdminClient

    timeout_ms = int(timeout_s * 1000)
    base: dict[str, str | int | float | bool] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": f"{settings.client_id}.dashboard",
        "socket.timeout.ms": timeout_ms,
        "socket.connection.setup.timeout.ms": timeout_ms,
    }
    consumer = KafkaConsumer({**base, "group.id": f"{settings.client_id}.dashboard-probe"})
    partitions: list[PartitionLag] = []
    highs: dict[tuple[str, int], int] = {}
    try:
        metadata = consumer.list_topics(timeout=timeout_s)
        for topic in topics:
            described = metadata.topics.get(topic)
            if described is None or described.error is not None:
                continue
            for p in sorted(described.partitions):
                try:
                    _, high = consumer.get_watermark_offsets(
                        TopicPartition(topic, p), timeout=timeout_s, cached=False
                    )
                except KafkaException as exc:  # one partition without a leader is not an outage
                    partitions.append(PartitionLag(topic, p, -1, None, "(watermark)", str(exc)))
                    continue
                highs[(topic, p)] = high
        admin = AdminClient(base)
        listed = admin.list_consumer_groups(request_timeout=timeout_s).result(timeout=timeout_s)
        groups = sorted(g.group_id for g in listed.valid)
        for group in groups:
            request = [ConsumerGroupTopicPartitions(group)]
            futures = admin.list_consumer_group_offsets(request, request_timeout=timeout_s)
            result = futures[group].result(timeout=timeout_s)
            partitions.extend(
                PartitionLag(
                    tp.topic, tp.partition, highs[(tp.topic, tp.partition)], tp.offset, group
                )
                for tp in result.topic_partitions
                if (tp.topic, tp.partition) in highs and tp.offset >= 0
            )
    except (KafkaException, TimeoutError, RuntimeError) as exc:
        return KafkaStatus(False, f"Kafka unreachable at {settings.bootstrap_servers}: {exc}")
    finally:
        consumer.close()
    return KafkaStatus(True, None, partitions)
